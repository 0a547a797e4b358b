"""Check on a real GPU that the ops and optimizers wired to fused kernels give what the
plain CuPy code gives, and that the kernels (not their fallbacks) served the calls.

Usage (a machine with an NVIDIA GPU and CuPy):
    PYTHONPATH=src python scripts/fused_wiring_check.py

Each case runs twice on ``cuda``: with the verified fast paths (the default) and with
``MANYGRAD_FAST_PATHS=none``; prints the largest relative difference and OK/FAIL, then which
kernel paths served calls. A fallback warning is an error. Exits 1 on any FAIL.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings

import numpy as np

import manygrad as mg
import manygrad.nn.functional as F
from manygrad.kernels import FastPathFallback, fastpath

warnings.simplefilter("error", FastPathFallback)
SERVED: dict[str, int] = {}
FAILED: list[str] = []


def _count(name, p):
    def gpu(*args, **kwargs):
        out = p.gpu(*args, **kwargs)
        SERVED[name] = SERVED.get(name, 0) + 1
        return out

    return gpu


for _name, _p in list(fastpath._PATHS.items()):
    if _name.startswith(("kernels.", "cudnn.")):
        fastpath._PATHS[_name] = dataclasses.replace(_p, gpu=_count(_name, _p))


def both(fn):
    """``fn()`` with the fast paths (all of them: the wiring is what is checked), then with
    MANYGRAD_FAST_PATHS=none."""
    os.environ[fastpath.ENV] = "all"
    fused = fn()
    os.environ[fastpath.ENV] = "none"
    try:
        plain = fn()
    finally:
        os.environ.pop(fastpath.ENV, None)
    return fused, plain


def compare(tag, pair, tol):
    err = 0.0
    for a, b in zip(*pair):
        a, b = a.detach().float().cpu().numpy(), b.detach().float().cpu().numpy()
        if a.size:
            err = max(err, float(np.max(np.abs(a - b) / (np.abs(b) + 1))))
    ok = err <= tol
    if not ok:
        FAILED.append(tag)
    print(f"{tag:50s} max rel. diff {err:.2e} {'OK' if ok else 'FAIL'}")


def dev(a, dt=None, grad=False):
    t = mg.tensor(a, device="cuda")
    t = t if dt is None else t.to(dt)
    return t.requires_grad_() if grad else t


def main() -> int:
    if not mg.cuda.is_available():
        print("no usable GPU:", mg.cuda.why_unavailable())
        return 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 1000)).astype(np.float32) * 3
    t = rng.integers(0, 1000, 512)
    t[:7] = 3
    xs = rng.standard_normal((64, 128, 257)).astype(np.float32)
    w0 = rng.standard_normal(257).astype(np.float32)
    for dt, tol in ((None, 1e-5), (mg.bfloat16, 2e-2)):
        for kw in ({"label_smoothing": 0.1, "ignore_index": 3}, {"reduction": "none"},
                   {"reduction": "sum"}):  # fmt: skip

            def ce(kw=kw, dt=dt):
                xt = dev(x, dt, True)
                loss = F.cross_entropy(xt, dev(t), **kw)
                g = np.linspace(0.5, 1.5, loss.numel()).reshape(loss.shape).astype(np.float32)
                loss.backward(dev(g).to(loss.dtype))
                return loss, xt.grad

            compare(f"cross_entropy {dt or 'float32'} {kw}", both(ce), tol)

        def sm(dt=dt):
            xt = dev(xs, dt, True)
            y = F.softmax(xt, -1)
            y.backward(dev(np.cos(xs)).to(y.dtype))
            return y, xt.grad

        compare(f"softmax {dt or 'float32'}", both(sm), tol)
        for norm in ("layer_norm", "rms_norm"):

            def nm(norm=norm, dt=dt):
                xt, w = dev(xs, dt, True), dev(w0, dt, True)
                if norm == "layer_norm":
                    y = F.layer_norm(xt, (257,), w, w * 0.5)
                else:
                    y = F.rms_norm(xt, (257,), w)
                y.backward(dev(np.cos(xs)).to(y.dtype))
                return y, xt.grad, w.grad

            compare(f"{norm} {dt or 'float32'}", both(nm), tol * 10)
    xt = dev(xs, None, True)
    y = F.dropout(xt, 0.1)
    y.backward(dev(np.ones_like(xs)))
    yv, gv = y.detach().cpu().numpy(), xt.grad.cpu().numpy()
    keep = yv != 0
    ok = np.allclose(yv[keep], xs[keep] / 0.9, rtol=1e-6) and np.allclose(gv, keep / 0.9)
    ok = ok and 0.89 < keep.mean() < 0.91
    print(f"{'dropout p=0.1 (mask, scale, gradient)':50s} kept {keep.mean():.4f} "
          f"{'OK' if ok else 'FAIL'}")  # fmt: skip
    if not ok:
        FAILED.append("dropout")
    for name, make in (("AdamW", lambda ps: mg.optim.AdamW(ps, lr=1e-2)),
                       ("SGD momentum", lambda ps: mg.optim.SGD(ps, lr=1e-2, momentum=0.9))):  # fmt: skip

        def steps(make=make):
            r = np.random.default_rng(1)
            ps = [dev(r.standard_normal(s).astype(np.float32), None, True)
                  for s in ((256, 256), (256,), (10, 3))]  # fmt: skip
            opt = make(ps)
            for _ in range(3):
                for p in ps:
                    p.grad = dev(r.standard_normal(p.shape).astype(np.float32))
                opt.step()
            return ps

        compare(f"{name}: 3 steps", both(steps), 1e-5)
    for name, make in (("AdamW bf16 params, float32 copies", lambda ps: mg.optim.AdamW(ps, lr=1e-2)),
                       ("SGD bf16 params, float32 copies",
                        lambda ps: mg.optim.SGD(ps, lr=1e-2, momentum=0.9))):  # fmt: skip

        def steps16(make=make):
            r = np.random.default_rng(2)
            ps = [dev(r.standard_normal(s).astype(np.float32), mg.bfloat16, True)
                  for s in ((256, 256), (256,))]  # fmt: skip
            opt = make(ps)
            opt.master_weights = True
            for _ in range(3):
                for p in ps:
                    p.grad = dev(r.standard_normal(p.shape).astype(np.float32), mg.bfloat16)
                opt.step()
            return [opt.state[p]["master_param"] for p in ps] + ps

        compare(f"{name}: 3 steps", both(steps16), 1e-5)
    cudnn_cases(rng)
    print("calls served by kernels:", dict(sorted(SERVED.items())))
    print("FAILED:", FAILED if FAILED else "none")
    return 1 if FAILED else 0


def cudnn_cases(rng):
    """F.conv2d and F.scaled_dot_product_attention through cuDNN (where it is installed)."""
    state, why = fastpath.state("cudnn.conv2d")
    if state == fastpath.UNAVAILABLE:
        print(f"{'cuDNN conv2d / attention':50s} skipped: {why}")
        return
    x = rng.standard_normal((16, 32, 28, 28)).astype(np.float32)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32) * 0.1
    b = rng.standard_normal(64).astype(np.float32)
    for dt, tol in ((None, 1e-4), (mg.bfloat16, 3e-2)):
        for kw in ({"padding": 1}, {"stride": 2, "padding": 1}):

            def conv(dt=dt, kw=kw):
                xt, wt, bt = dev(x, dt, True), dev(w, dt, True), dev(b, dt, True)
                y = F.conv2d(xt, wt, bt, **kw)
                y.backward(dev(np.cos(np.arange(y.numel())).reshape(y.shape)).to(y.dtype))
                return y, xt.grad, wt.grad, bt.grad

            compare(f"conv2d {dt or 'float32'} {kw}", both(conv), tol)
    q, k, v = (rng.standard_normal((4, 8, 256, 64)).astype(np.float32) for _ in range(3))
    for causal in (False, True):

        def attn(causal=causal):
            ts = [dev(a, mg.bfloat16, True) for a in (q, k, v)]
            o = F.scaled_dot_product_attention(*ts, is_causal=causal)
            o.backward(dev(np.cos(q)).to(o.dtype))
            return [o] + [t.grad for t in ts]

        compare(f"scaled_dot_product_attention bf16 causal={causal}", both(attn), 3e-2)


if __name__ == "__main__":
    sys.exit(main())
