"""Check on a real GPU that the ops and optimizers wired to fused kernels give what the
plain CuPy code gives, and that the kernels (not their fallbacks) served the calls.

Usage (a machine with an NVIDIA GPU and CuPy):
    PYTHONPATH=src python scripts/fused_wiring_check.py
A dry run of this script on any machine (no GPU):
    PYTHONPATH=src python scripts/fused_wiring_check.py --device fakegpu --small

Each case runs twice: with the paths it checks switched on (``kernels.*`` and ``cudnn.*``,
named in MANYGRAD_FAST_PATHS) and with ``MANYGRAD_FAST_PATHS=none``; prints the largest
relative difference and OK/FAIL. A case fails when the results differ, when a path it
should take served no call (the wiring did not reach the kernel), when a path served a call
with the paths off, or when it raises (a fallback warning is an error). The last lines say
which paths served calls and which cases failed; exits 1 on any FAIL.

``--device fakegpu`` is the DRY RUN: the fake GPU takes the fused paths and each path's GPU
launch is replaced by its reference (the NumPy twin or the plain code), as
``tests/kernels/test_kernel_wiring.py`` does. It checks the wiring and this script's own
code, not the kernels.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import traceback
import warnings

import numpy as np

import manygrad as mg
import manygrad.nn.functional as F
from manygrad.kernels import FastPathFallback, fastpath

warnings.simplefilter("error", FastPathFallback)
CHECKED = [n for n in fastpath._PATHS if n.startswith(("kernels.", "cudnn."))]
SERVED: dict[str, int] = {}
FAILED: list[str] = []
DEVICE = "cuda"

# shapes of the full run (a GPU) and of --small (a dry run in a test)
SIZES = {
    "full": {"ce": (512, 1000), "rows": (64, 128, 257), "opt": ((256, 256), (256,), (10, 3)),
             "conv": ((16, 32, 28, 28), (64, 32, 3, 3)), "attn": (4, 8, 256, 64)},
    "small": {"ce": (48, 40), "rows": (4, 8, 33), "opt": ((16, 16), (16,), (10, 3)),
              "conv": ((2, 4, 9, 9), (8, 4, 3, 3)), "attn": (1, 2, 32, 16)},
}  # fmt: skip


def install(dry_run: bool) -> None:
    """Count the calls each checked path serves; in a dry run, on the fake GPU, with the
    path's reference standing in for its GPU launch."""
    for name in CHECKED:
        p = fastpath._PATHS[name]

        def gpu(*args, _name=name, _fn=p.ref if dry_run else p.gpu, **kwargs):
            out = _fn(*args, **kwargs)
            SERVED[_name] = SERVED.get(_name, 0) + 1
            return out

        fastpath._PATHS[name] = dataclasses.replace(p, gpu=gpu)
    if dry_run:
        fastpath.FUSED_DEVICES = (*fastpath.FUSED_DEVICES, "fakegpu")


@contextlib.contextmanager
def paths(value: str):
    """MANYGRAD_FAST_PATHS=value inside (the previous value back after)."""
    old = os.environ.get(fastpath.ENV)
    os.environ[fastpath.ENV] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(fastpath.ENV, None)
        else:
            os.environ[fastpath.ENV] = old


def fused():
    return paths(",".join(CHECKED))


def run(tag: str, fn) -> None:
    """Run one case: ``fn()`` returns ``(ok, detail)``; an exception is a FAIL with its
    innermost frames (for the next fix), and the other cases still run."""
    fastpath.reset_warnings()  # NOTE: every case reports its own first fallback
    rest = ""
    try:
        ok, detail = fn()
    except Exception as e:  # noqa: BLE001 - report every case, keep going
        ok, detail = False, f"raised {type(e).__name__}: {e} "
        tb = traceback.format_tb(e.__traceback__)[-4:]
        rest = "\n".join("    " + t.rstrip().replace("\n", "\n    ") for t in tb)
    if not ok:
        FAILED.append(tag)
    print(f"{tag:50s} {detail}{'OK' if ok else 'FAIL'}", flush=True)
    if rest:
        print(rest, flush=True)


def served_during(fn):
    before = dict(SERVED)
    out = fn()
    return out, {k: v - before.get(k, 0) for k, v in SERVED.items() if v != before.get(k, 0)}


