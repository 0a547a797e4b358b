"""Check manygrad's CUDA graphs on a real GPU: capture, replay, equality with eager, timing.

Usage (a machine with an NVIDIA GPU and CuPy; nvmath-python for products in a capture):
    MANYGRAD_CUDA_GRAPHS=1 PYTHONPATH=src python scripts/cuda_graphs_check.py [--steps 50]

Prints one line per check; copy the results into benchmarks/RESULTS.md with the GPU's name.
The real-GPU capture path stays off by default until such a run verified it.
"""

from __future__ import annotations

import argparse
import os
import time
import traceback

import numpy as np

import manygrad as mg


def check(name, fn):
    try:
        print(f"{name}: {fn()}", flush=True)
    except Exception as e:  # noqa: BLE001 - report every check, keep going
        print(f"{name}: FAILED {type(e).__name__}: {e}", flush=True)
        # the innermost frames say which call broke the capture (for the next fix)
        for line in traceback.format_tb(e.__traceback__)[-6:]:
            print("    " + line.rstrip().replace("\n", "\n    "), flush=True)


def elementwise():
    x = mg.zeros(1024, device="cuda")
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        y = (x * 2 + 1).exp()
    x.copy_(mg.full((1024,), 0.5).to("cuda"))
    g.replay()
    err = float(np.abs(y.cpu().numpy() - np.exp(2.0)).max())
    return f"ok, max error {err:.2e}"


def lt_layouts():
    """The direct cuBLASLt product (the capture path) eagerly, on the layouts ops produce."""
    from manygrad import backend

    cp = backend.cuda_module()

    from manygrad.cuda import ltgemm

    rng = np.random.default_rng(0)

    def r(*shape):
        return cp.asarray(rng.standard_normal(shape).astype(np.float32))

    cases = {
        "contiguous": (r(64, 48), r(48, 32)),
        "b.T (Linear)": (r(64, 48), r(32, 48).T),
        "a.T": (r(48, 64).T, r(48, 32)),
        "row slice": (r(64, 80)[:, 8:56], r(48, 40)[:, :32]),
        "batched": (r(4, 64, 48), r(4, 48, 32)),
        "heads, b.T": (r(2, 3, 64, 16), r(2, 3, 64, 16).swapaxes(-1, -2)),
        "folded": (r(4, 64, 48), r(48, 32)),
        "broadcast": (r(64, 48), r(4, 48, 32)),
    }
    worst = 0.0
    for name, (a, b) in cases.items():
        for dt, tol in ((np.float32, 1e-4), (np.float16, 2e-2)):
            a2, b2 = a.astype(dt), b.astype(dt)
            got = ltgemm.matmul(a2, b2).astype(np.float32)
            want = cp.matmul(a2.astype(np.float32), b2.astype(np.float32))
            err = float(cp.abs(got - want).max() / (cp.abs(want).max() + 1e-6))
            worst = max(worst, err)
            if err > tol:
                raise AssertionError(f"{name} {np.dtype(dt).name}: relative error {err:.2e}")
    bias = r(32)
    got = ltgemm.matmul(cases["b.T (Linear)"][0], cases["b.T (Linear)"][1], bias)
    want = cp.matmul(*cases["b.T (Linear)"]) + bias
    err = float(cp.abs(got - want).max())
    if err > 1e-4:
        raise AssertionError(f"bias epilogue: max error {err:.2e}")
    n = 4096
    a = cp.asarray(rng.standard_normal((n, n)), dtype=cp.float16)
    ltgemm.matmul(a, a)
    cp.cuda.get_current_stream().synchronize()
    t = time.perf_counter()
    for _ in range(10):
        ltgemm.matmul(a, a)
    cp.cuda.get_current_stream().synchronize()
    tflops = 2 * n**3 * 10 / (time.perf_counter() - t) / 1e12
    return f"ok, {len(cases)} layouts x 2 dtypes + bias, worst rel. error {worst:.1e}; fp16 {n}^3 {tflops:.0f} TFLOP/s"


def product():
    a, b = mg.randn(64, 32, device="cuda"), mg.randn(32, 16, device="cuda")
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        c = a @ b
    g.replay()
    err = float(np.abs(c.cpu().numpy() - a.cpu().numpy() @ b.cpu().numpy()).max())
    return f"ok, max error {err:.2e}"


def mlp_step(steps: int):
    def build():
        mg.manual_seed(0)
        m = mg.nn.Sequential(mg.nn.Linear(256, 512), mg.nn.ReLU(), mg.nn.Linear(512, 10))
        m = m.to("cuda")
        return m, mg.optim.AdamW(m.parameters(), lr=1e-3, capturable=True)

    rng = np.random.default_rng(0)
    xs = [mg.tensor(rng.standard_normal((128, 256)).astype(np.float32)).to("cuda")]
    ys = [mg.tensor(rng.integers(0, 10, 128)).to("cuda")]
    loss_fn = mg.nn.CrossEntropyLoss()

    def step(m, opt, x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(m(x), y)
        loss.backward()
        opt.step()
        return loss

    m, opt = build()
    for _ in range(3):
        step(m, opt, xs[0], ys[0])
    mg.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step(m, opt, xs[0], ys[0])
    mg.cuda.synchronize()
    eager_ms = (time.perf_counter() - t) / steps * 1e3
    w_eager = m[0].weight.detach().cpu().numpy()

    m, opt = build()
    sx, sy = xs[0].clone(), ys[0].clone()
    for _ in range(3):
        step(m, opt, sx, sy)
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        step(m, opt, sx, sy)
    mg.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        g.replay()
    mg.cuda.synchronize()
    graph_ms = (time.perf_counter() - t) / steps * 1e3
    diff = float(np.abs(m[0].weight.detach().cpu().numpy() - w_eager).max())
    return (
        f"eager {eager_ms:.3f} ms/step, replay {graph_ms:.3f} ms/step, weights max diff {diff:.2e}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args()
    if not mg.cuda.is_available():
        print(f"no usable GPU: {mg.cuda.why_unavailable()}")
        return 1
    if os.environ.get("MANYGRAD_CUDA_GRAPHS") != "1":
        print("set MANYGRAD_CUDA_GRAPHS=1 to check the real-GPU capture path")
        return 1
    print(f"GPU: {mg.cuda.get_device_name(0)}")
    check("elementwise capture", elementwise)
    check("cuBLASLt direct (capture path) layouts", lt_layouts)
    check("matmul capture", product)
    check(f"MLP training step ({args.steps} steps)", lambda: mlp_step(args.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
