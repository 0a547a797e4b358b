"""Array-library calls per training step, counted on the fake GPU.

On a GPU every CuPy call costs host time (about 5-15 us: argument checks, a kernel launch
or an allocation), so for small and medium models the number of calls a step makes sets
its speed more than the arithmetic does. The fake GPU counts each call into the array
library (ufuncs, functions, methods, fancy indexing: ``fake_stats.calls``), with no GPU;
this script prints the count per step of the workloads of ``benchmarks/train.py`` and,
with ``--sites``, which manygrad functions issue them.

Usage:
    PYTHONPATH=src python benchmarks/calls.py [--only mlp cnn gpt] [--sites 15]
"""

from __future__ import annotations

import argparse
import collections

import manygrad as mg
from manygrad.bench.twins import WORKLOADS, mg_step_fn
from manygrad.fakegpu import fake_stats


def count(name: str, by_site: bool):
    """Calls of one step (after two warm-up steps), and per call site if asked."""
    step = mg_step_fn(name, WORKLOADS[name]["batch"], "fakegpu")
    step(), step()
    fake_stats.calls, fake_stats.by_name = 0, ({} if by_site else None)
    try:
        step()
        return fake_stats.calls, fake_stats.by_name
    finally:
        fake_stats.by_name = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=list(WORKLOADS))
    ap.add_argument("--sites", type=int, default=0, metavar="N",
                    help="also list the N call sites issuing the most calls")  # fmt: skip
    args = ap.parse_args()
    mg.manual_seed(0)
    print("| workload | batch | calls per step |")
    print("|---|---|---:|")
    details = {}
    for name in args.only:
        n, sites = count(name, args.sites > 0)
        details[name] = sites
        print(f"| {name} | {WORKLOADS[name]['batch']} | {n} |", flush=True)
    for name, sites in details.items():
        if not sites:
            continue
        per_site = collections.Counter()
        for (_call, where), c in sites.items():
            per_site[where] += c
        print(f"\n{name}: calls by manygrad function")
        for where, c in per_site.most_common(args.sites):
            print(f"  {c:6d}  {where}")


if __name__ == "__main__":
    main()
