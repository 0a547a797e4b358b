"""Check manygrad's CUDA graphs on a real GPU: capture, replay, equality with eager, timing.

Usage (a machine with an NVIDIA GPU and CuPy; nvmath-python for products in a capture):
    MANYGRAD_CUDA_GRAPHS=1 PYTHONPATH=src python scripts/cuda_graphs_check.py [--steps 50]
A dry run of this script on any machine (no GPU):
    PYTHONPATH=src python scripts/cuda_graphs_check.py --device fakegpu --steps 3 --gemm-size 64

Prints one line per check (``name: ok, ...`` or ``name: FAILED ...``) and exits 1 when one
failed; copy the results into benchmarks/RESULTS.md with the GPU's name. The real-GPU capture
path stays off by default until such a run verified it.

``--device fakegpu`` is the DRY RUN: capture and replay are the fake GPU's emulation, products
inside a capture take its capture-safe GEMM (where a GPU takes cuBLASLt through ``ltgemm``),
and the direct cuBLASLt check runs ``ltgemm`` on fake-GPU memory with a stand-in for the
library (``manygrad.cuda._lt_standin``). It checks this script's own code, not the GPU's;
its timings mean nothing.
"""

from __future__ import annotations

import argparse
import os
import time
import traceback

import numpy as np

import manygrad as mg
from manygrad import backend
from manygrad.cuda import ltgemm

DEVICE = "cuda"
LT_CTX: ltgemm.LtContext | None = None  # the stand-in library's context in a dry run
FAILED: list[str] = []


def check(name, fn):
    try:
        print(f"{name}: {fn()}", flush=True)
    except Exception as e:  # noqa: BLE001 - report every check, keep going
        FAILED.append(name)
        print(f"{name}: FAILED {type(e).__name__}: {e}", flush=True)
        # the innermost frames say which call broke the capture (for the next fix)
        for line in traceback.format_tb(e.__traceback__)[-6:]:
            print("    " + line.rstrip().replace("\n", "\n    "), flush=True)


def elementwise():
    x = mg.zeros(1024, device=DEVICE)
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        y = (x * 2 + 1).exp()
    x.copy_(mg.full((1024,), 0.5).to(DEVICE))
    g.replay()
    err = float(np.abs(y.cpu().numpy() - np.exp(2.0)).max())
    if not err < 1e-5:
        raise AssertionError(f"replay gave exp(2) with error {err:.2e}")
    return f"ok, max error {err:.2e}"


def lt_layouts(gemm_size: int):
    """The direct cuBLASLt product (the capture path) eagerly, on the layouts ops produce."""
    cp = backend.xp_of(mg.device(DEVICE))
    rng = np.random.default_rng(0)

    def layouts(dt):
        # NOTE: made in dt, then viewed: astype() would copy a view into a contiguous array
        def r(*shape):
            return cp.asarray(rng.standard_normal(shape).astype(dt))

        return {
            "contiguous": (r(64, 48), r(48, 32)),
            "b.T (Linear)": (r(64, 48), r(32, 48).T),
            "a.T": (r(48, 64).T, r(48, 32)),
            "row slice": (r(64, 80)[:, 8:56], r(48, 40)[:, :32]),
            "batched": (r(4, 64, 48), r(4, 48, 32)),
            "heads, b.T": (r(2, 3, 64, 16), r(2, 3, 64, 16).swapaxes(-1, -2)),
            "folded": (r(4, 64, 48), r(48, 32)),
            "broadcast": (r(64, 48), r(4, 48, 32)),
        }

    def lt(a, b, bias=None):
        return ltgemm.matmul(a, b, bias, ctx=LT_CTX)

    worst = 0.0
    for dt, tol in ((np.float32, 1e-4), (np.float16, 2e-2)):
        cases = layouts(dt)
        for name, (a, b) in cases.items():
            got = lt(a, b).astype(np.float32)
            want = cp.matmul(a.astype(np.float32), b.astype(np.float32))
            err = float(cp.abs(got - want).max() / (cp.abs(want).max() + 1e-6))
            worst = max(worst, err)
            if err > tol:
                raise AssertionError(f"{name} {np.dtype(dt).name}: relative error {err:.2e}")
    cases = layouts(np.float32)
    bias = cp.asarray(rng.standard_normal(32).astype(np.float32))
    got = lt(cases["b.T (Linear)"][0], cases["b.T (Linear)"][1], bias)
    want = cp.matmul(*cases["b.T (Linear)"]) + bias
    err = float(cp.abs(got - want).max())
    if err > 1e-4:
        raise AssertionError(f"bias epilogue: max error {err:.2e}")
    n = gemm_size
    a = cp.asarray(rng.standard_normal((n, n)), dtype=cp.float16)
    lt(a, a)
    mg.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        lt(a, a)
    mg.cuda.synchronize()
    tflops = 2 * n**3 * 10 / (time.perf_counter() - t) / 1e12
    return (
        f"ok, {len(cases)} layouts x 2 dtypes + bias, worst rel. error {worst:.1e}; "
        f"fp16 {n}^3 {tflops:.3g} TFLOP/s"
    )


