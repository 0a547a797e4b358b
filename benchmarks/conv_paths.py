"""conv2d's CPU paths side by side: Winograd F(2x2, 3x3), channels-last im2col and PyTorch.

Forward + backward of 3x3, stride-1, padding-1 convolutions on one thread, process CPU
time, medians of interleaved runs. The im2col figures come from the same manygrad with
``_winograd.ENABLED = False``. Ratios are PyTorch's time over manygrad's (above 1 faster).

Usage: ``PYTHONPATH=src python benchmarks/conv_paths.py [--reps 25]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # NOTE: before NumPy loads OpenBLAS

import numpy as np
import torch

import manygrad as mg
from manygrad.ops import _winograd

SHAPES = [(64, 32, 14, 64), (64, 32, 28, 64), (32, 64, 14, 64), (16, 128, 8, 128),
          (8, 256, 4, 256)]  # fmt: skip


def _step(lib, x, w, b, up):
    if lib == "torch":
        torch.nn.functional.conv2d(x, w, b, padding=1).backward(up)
    else:
        mg.conv2d(x, w, b, padding=1).backward(up)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=25)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print("| N x C x H -> O | Winograd ms | im2col ms | PyTorch ms | Winograd ratio "
          "| im2col ratio | Winograd used |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---|")
    for n, c, h, o in SHAPES:
        arrays = [rng.standard_normal(s).astype(np.float32)
                  for s in ((n, c, h, h), (o, c, 3, 3), (o,), (n, o, h, h))]  # fmt: skip
        arrays[1] /= 10
        m_args = [mg.tensor(a, requires_grad=True) for a in arrays[:3]] + [mg.tensor(arrays[3])]
        t_args = [torch.tensor(a, requires_grad=True) for a in arrays[:3]]
        t_args.append(torch.tensor(arrays[3]))
        geom = mg.ops.conv._Geom((n, c, h, h), (o, c, 3, 3), (1, 1), (1,) * 4, (1, 1), 1,
                                 nhwc=True)  # fmt: skip
        used = _winograd.applies(arrays[0], geom)
        times: dict = {"wino": [], "im2col": [], "torch": []}
        for _ in range(args.reps):
            for k, v in times.items():
                _winograd.ENABLED = k == "wino"
                lib, a = ("torch", t_args) if k == "torch" else ("mg", m_args)
                _step(lib, *a)  # NOTE: one untimed call first: caches, the other's threads
                t0 = time.process_time()
                _step(lib, *a)
                _step(lib, *a)
                v.append((time.process_time() - t0) / 2 * 1e3)
        _winograd.ENABLED = True
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"| {n} x {c} x {h} -> {o} | {med['wino']:.1f} | {med['im2col']:.1f} | "
              f"{med['torch']:.1f} | {med['torch'] / med['wino']:.2f} | "
              f"{med['torch'] / med['im2col']:.2f} | {'yes' if used else 'no'} |")  # fmt: skip


if __name__ == "__main__":
    main()
