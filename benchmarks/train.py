"""Training-step throughput, manygrad against PyTorch, same models, one run.

Workloads (one optimizer step on random data each):
  mlp  784-512-512-10, batch 128, SGD (momentum 0.9)
  cnn  two 3x3 convs (32, 64) + 2x2 max pools + 2 linear, 28x28x1 input, batch 64, Adam
  gpt  char-level GPT, 2 layers, d=128, 4 heads, T=64, vocab 65, batch 16, AdamW

Steps alternate one manygrad step, one PyTorch step, so that load on a shared machine hits
both alike; each library's median step time is reported (robust to the spikes other
processes cause). Both libraries get the same number of CPU threads. Each timed step
follows one untimed step of the same library, so that neither pays for the other's
threads still holding the CPUs (PyTorch's OpenMP threads spin-wait after their work).

Usage:
    PYTHONPATH=src python benchmarks/train.py [--threads 1] [--rounds 5] [--steps 20]
    (rounds x steps steps of each library are timed)
    PYTHONPATH=src python benchmarks/train.py --profile gpt   # cProfile of manygrad's step
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

import manygrad as mg
from manygrad.bench.twins import (  # noqa: E402
    WORKLOADS,
    mg_step_fn,
    torch_step_fn,
)
from manygrad.threads import set_blas_threads


def interleaved(fm, ft, steps):
    """Per-step times of ``fm`` and ``ft``, called alternately (each timed call after an
    untimed one of the same function)."""
    tm, tt = [], []
    for _ in range(steps):
        fm()  # NOTE: untimed: the other library's threads may still hold the CPUs
        t = time.perf_counter()
        fm()
        tm.append(time.perf_counter() - t)
        ft()
        t = time.perf_counter()
        ft()
        tt.append(time.perf_counter() - t)
    return tm, tt


def _synced(fn, sync):
    def step():
        fn()
        sync()

    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--only", nargs="*", default=list(WORKLOADS))
    ap.add_argument("--profile", metavar="WORKLOAD", help="cProfile manygrad's step instead")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both libraries)")
    ap.add_argument("--quick", action="store_true", help="2 rounds of 5 steps")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.steps = 2, 5
    import torch

    torch.set_num_threads(args.threads)
    set_blas_threads(args.threads)
    mg.manual_seed(0)
    torch.manual_seed(0)
    if args.profile:
        import cProfile
        import pstats

        step = mg_step_fn(args.profile, WORKLOADS[args.profile]["batch"])
        for _ in range(3):
            step()
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(args.steps):
            step()
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(25)
        return
    print(
        f"# {platform.processor() or platform.machine()}, {args.threads} thread(s) "
        f"(OpenBLAS {mg.threads.blas_kernel() or 'unknown'} kernels), "
        f"numpy {np.__version__}, torch {torch.__version__}, manygrad {mg.__version__}, "
        f"device {args.device}"
    )
    print("| workload | batch | manygrad samples/s | PyTorch samples/s | ratio |")
    print("|---|---|---|---|---|")
    for name in args.only:
        batch = WORKLOADS[name]["batch"]
        fm = mg_step_fn(name, batch, args.device)
        ft = torch_step_fn(name, batch, args.device)
        if args.device.startswith("cuda"):  # time whole steps: wait for the GPU each time
            fm, ft = _synced(fm, mg.cuda.synchronize), _synced(ft, torch.cuda.synchronize)
        for _ in range(3):
            fm(), ft()
        tm, tt = interleaved(fm, ft, args.rounds * args.steps)
        sm, st = batch / statistics.median(tm), batch / statistics.median(tt)
        print(f"| {name} | {batch} | {sm:,.0f} | {st:,.0f} | {sm / st:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