def product():
    a, b = mg.randn(64, 32, device=DEVICE), mg.randn(32, 16, device=DEVICE)
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        c = a @ b
    g.replay()
    err = float(np.abs(c.cpu().numpy() - a.cpu().numpy() @ b.cpu().numpy()).max())
    if not err < 1e-3:
        raise AssertionError(f"replayed product off by {err:.2e}")
    return f"ok, max error {err:.2e}"


def mlp_step(steps: int):
    def build():
        mg.manual_seed(0)
        m = mg.nn.Sequential(mg.nn.Linear(256, 512), mg.nn.ReLU(), mg.nn.Linear(512, 10))
        m = m.to(DEVICE)
        return m, mg.optim.AdamW(m.parameters(), lr=1e-3, capturable=True)

    rng = np.random.default_rng(0)
    xs = [mg.tensor(rng.standard_normal((128, 256)).astype(np.float32)).to(DEVICE)]
    ys = [mg.tensor(rng.integers(0, 10, 128)).to(DEVICE)]
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
    w_before = m[0].weight.detach().cpu().numpy()
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        step(m, opt, sx, sy)
    mg.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        g.replay()
    mg.cuda.synchronize()
    graph_ms = (time.perf_counter() - t) / steps * 1e3
    w_graph = m[0].weight.detach().cpu().numpy()
    # NOTE: eager products (cuBLAS) and captured ones (cuBLASLt) round differently, so the
    # weights may drift apart a little; replays that ran nothing would leave them unmoved
    if not np.isfinite(w_graph).all() or not np.abs(w_graph - w_before).max() > 0:
        raise AssertionError("the replays left the weights unmoved or not finite")
    diff = float(np.abs(w_graph - w_eager).max())
    return (
        f"eager {eager_ms:.3f} ms/step, replay {graph_ms:.3f} ms/step, weights max diff {diff:.2e}"
    )


def main(argv=None) -> int:
    global DEVICE, LT_CTX
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=50, help="timed steps of the MLP (default 50)")
    p.add_argument(
        "--device",
        default="cuda",
        choices=("cuda", "fakegpu"),
        help="cuda (default), or fakegpu for a dry run of this script",
    )
    p.add_argument("--gemm-size", type=int, default=4096,
                   help="n of the timed fp16 n^3 product (default 4096)")  # fmt: skip
    args = p.parse_args(argv)
    DEVICE = args.device
    FAILED.clear()
    if DEVICE == "fakegpu":
        from manygrad.cuda._lt_standin import FakeLt

        LT_CTX = ltgemm.LtContext(lib=FakeLt())
        print("DRY RUN on fakegpu: capture and replay emulated, products in a capture on the "
              "fake GPU's capture-safe GEMM, cuBLASLt by a stand-in library")  # fmt: skip
    else:
        if not mg.cuda.is_available():
            print(f"no usable GPU: {mg.cuda.why_unavailable()}")
            return 1
        if os.environ.get("MANYGRAD_CUDA_GRAPHS") != "1":
            print("set MANYGRAD_CUDA_GRAPHS=1 to check the real-GPU capture path")
            return 1
        print(f"GPU: {mg.cuda.get_device_name(0)}")
    check("elementwise capture", elementwise)
    check("cuBLASLt direct (capture path) layouts", lambda: lt_layouts(args.gemm_size))
    check("matmul capture", product)
    check(f"MLP training step ({args.steps} steps)", lambda: mlp_step(args.steps))
    print("FAILED:", FAILED if FAILED else "none")
    return 1 if FAILED else 0


if __name__ == "__main__":
    raise SystemExit(main())
