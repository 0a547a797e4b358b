"""Recurrent layers: manygrad vs PyTorch on the CPU, side by side in one process.

Each case builds the same layer in both libraries (PyTorch's weights copied over) and
alternates one sample of each after a warm-up (as ``benchmarks/ops.py``); ``ratio`` is
manygrad's throughput over PyTorch's, the median of the per-pair ratios: above 1 manygrad
is faster. ``fwd`` runs under no_grad; ``fwd+bwd`` backpropagates a fixed gradient of the
output into the input and every weight.

Usage: ``PYTHONPATH=src python benchmarks/rnn.py [--quick] [--only lstm] [--single-thread]``

``--single-thread``: one thread each (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)),
timed in process CPU time (unaffected by other processes on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

if "--single-thread" in sys.argv:  # NOTE: must be set before NumPy loads OpenBLAS
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import torch

import manygrad as mg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops as _bench  # noqa: E402 - benchmarks/ops.py: the shared sampling and clock


def _sample(fn, inner: int) -> float:
    return _bench._sample(fn, inner)


def _pair(f_mg, f_t, budget_s, min_reps):
    for _ in range(3):
        f_mg()
        f_t()
    inner = [max(1, int(0.02 / max(_sample(f, 1) * 1e-3, 1e-7))) for f in (f_mg, f_t)]
    t_mg, t_t, start = [], [], time.perf_counter()
    while len(t_mg) < min_reps or time.perf_counter() - start < 2 * budget_s:
        t_mg.append(_sample(f_mg, inner[0]))
        t_t.append(_sample(f_t, inner[1]))
    ratio = statistics.median(t / m for m, t in zip(t_mg, t_t))
    return statistics.median(t_mg), statistics.median(t_t), ratio


def _layers(kind, inp, hid, layers, batch_first, **kw):
    tl = getattr(torch.nn, kind)(inp, hid, layers, batch_first=batch_first, **kw)
    ml = getattr(mg.nn, kind)(inp, hid, layers, batch_first=batch_first, **kw)
    for name, p in tl.named_parameters():
        getattr(ml, name).data = mg.tensor(p.detach().numpy().copy())
    return ml, tl


def _closures(kind, inp, hid, layers, batch, seq, train, **kw):
    ml, tl = _layers(kind, inp, hid, layers, True, **kw)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, seq, inp)).astype(np.float32)
    xm, xt = mg.tensor(x, requires_grad=train), torch.tensor(x, requires_grad=train)
    if not train:

        def run_mg():
            with mg.no_grad():
                ml(xm)

        def run_t():
            with torch.no_grad():
                tl(xt)

        return run_mg, run_t
    up = rng.standard_normal(tuple(tl(xt)[0].shape)).astype(np.float32)
    um, ut = mg.tensor(up), torch.tensor(up)

    def run_mg():
        xm.grad = None
        for p in ml.parameters():
            p.grad = None
        ml(xm)[0].backward(um)

    def run_t():
        xt.grad = None
        for p in tl.parameters():
            p.grad = None
        tl(xt)[0].backward(ut)

    return run_mg, run_t


CASES = [
    # (group, kind, input, hidden, layers, batch, seq, extra)
    ("lstm", "LSTM", 128, 256, 2, 32, 50, {}),
    ("gru", "GRU", 128, 256, 2, 32, 50, {}),
    ("lstm", "LSTM", 32, 64, 1, 8, 20, {}),
    ("gru", "GRU", 32, 64, 1, 8, 20, {}),
    ("lstm", "LSTM", 64, 128, 1, 16, 30, {"bidirectional": True}),
]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None, help="lstm or gru")
    ap.add_argument("--budget", type=float, default=None, help="seconds per library per case")
    ap.add_argument("--single-thread", action="store_true")
    args = ap.parse_args(argv)
    if args.single_thread:
        torch.set_num_threads(1)
        _bench._clock = time.process_time
    budget = args.budget or (0.5 if args.quick else 2.0)
    min_reps = 5 if args.quick else 11
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"numpy {np.__version__}; torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads); float32; {'process CPU time' if args.single_thread else 'wall time'}")  # fmt: skip
    print(f"{'case':58s} {'manygrad ms':>11s} {'torch ms':>9s} {'ratio':>6s}")
    for group, kind, inp, hid, layers, batch, seq, kw in CASES:
        if args.only and group != args.only:
            continue
        extra = "".join(f" {k}" for k in kw)
        for train in (False, True):
            name = (f"{kind}({inp}, {hid}, {layers} layers{extra}) B{batch} T{seq} "
                    f"{'fwd+bwd' if train else 'fwd'}")  # fmt: skip
            f_mg, f_t = _closures(kind, inp, hid, layers, batch, seq, train, **kw)
            m, t, r = _pair(f_mg, f_t, budget, min_reps)
            print(f"{name:58s} {m:11.3f} {t:9.3f} {r:6.2f}", flush=True)


if __name__ == "__main__":
    main()
