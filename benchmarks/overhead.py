"""Host time per op on tiny tensors, manygrad against PyTorch.

On a GPU, and on the CPU for small models, a step's time is mostly the host work of each
op: argument checks, dispatch, graph recording, the array library's call. With 4x4 tensors
the arithmetic is negligible, so this measures exactly that cost. Each op is timed as the
best of several repeats of many calls (``timeit``), one library after the other, one thread.

Usage:
    PYTHONPATH=src python benchmarks/overhead.py [--only relu sum ...] [--number 20000]
"""

from __future__ import annotations

import argparse
import timeit

# name -> statement; x, y: 4x4 float32, w: 4x4 needing a gradient, i: int64 index vector
OPS = {
    "add": "x + y",
    "mul scalar": "x * 2.0",
    "exp": "x.exp()",
    "relu": "F.relu(x)",
    "gelu": "F.gelu(x)",
    "silu": "F.silu(x)",
    "sigmoid": "x.sigmoid()",
    "sum": "x.sum()",
    "mean dim": "x.mean(-1)",
    "softmax": "x.softmax(-1)",
    "matmul": "x @ y",
    "linear": "F.linear(x, y, b)",
    "view": "x.view(16)",
    "reshape": "x.reshape(2, 8)",
    "transpose": "x.transpose(0, 1)",
    "unsqueeze": "x.unsqueeze(0)",
    "x[1]": "x[1]",
    "x[:, 1:3]": "x[:, 1:3]",
    "x[i]": "x[i]",
    "cat": "mg.cat([x, y])",
    "layer_norm": "F.layer_norm(x, (4,))",
    "add (grad)": "w + y",
    "matmul (grad)": "w @ y",
    "fwd+bwd": "(w * y).sum().backward()",
}


def timings(lib, names, number):
    import numpy as np

    mg = lib
    F = lib.nn.functional  # noqa: N806 - the name programs use
    x, y, b = lib.randn(4, 4), lib.randn(4, 4), lib.randn(4)
    w = lib.randn(4, 4, requires_grad=True)
    i = lib.tensor(np.array([0, 2]))
    env = {"mg": mg, "F": F, "x": x, "y": y, "b": b, "w": w, "i": i}
    out = {}
    for name in names:
        stmt = OPS[name]
        timeit.timeit(stmt, globals=env, number=200)
        best = min(timeit.repeat(stmt, globals=env, number=number, repeat=5))
        out[name] = best / number
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=list(OPS))
    ap.add_argument("--number", type=int, default=20000, help="calls per repeat")
    args = ap.parse_args()
    import torch

    import manygrad

    torch.set_num_threads(1)
    from manygrad.threads import set_blas_threads

    set_blas_threads(1)
    names = [n for n in args.only if n in OPS]
    tm = timings(manygrad, names, args.number)
    tt = timings(torch, names, args.number)
    print(f"torch {torch.__version__}, one thread; host time per call on 4x4 float32")
    print("| op | statement | manygrad us | PyTorch us | ratio |")
    print("|---|---|---:|---:|---:|")
    for n in names:
        r = tt[n] / tm[n]
        print(f"| {n} | `{OPS[n]}` | {tm[n] * 1e6:.2f} | {tt[n] * 1e6:.2f} | {r:.2f}x |")


if __name__ == "__main__":
    main()