def both(fn, expect, tol):
    """A case's check: ``fn()`` with the checked paths on, then with them off; ``expect``
    names the paths the first run must have called; ``tol`` bounds the relative difference
    of every output (or of each, a tuple)."""

    def check():
        with fused():
            a, used = served_during(fn)
        with paths("none"):
            b, used_off = served_during(fn)
        tols = tol if isinstance(tol, tuple) else (tol,) * len(a)
        err, worst, over = 0.0, 0.0, False  # worst: the largest error relative to its bound
        for x, y, bound in zip(a, b, tols, strict=True):
            x, y = x.detach().float().cpu().numpy(), y.detach().float().cpu().numpy()
            e = float(np.max(np.abs(x - y) / (np.abs(y) + 1))) if x.size else 0.0
            err, over = max(err, e), over or e > bound
            worst = max(worst, e / bound)
        missing = [p for p in expect if not used.get(p)]
        why = f"max rel. diff {err:.2e} "
        if over:
            why += f"above its bound ({worst:.1f}x) "
        if missing:
            why += f"not served by {', '.join(missing)} "
        if used_off:
            why += f"served with the paths off: {sorted(used_off)} "
        return not over and not missing and not used_off, why

    return check


def _name(dt) -> str:
    return "float32" if dt is None else str(dt).rpartition(".")[2]


def dev(a, dt=None, grad=False):
    t = mg.tensor(a, device=DEVICE)
    t = t if dt is None else t.to(dt)
    return t.requires_grad_() if grad else t


def main(argv=None) -> int:
    global DEVICE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--device",
        default="cuda",
        choices=("cuda", "fakegpu"),
        help="cuda (default), or fakegpu for a dry run with references as kernels",
    )
    ap.add_argument("--small", action="store_true", help="small shapes (a quick dry run)")
    args = ap.parse_args(argv)
    DEVICE = args.device
    dry_run = args.device == "fakegpu"
    if not dry_run and not mg.cuda.is_available():
        print("no usable GPU:", mg.cuda.why_unavailable())
        return 1
    install(dry_run)
    if dry_run:
        print("DRY RUN on fakegpu: each path's GPU launch replaced by its reference "
              "(checks the wiring and this script, not the kernels)")  # fmt: skip
    else:
        print(f"GPU: {mg.cuda.get_device_name(0)}")
    sz = SIZES["small" if args.small else "full"]
    rng = np.random.default_rng(0)
    n, c = sz["ce"]
    x = rng.standard_normal((n, c)).astype(np.float32) * 3
    t = rng.integers(0, c, n)
    t[:7] = 3
    xs = rng.standard_normal(sz["rows"]).astype(np.float32)
    d = xs.shape[-1]
    w0 = rng.standard_normal(d).astype(np.float32)
    ce_paths = ["kernels.cross_entropy"]
    for dt, tol in ((None, 1e-5), (mg.bfloat16, 2e-2)):
        for kw in ({"label_smoothing": 0.1, "ignore_index": 3}, {"reduction": "none"},
                   {"reduction": "sum"}):  # fmt: skip

            def ce(kw=kw, dt=dt):
                xt = dev(x, dt, True)
                loss = F.cross_entropy(xt, dev(t), **kw)
                g = np.linspace(0.5, 1.5, loss.numel()).reshape(loss.shape).astype(np.float32)
                loss.backward(dev(g).to(loss.dtype))
                return loss, xt.grad

            bwd = ["kernels.cross_entropy_backward"] if kw.get("reduction") == "none" else []
            run(f"cross_entropy {_name(dt)} {kw}", both(ce, ce_paths + bwd, tol))

        def sm(dt=dt):
            xt = dev(xs, dt, True)
            y = F.softmax(xt, -1)
            y.backward(dev(np.cos(xs)).to(y.dtype))
            return y, xt.grad

        run(f"softmax {_name(dt)}",
            both(sm, ["kernels.softmax", "kernels.softmax_backward"], tol))  # fmt: skip
        for norm in ("layer_norm", "rms_norm"):

            def nm(norm=norm, dt=dt):
                xt, w = dev(xs, dt, True), dev(w0, dt, True)
                if norm == "layer_norm":
                    y = F.layer_norm(xt, (d,), w, w * 0.5)
                else:
                    y = F.rms_norm(xt, (d,), w)
                y.backward(dev(np.cos(xs)).to(y.dtype))
                return y, xt.grad, w.grad

            run(f"{norm} {_name(dt)}", both(nm, [f"kernels.{norm}"], tol * 10))
    run("dropout p=0.1 (mask, scale, gradient)", lambda: dropout(xs))
    optimizer_cases(sz["opt"])
    cudnn_cases(rng, sz, dry_run)
    print("calls served by kernels:", dict(sorted(SERVED.items())))
    print("FAILED:", FAILED if FAILED else "none")
    return 1 if FAILED else 0


