"""Check every fused kernel on a GPU against its twin, and time it.

``python -m manygrad.kernels.gpucheck --out DIR`` (run by ``scripts/gpu-check.sh``): for
each fast path, the CuPy kernel's result is compared with the NumPy twin run on the host;
then the kernel and the twin running on the GPU (plain CuPy, unfused) are timed, with the
memory bandwidth the kernel reached. Writes ``kernels.json`` and prints a Markdown table. A path
whose results match is the evidence for marking it verified in ``fastpath.py`` (with the
figures in ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import ml_dtypes
import numpy as np

from .. import backend
from . import gelu, norms, optim_step, rng_dropout, row_softmax, xent

BF16 = np.dtype(ml_dtypes.bfloat16)


@dataclass
class Case:
    path: str
    label: str
    make: Callable  # rng -> tuple of host arrays (the arguments)
    gpu: Callable
    ref: Callable
    kw: dict
    tol: float = 1e-5
    mutates: bool = False  # optimizer steps update their arguments
    flops: int = 0  # for TFLOP/s (GEMMs, convolutions, attention)


@dataclass
class Row:
    path: str
    label: str
    ok: bool
    max_err: float = float("nan")
    tol: float = 0.0
    kernel_ms: float = float("nan")
    cupy_ms: float = float("nan")
    gbps: float = float("nan")
    tflops: float = float("nan")
    error: str = ""


def _r(rng, shape, dtype=np.float32, scale=1.0):
    return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(dtype)


def _opt_args(rng, dtype, n_tensors=16, size=1 << 19):
    shapes = [(size + 37 * i,) for i in range(n_tensors)]
    ps = [_r(rng, s, dtype) for s in shapes]
    gs = [_r(rng, s, dtype) for s in shapes]
    zeros = [np.zeros(s, np.float32) for s in shapes]
    masters = None if dtype == np.float32 else [p.astype(np.float32) for p in ps]
    return ps, gs, zeros, [z.copy() for z in zeros], masters


def cases() -> list[Case]:
    """The checks, one per fast path and dtype (shapes of a GPT-2-small layer)."""
    out = []
    for dt in (np.float32, BF16):
        name = np.dtype(dt).name
        out += [
            Case("kernels.bias_gelu", f"{name} 8192x3072 tanh",
                 lambda r, dt=dt: (_r(r, (8192, 3072), dt), _r(r, (3072,), dt)),
                 gelu.gpu_forward, gelu.bias_gelu_forward, {"approximate": "tanh"}),
            Case("kernels.bias_gelu_backward", f"{name} 8192x3072 erf",
                 lambda r, dt=dt: (_r(r, (8192, 3072), dt), _r(r, (8192, 3072), dt),
                                   _r(r, (3072,), dt)),
                 gelu.gpu_backward, gelu.bias_gelu_backward, {"approximate": "none"}),
            Case("kernels.cross_entropy", f"{name} 1024x50257 eps=0.1",
                 lambda r, dt=dt: (_r(r, (1024, 50257), dt, 3.0),
                                   r.integers(-1, 50257, 1024).astype(np.int64)),
                 xent.gpu_forward, lambda x, t, **k: xent.cross_entropy_forward(x, t, **k),
                 {"ignore_index": -1, "label_smoothing": 0.1}),
            Case("kernels.layer_norm", f"{name} 8192x768",
                 lambda r, dt=dt: (_r(r, (8192, 768), dt), _r(r, (768,), dt), _r(r, (768,), dt)),
                 norms.gpu_layer_norm_forward, norms.layer_norm_forward, {}),
            Case("kernels.rms_norm", f"{name} 8192x768",
                 lambda r, dt=dt: (_r(r, (8192, 768), dt), _r(r, (768,), dt)),
                 norms.gpu_rms_norm_forward, norms.rms_norm_forward, {}),
            Case("kernels.softmax", f"{name} 24x1024x1024 causal",
                 lambda r, dt=dt: (_r(r, (24, 1024, 1024), dt, 3.0),),
                 row_softmax.gpu_forward, row_softmax.softmax_forward,
                 {"scale": 0.125, "causal": True}),
            Case("kernels.dropout", f"{name} 8192x3072 p=0.1",
                 lambda r, dt=dt: (_r(r, (8192, 3072), dt),),
                 rng_dropout.gpu_forward, rng_dropout.dropout_forward,
                 {"p": 0.1, "seed": 1234, "offset": 99}, tol=0.0),
            Case("kernels.adam_step", f"{name} 16 tensors, 8.4M params",
                 lambda r, dt=dt: _opt_args(r, dt),
                 lambda *a, **k: optim_step.gpu_step(True, *a, **k), optim_step.adam_step,
                 {"hyper": optim_step.hyper(1e-3, weight_decay=0.1, step=3),
                  "flags": optim_step.ADAMW}, mutates=True),
        ]  # fmt: skip
    # backward passes (float32), from the forwards' saved statistics
    out += [
        Case("kernels.layer_norm_backward", "float32 8192x768", _ln_bwd_args,
             norms.gpu_layer_norm_backward, norms.layer_norm_backward, {}, tol=1e-4),
        Case("kernels.rms_norm_backward", "float32 8192x768", _rms_bwd_args,
             norms.gpu_rms_norm_backward, norms.rms_norm_backward, {}, tol=1e-4),
        Case("kernels.cross_entropy_backward", "float32 1024x50257", _xent_bwd_args,
             xent.gpu_backward, xent.cross_entropy_backward, {}),
        Case("kernels.softmax_backward", "float32 24x1024x1024", _sm_bwd_args,
             row_softmax.gpu_backward, row_softmax.softmax_backward, {"scale": 0.125}),
        Case("kernels.dropout_backward", "float32 8192x3072", lambda r: (_r(r, (8192, 3072)),),
             rng_dropout.gpu_backward, rng_dropout.dropout_backward,
             {"p": 0.1, "seed": 1234, "offset": 99}, tol=0.0),
        Case("kernels.sgd_step", "float32 16 tensors, 8.4M params",
             lambda r: _opt_args(r, np.float32)[:3] + (None, None),
             lambda *a, **k: optim_step.gpu_step(False, *a, **k),
             lambda p, g, b, _s2, m, **k: optim_step.sgd_step(p, g, b, m, **k),
             {"hyper": optim_step.hyper(0.1, weight_decay=1e-4, step=2, momentum=0.9),
              "flags": optim_step.NESTEROV}, mutates=True),
    ]  # fmt: skip
    out.append(Case("rnn.sequence", "float32 LSTM(256->512) T64 B32, no_grad", lambda r: (
        _r(r, (64, 32, 256)), _r(r, (2048, 256), scale=0.05), _r(r, (2048, 512), scale=0.05),
        _r(r, (2048,), scale=0.1), _r(r, (2048,), scale=0.1)), _lstm_sequence, _lstm_steps, {},
        tol=1e-4))  # fmt: skip
    return out + library_cases()


def _lstm_sequence(x, w_ih, w_hh, b_ih, b_hh):
    """One LSTM layer as the whole-sequence op (``rnn.sequence``), output array."""
    from .. import autograd
    from ..ops import rnn
    from ..tensor import Tensor

    t = [Tensor._wrap(a) for a in (x, w_ih, w_hh, b_ih, b_hh)]
    with autograd.no_grad():
        out, _, _ = rnn.fused_layers("LSTM", t[0], None, [[*t[1:], None]], (False,))
    return out._data


def _lstm_steps(x, w_ih, w_hh, b_ih, b_hh):
    """The same layer by the reference composition, a step at a time."""
    from .. import autograd
    from ..ops import rnn
    from ..tensor import Tensor

    xp = backend.array_module(x)
    z = Tensor._wrap(xp.zeros((x.shape[1], w_hh.shape[1]), x.dtype))
    t = [Tensor._wrap(a) for a in (x, w_ih, w_hh, b_ih, b_hh)]
    with autograd.no_grad():
        out, _ = rnn.rnn_layer("LSTM", t[0], (z, z), *t[1:], fused=False)
    return out._data


def library_cases() -> list[Case]:
    """cuBLASLt and cuDNN paths (``manygrad.cuda``), against their references."""
    from ..cuda import cudnn_graphs as cg
    from ..cuda import cudnn_train as ct
    from ..cuda import gemm
    from ..cuda import ltgemm as lt

    n = 4096
    return [
        Case("cublaslt.matmul", f"bfloat16 {n}^3 + bias", lambda r: (
            _r(r, (n, n), BF16, 0.03), _r(r, (n, n), BF16, 0.03), "BIAS", _r(r, (n,), BF16)),
            gemm.matmul, gemm.reference, {}, tol=2e-2, flops=2 * n**3),
        Case("cublaslt.matmul", f"float32 {n // 2}^3", lambda r: (
            _r(r, (n // 2, n // 2), scale=0.03), _r(r, (n // 2, n // 2), scale=0.03)),
            gemm.matmul, gemm.reference, {}, tol=1e-4, flops=2 * (n // 2) ** 3),
        Case("cublaslt.direct", f"bfloat16 {n}^3", lambda r: (
            _r(r, (n, n), BF16, 0.03), _r(r, (n, n), BF16, 0.03)),
            lt.matmul, lt.reference, {}, tol=2e-2, flops=2 * n**3),
        Case("cublaslt.direct", "bfloat16 48x512x64 @ (48x512x64)^T (heads)", lambda r: (
            _r(r, (48, 512, 64), BF16), _r(r, (48, 512, 64), BF16).transpose(0, 2, 1)),
            lt.matmul, lt.reference, {}, tol=2e-2, flops=2 * 48 * 512 * 512 * 64),
        Case("cublaslt.direct", "float16 8192x768 @ (3072x768)^T + bias (Linear)", lambda r: (
            _r(r, (8192, 768), np.float16, 0.1), _r(r, (3072, 768), np.float16, 0.1).T,
            _r(r, (3072,), np.float16)),
            lt.matmul, lt.reference, {}, tol=2e-2, flops=2 * 8192 * 768 * 3072),
        Case("cublaslt.direct", f"float32 {n // 2}^3 (capture path)", lambda r: (
            _r(r, (n // 2, n // 2), scale=0.03), _r(r, (n // 2, n // 2), scale=0.03)),
            lt.matmul, lt.reference, {}, tol=1e-4, flops=2 * (n // 2) ** 3),
        Case("cudnn.conv2d", "bfloat16 32x64x56x56 3x3 +bias+relu", lambda r: (
            _r(r, (32, 64, 56, 56), BF16), _r(r, (64, 64, 3, 3), BF16, 0.05),
            _r(r, (64,), BF16)), cg.conv2d, cg.conv2d_reference,
            {"padding": 1, "relu": True}, tol=2e-2, flops=2 * 32 * 64 * 56 * 56 * 64 * 9),
        Case("cudnn.conv2d_dgrad", "bfloat16 16x64x28x28 3x3 pad 1", lambda r: (
            _r(r, (16, 64, 28, 28), BF16), _r(r, (64, 64, 3, 3), BF16, 0.05), (16, 64, 28, 28)),
            ct.conv2d_backward_data, ct.conv2d_backward_data_reference,
            {"padding": 1}, tol=2e-2, flops=2 * 16 * 64 * 28 * 28 * 64 * 9),
        Case("cudnn.conv2d_wgrad", "bfloat16 16x64x28x28 3x3 pad 1", lambda r: (
            _r(r, (16, 64, 28, 28), BF16), _r(r, (16, 64, 28, 28), BF16, 0.05), (64, 64, 3, 3)),
            ct.conv2d_backward_weight, ct.conv2d_backward_weight_reference,
            {"padding": 1}, tol=2e-2, flops=2 * 16 * 64 * 28 * 28 * 64 * 9),
        Case("cudnn.sdpa_train", "bfloat16 4x12x1024x64 causal, stats", lambda r: tuple(
            _r(r, (4, 12, 1024, 64), BF16) for _ in range(3)), ct.sdpa_train,
            ct.sdpa_train_reference, {"causal": True}, tol=2e-2,
            flops=2 * 2 * 4 * 12 * 1024 * 1024 * 64 // 2),
        Case("cudnn.sdpa_grad", "bfloat16 4x12x1024x64 causal", _sdpa_grad_args, ct.sdpa_grad,
             ct.sdpa_grad_reference, {"causal": True}, tol=3e-2,
             flops=5 * 2 * 4 * 12 * 1024 * 1024 * 64 // 2),
        Case("cudnn.sdpa", "bfloat16 4x12x1024x64 causal", lambda r: tuple(
            _r(r, (4, 12, 1024, 64), BF16) for _ in range(3)), cg.sdpa, cg.sdpa_reference,
            {"causal": True}, tol=2e-2, flops=2 * 2 * 4 * 12 * 1024 * 1024 * 64 // 2),
    ]  # fmt: skip


def _sdpa_grad_args(r):
    from ..cuda import cudnn_train as ct

    q, k, v = (_r(r, (4, 12, 1024, 64), BF16) for _ in range(3))
    o, stats = ct.sdpa_train_reference(q, k, v, None, True)
    return q, k, v, o, _r(r, (4, 12, 1024, 64), BF16), stats


def _ln_bwd_args(r):
    x, w, b = _r(r, (8192, 768)), _r(r, (768,)), _r(r, (768,))
    _, mean, rstd = norms.layer_norm_forward(x, w, b)
    return _r(r, (8192, 768)), x, w, mean, rstd


def _rms_bwd_args(r):
    x, w = _r(r, (8192, 768)), _r(r, (768,))
    return _r(r, (8192, 768)), x, w, norms.rms_norm_forward(x, w)[1]


def _xent_bwd_args(r):
    x, t = _r(r, (1024, 50257), scale=3.0), r.integers(0, 50257, 1024).astype(np.int64)
    lse = xent.cross_entropy_forward(x, t)[1]
    return x, t, lse, np.full((), 1 / 1024, np.float32)


def _sm_bwd_args(r):
    y = row_softmax.softmax_forward(_r(r, (24, 1024, 1024), scale=3.0), 0.125)
    return _r(r, y.shape), y


def _flat(out):
    if isinstance(out, tuple | list):
        return [a for o in out for a in _flat(o)]
    return [] if out is None else [out]


def _max_err(got, want) -> float:
    err = 0.0
    for g, w in zip(_flat(got), _flat(want)):
        g32 = backend.to_numpy(g).astype(np.float32)
        w32 = np.asarray(w).astype(np.float32)
        fin = np.isfinite(w32)
        if (np.isnan(g32) != np.isnan(w32)).any():
            return float("inf")
        d = np.abs(g32[fin] - w32[fin]) / (1.0 + np.abs(w32[fin]))
        err = max(err, float(d.max()) if d.size else 0.0)
    return err


def _to(args, dev):
    if isinstance(args, list):
        return [_to(a, dev) for a in args]
    if isinstance(args, tuple):
        return tuple(_to(a, dev) for a in args)
    return backend.to_device(args, dev) if isinstance(args, np.ndarray) else args


def _nbytes(args) -> int:
    return sum(a.nbytes for a in _flat(list(args)) if hasattr(a, "nbytes"))


def _time(fn, sync, repeat) -> float:
    fn()
    sync()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def run_case(c: Case, device, repeat: int = 20, seed: int = 0) -> Row:
    rng = np.random.default_rng(seed)
    host = c.make(rng)
    row = Row(c.path, c.label, False, tol=c.tol)
    try:
        dev_args = _to(host, device)
        with backend.device_scope(device):
            got = c.gpu(*dev_args, **c.kw)
            want = c.ref(*host, **c.kw)
            if c.mutates:  # compare the updated params
                got, want = dev_args[0], host[0]
            row.max_err = _max_err(got, want)
            row.ok = row.max_err <= max(c.tol, _dtype_tol(host))
            sync = lambda: backend.synchronize(device)  # noqa: E731
            row.kernel_ms = _time(lambda: c.gpu(*dev_args, **c.kw), sync, repeat)
            row.cupy_ms = _time(lambda: c.ref(*dev_args, **c.kw), sync, repeat)
        out_bytes = _nbytes(host) if c.mutates else _nbytes(_flat(want))
        row.gbps = (_nbytes(host) + out_bytes) / (row.kernel_ms * 1e-3) / 1e9
        if c.flops:
            row.tflops = c.flops / (row.kernel_ms * 1e-3) / 1e12
    except Exception as e:  # a failing path is a row, not a crash of the whole check
        row.error = f"{type(e).__name__}: {e}"[:500]
    return row


def _dtype_tol(host) -> float:
    dts = {a.dtype for a in _flat(list(host)) if hasattr(a, "dtype")}
    return 8e-3 if BF16 in dts else 0.0  # one bf16 ulp, relative


def markdown(rows: list[Row], gpu: str) -> str:
    lines = [f"Fused kernels on {gpu}: the kernel against its NumPy twin, and timed against "
             "the twin run by CuPy (unfused).", "",
             "| path | case | ok | max rel. err | kernel ms | CuPy ms | speed-up | GB/s | TFLOP/s |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r.error:
            lines.append(f"| {r.path} | {r.label} | error | {r.error} | | | | | |")
            continue
        lines.append(f"| {r.path} | {r.label} | {'yes' if r.ok else 'NO'} | {r.max_err:.2e} | "
                     f"{r.kernel_ms:.3f} | {r.cupy_ms:.3f} | {r.cupy_ms / r.kernel_ms:.2f}x | "
                     f"{r.gbps:.0f} | {r.tflops:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m manygrad.kernels.gpucheck",
                                 description=__doc__.splitlines()[0])  # fmt: skip
    ap.add_argument("--out", default=".", help="directory for kernels.json")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--only", default="", help="comma-separated path names to run")
    args = ap.parse_args(argv)
    dev = backend.device(args.device)
    if dev.type == "cuda" and not backend.cuda_available():
        print(f"gpucheck: no usable GPU: {backend.cuda_status()[1]}", file=sys.stderr)
        return 1
    gpu = args.device
    if dev.type == "cuda":
        from .. import cuda

        gpu = cuda.get_device_name(dev.index or 0)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    rows = []
    for c in cases():
        if only and c.path not in only:
            continue
        r = run_case(c, dev, args.repeat)
        rows.append(r)
        status = "ok" if r.ok else ("ERROR " + r.error if r.error else "MISMATCH")
        print(f"{c.path:<30} {c.label:<32} {status} err={r.max_err:.2e} "
              f"kernel={r.kernel_ms:.3f}ms cupy={r.cupy_ms:.3f}ms {r.gbps:.0f}GB/s", flush=True)  # fmt: skip
    os.makedirs(args.out, exist_ok=True)
    _write(os.path.join(args.out, "kernels.json"),
           json.dumps({"gpu": gpu, "rows": [asdict(r) for r in rows]}, indent=2))  # fmt: skip
    print("\n" + markdown(rows, gpu))
    return 0 if rows and all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
