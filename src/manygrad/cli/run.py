"""``manygrad run SCRIPT [ARGS...]``: run an unchanged PyTorch script with manygrad as torch."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run",
        help="run an unchanged PyTorch script with `torch` resolving to manygrad",
        description="Run SCRIPT as `python SCRIPT ARGS...` would, with every `import torch...` "
        "answered by manygrad's modules. A PyTorch name manygrad lacks stops the script with "
        "an error naming it; docs/porting.md lists what is supported.",
    )
    p.add_argument("script", metavar="SCRIPT", help="the PyTorch program (.py)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    return p


def run(args) -> int:
    from ..compat.runner import main

    return main([args.script, *args.args])