def dropout(xs):
    """The counter-based kernel's mask against the scale and the gradient (masks are not
    comparable with the plain code's: another generator)."""

    def step():
        mg.manual_seed(0)
        xt = dev(xs, None, True)
        y = F.dropout(xt, 0.1)
        y.backward(dev(np.ones_like(xs)))
        return y, xt

    with fused():
        (y, xt), used = served_during(step)
    yv, gv = y.detach().cpu().numpy(), xt.grad.cpu().numpy()
    keep = yv != 0
    frac = float(keep.mean())
    ok = np.allclose(yv[keep], xs[keep] / 0.9, rtol=1e-6) and np.allclose(gv, keep / 0.9)
    ok = ok and abs(frac - 0.9) < 0.005 + 5 * (0.09 / keep.size) ** 0.5
    served = used.get("kernels.dropout") and used.get("kernels.dropout_backward")
    why = f"kept {frac:.4f} " + ("" if served else "not served by kernels.dropout(_backward) ")
    return bool(ok and served), why


def optimizer_cases(shapes) -> None:
    for name, path, make in (
        ("AdamW", "kernels.adam_step", lambda ps: mg.optim.AdamW(ps, lr=1e-2)),
        ("SGD momentum", "kernels.sgd_step", lambda ps: mg.optim.SGD(ps, lr=1e-2, momentum=0.9)),
    ):

        def steps(make=make):
            r = np.random.default_rng(1)
            ps = [dev(r.standard_normal(s).astype(np.float32), None, True) for s in shapes]
            opt = make(ps)
            for _ in range(3):
                for p in ps:
                    p.grad = dev(r.standard_normal(p.shape).astype(np.float32))
                opt.step()
            return ps

        run(f"{name}: 3 steps", both(steps, [path], 1e-5))

        def steps16(make=make):
            r = np.random.default_rng(2)
            ps = [dev(r.standard_normal(s).astype(np.float32), mg.bfloat16, True)
                  for s in shapes[:2]]  # fmt: skip
            opt = make(ps)
            opt.master_weights = True
            for _ in range(3):
                for p in ps:
                    p.grad = dev(r.standard_normal(p.shape).astype(np.float32), mg.bfloat16)
                opt.step()
            return [opt.state[p]["master_param"] for p in ps] + ps

        # NOTE: float32 copies a few ulps apart round to bf16 params one bf16 ulp apart
        # where they sit near a rounding tie: the params get one bf16 ulp (2**-7 relative)
        run(f"{name} bf16 params, float32 copies: 3 steps",
            both(steps16, [path], (1e-5, 1e-5, 2.0**-7, 2.0**-7)))  # fmt: skip


def cudnn_cases(rng, sz, dry_run: bool) -> None:
    """F.conv2d and F.scaled_dot_product_attention through cuDNN (where it is installed;
    a dry run needs no cuDNN: the references stand in)."""
    state, why = fastpath.state("cudnn.conv2d")
    if state == fastpath.UNAVAILABLE and not dry_run:
        print(f"{'cuDNN conv2d / attention':50s} skipped: {why}")
        return
    xshape, wshape = sz["conv"]
    x = rng.standard_normal(xshape).astype(np.float32)
    w = rng.standard_normal(wshape).astype(np.float32) * 0.1
    b = rng.standard_normal(wshape[0]).astype(np.float32)
    conv_paths = ["cudnn.conv2d", "cudnn.conv2d_dgrad", "cudnn.conv2d_wgrad"]
    for dt, tol in ((None, 1e-4), (mg.bfloat16, 3e-2)):
        for kw in ({"padding": 1}, {"stride": 2, "padding": 1}):

            def conv(dt=dt, kw=kw):
                xt, wt, bt = dev(x, dt, True), dev(w, dt, True), dev(b, dt, True)
                y = F.conv2d(xt, wt, bt, **kw)
                y.backward(dev(np.cos(np.arange(y.numel())).reshape(y.shape)).to(y.dtype))
                return y, xt.grad, wt.grad, bt.grad

            run(f"conv2d {_name(dt)} {kw}", both(conv, conv_paths, tol))
    q, k, v = (rng.standard_normal(sz["attn"]).astype(np.float32) for _ in range(3))
    for causal in (False, True):

        def attn(causal=causal):
            ts = [dev(a, mg.bfloat16, True) for a in (q, k, v)]
            o = F.scaled_dot_product_attention(*ts, is_causal=causal)
            o.backward(dev(np.cos(q)).to(o.dtype))
            return [o] + [t.grad for t in ts]

        run(f"scaled_dot_product_attention bf16 causal={causal}",
            both(attn, ["cudnn.sdpa_train", "cudnn.sdpa_grad"], 3e-2))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
