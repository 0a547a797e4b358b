"""``manygrad bench``: measure CPU against GPU here and explain where each wins."""

from __future__ import annotations

import json
import sys
import time


def add_parser(subparsers) -> None:
    from ..bench.workloads import WORKLOADS

    p = subparsers.add_parser(
        "bench", help="benchmark the CPU against the GPU", description=__doc__,
        epilog=f"workloads: {', '.join(WORKLOADS)}",
    )  # fmt: skip
    p.add_argument("--quick", action="store_true", help="small sizes; under a minute on a CPU")
    p.add_argument(
        "--device",
        default=None,
        help="comma-separated devices (cpu, cuda, cuda:N); default: all here",
    )
    p.add_argument(
        "--workloads",
        default=None,
        help="comma-separated workload names or prefixes (e.g. gemm,train)",
    )
    p.add_argument(
        "--compare",
        choices=["torch"],
        default=None,
        help="also run the same workloads in PyTorch and add a ratio column",
    )
    p.add_argument(
        "--baseline",
        default=None,
        help="results.json of an earlier run (e.g. a GPU machine) to show beside",
    )
    p.add_argument("--out", default="bench-results", help="folder for JSON, Markdown, PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args) -> int:
    from .. import bench

    try:
        workloads = bench.resolve(args.workloads)
        devices = bench.resolve_devices(args.device)
    except ValueError as e:
        print(f"manygrad bench: {e}", file=sys.stderr)
        return 2
    baseline = None
    if args.baseline:
        try:
            with open(args.baseline) as f:
                baseline = json.load(f)
        except (OSError, ValueError) as e:
            print(f"manygrad bench: can't read --baseline {args.baseline}: {e}", file=sys.stderr)
            return 2
    if not any(d.startswith("cuda") for d in devices):
        from .. import cuda

        why = cuda.why_unavailable() or "not selected with --device."
        print(f"No GPU in this run: {why}")
    t0 = time.perf_counter()

    def progress(msg):
        if not args.quiet:
            print(f"  measuring {msg} ...", file=sys.stderr, flush=True)

    result = bench.run_suite(workloads, devices, quick=args.quick,
                             compare_torch=args.compare == "torch", progress=progress)  # fmt: skip
    if baseline:
        result = bench.finish(result, baseline)
    print(bench.table(result))
    files = bench.write_all(result, args.out)
    print(f"\nwrote {', '.join(files.values())} in {time.perf_counter() - t0:.0f} s")
    return 0
