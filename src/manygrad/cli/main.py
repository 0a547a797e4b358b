"""``manygrad`` entry point: argparse subcommands, each imported only when it runs.

A subcommand is a module ``manygrad.cli.<name>`` with ``add_parser(subparsers)`` (adds its
parser with ``subparsers.add_parser(name, ...)``) and ``run(args) -> int``. Modules in this
package are found automatically, so adding a command needs no edit here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import warnings

# One-line help for the commands manygrad knows about (shown without importing them).
KNOWN = {
    "train": "train a model (default: an MLP on the embedded 8x8 digits)",
    "predict": "classify images or .npy arrays with a trained run",
    "runs": "list saved runs and their metrics",
    "bench": "benchmark the CPU against the GPU",
    "doctor": "check the installation: GPU, CUDA, optional packages",
    "launch": "start a distributed training job on several GPUs or hosts",
    "export": "export a trained run (e.g. to ONNX)",
    "run": "run an unchanged PyTorch script with `torch` resolving to manygrad",
    "serve": "serve a trained run over HTTP (POST /predict)",
}
_NOT_COMMANDS = {"main", "__init__", "__main__"}
# optional package (import name) -> the extra of manygrad that installs it
EXTRAS = {
    "PIL": ("Pillow", "images"),
    "av": ("PyAV", "video"),
    "h5py": ("h5py", "science"),
    "zarr": ("zarr", "science"),
    "onnx": ("onnx", "onnx"),
    "mpi4py": ("mpi4py", "mpi"),
    "tqdm": ("tqdm", "progress"),
    "tensorboard": ("TensorBoard", "logging"),
    "matplotlib": ("matplotlib", "bench"),
    "cupy": ("CuPy", "cuda12"),
}


def missing_package(e: ImportError) -> str:
    """One line for an optional package that is not installed, naming the extra."""
    top = (getattr(e, "name", None) or "").split(".")[0]
    if top in EXTRAS:
        pkg, extra = EXTRAS[top]
        return (
            f"error: this needs {pkg}, which is not installed: pip install 'manygrad[{extra}]' "
            f"(or pip install {pkg})"
        )
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return f"error: {msg}"


def commands() -> dict[str, str]:
    """Command name -> help line, for known commands and any module found in this package."""
    found = dict(KNOWN)
    here = os.path.dirname(os.path.abspath(__file__))
    for m in pkgutil.iter_modules([here]):
        if m.name not in _NOT_COMMANDS and not m.name.startswith("_") and m.name not in found:
            found[m.name] = ""
    return found


def _module(name: str):
    try:
        return importlib.import_module(f"manygrad.cli.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"manygrad.cli.{name}":
            return None
        raise


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s module is imported to add its options."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="manygrad",
        description="manygrad: deep learning on NVIDIA GPUs and CPUs with PyTorch's API.",
    )
    parser.add_argument("--version", action="version", version=f"manygrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_line in commands().items():
        mod = _module(name) if name == command else None
        if mod is not None:
            mod.add_parser(sub)
            sub.choices[name].set_defaults(_run=mod.run)
        else:
            p = sub.add_parser(name, help=help_line, add_help=name != command)
            p.set_defaults(_run=None, _missing=name)
            if name == command:
                p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _command_of(argv: list[str]) -> str | None:
    names = commands()
    for a in argv:
        if a in names:
            return a
        if not a.startswith("-"):
            return None
    return None


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings on the command line read ``warning: ...``, without a source line."""
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run the ``manygrad`` command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    fmt, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        return _main(argv)
    finally:
        warnings.formatwarning = fmt


def _main(argv: list[str]) -> int:
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    if args._run is None:
        print(
            f"manygrad {args._missing}: this command is not part of this installation of "
            "manygrad yet",
            file=sys.stderr,
        )
        return 2
    try:
        return int(args._run(args) or 0)
    except SystemExit as e:
        if isinstance(e.code, str):  # a command's "error: ..." message
            print(e.code, file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except ImportError as e:  # an optional package the command needs is missing
        print(missing_package(e), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
