"""Op benchmark: manygrad vs PyTorch on the CPU, side by side in one process.

Each case runs forward + backward (unless marked fwd) in both libraries, alternating one
sample of each after a warm-up, and reports the median times. Each sample follows one
untimed call of the same library: right after the other library ran, its worker threads
still hold the CPUs for a moment (PyTorch's OpenMP threads spin-wait; measured +50% on a
2-thread manygrad convolution timed right after a PyTorch one) and its data the caches. ``ratio`` is manygrad's
throughput over PyTorch's (PyTorch ms / manygrad ms, the median over alternated pairs):
above 1 manygrad is faster.

Usage: ``PYTHONPATH=src python benchmarks/ops.py [--quick] [--only conv] [--single-thread]``

``--single-thread`` runs both libraries on one thread (OPENBLAS_NUM_THREADS=1,
torch.set_num_threads(1)) and times process CPU time instead of wall time: on a machine
shared with other busy processes this measures the work each library does, unaffected by
time slices lost to the other processes.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import time

if "--single-thread" in sys.argv:  # NOTE: must be set before NumPy loads OpenBLAS
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np
import torch

import manygrad as mg


def _blas_info() -> str:
    """NumPy's BLAS library, the kernels it picked for this CPU and its thread count."""
    from manygrad import threads

    kernel = threads.blas_kernel() or "unknown"
    return f"OpenBLAS {kernel} kernels, {threads.get_num_threads()} thread(s)"


_clock = time.perf_counter


def _sample(fn, inner: int) -> float:
    """Mean time (ms) of ``inner`` back-to-back calls, after one untimed call."""
    fn()
    t0 = _clock()
    for _ in range(inner):
        fn()
    return (_clock() - t0) * 1e3 / inner


def _pair(name, make_mg, make_torch, budget_s, min_reps):
    """Warm up both, then alternate one sample of each (>= ~2 ms of calls) until the budget
    is spent. Returns the median times and the median of the per-pair ratios: a pair runs
    under the same load, so the ratio stays meaningful when other processes come and go."""
    f_mg, f_t = make_mg(), make_torch()
    for _ in range(3):
        f_mg()
        f_t()
    inner = [max(1, int(0.002 / max(_sample(f, 1) * 1e-3, 1e-7))) for f in (f_mg, f_t)]
    t_mg, t_t, start = [], [], time.perf_counter()
    while len(t_mg) < min_reps or time.perf_counter() - start < 2 * budget_s:
        t_mg.append(_sample(f_mg, inner[0]))
        t_t.append(_sample(f_t, inner[1]))
    ratio = statistics.median(t / m for m, t in zip(t_mg, t_t))
    return name, statistics.median(t_mg), statistics.median(t_t), ratio


def _fwd_bwd(lib, fn, shapes, grads, seed=0):
    """Closure running ``fn(*inputs)`` forward and backward with a fixed upstream gradient."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    if lib == "mg":
        ins = [mg.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
        up = mg.tensor(rng.standard_normal(tuple(fn(*ins).shape)).astype(np.float32))

        def run():
            for t in ins:
                t.grad = None
            fn(*ins).backward(up)
    else:
        ins = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
        up = torch.tensor(rng.standard_normal(tuple(fn(*ins).shape)).astype(np.float32))

        def run():
            for t in ins:
                t.grad = None
            fn(*ins).backward(up)

    return run


def _fwd(lib, fn, shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    if lib == "mg":
        ins = [mg.tensor(a) for a in arrays]
        return lambda: fn(*ins)
    ins = [torch.tensor(a) for a in arrays]

    def run():
        with torch.no_grad():
            fn(*ins)

    return run


def _cases():
    """(group, name, manygrad fn, torch fn, shapes, requires_grad flags or None for fwd only)."""
    tf = torch.nn.functional
    sm = getattr(mg, "softmax", None)
    cases = [
        ("add", "add 32x32 fwd+bwd", lambda a, b: a + b, lambda a, b: a + b,
         [(32, 32), (32, 32)], [True, True]),
        ("add", "add 2048x2048 fwd+bwd", lambda a, b: a + b, lambda a, b: a + b,
         [(2048, 2048), (2048, 2048)], [True, True]),
        ("matmul", "matmul 64x64 fwd+bwd", mg.matmul, torch.matmul,
         [(64, 64), (64, 64)], [True, True]),
        ("matmul", "matmul 1024x1024 fwd+bwd", mg.matmul, torch.matmul,
         [(1024, 1024), (1024, 1024)], [True, True]),
        # small batches through a Linear layer: thin products (1-3 rows, inner size 1)
        ("thin", "linear 784->512 batch 1 fwd+bwd", mg.nn.functional.linear,
         torch.nn.functional.linear, [(1, 784), (512, 784), (512,)], [True, True, True]),
        ("thin", "linear 512->512 batch 2 fwd+bwd", mg.nn.functional.linear,
         torch.nn.functional.linear, [(2, 512), (512, 512), (512,)], [True, True, True]),
        ("thin", "linear 512->512 batch 3 fwd", mg.nn.functional.linear,
         torch.nn.functional.linear, [(3, 512), (512, 512), (512,)], None),
        ("thin", "linear 512->1 batch 256 fwd+bwd", mg.nn.functional.linear,
         torch.nn.functional.linear, [(256, 512), (1, 512), (1,)], [True, True, True]),
    ]  # fmt: skip
    if sm is not None:
        cases += [
            ("softmax", "softmax 32x10 fwd+bwd", lambda x: sm(x, dim=-1),
             lambda x: torch.softmax(x, dim=-1), [(32, 10)], [True]),
            ("softmax", "softmax 512x1000 fwd+bwd", lambda x: sm(x, dim=-1),
             lambda x: torch.softmax(x, dim=-1), [(512, 1000)], [True]),
            ("softmax", "log_softmax 512x1000 fwd+bwd", lambda x: mg.log_softmax(x, dim=-1),
             lambda x: torch.log_softmax(x, dim=-1), [(512, 1000)], [True]),
        ]  # fmt: skip
    else:
        print("note: mg.softmax is not available in this checkout; softmax cases skipped")
    gelu = mg.nn.functional.gelu
    cases += [
        ("gelu", "gelu 256x3072 fwd", gelu, tf.gelu, [(256, 3072)], None),
        ("gelu", "gelu 256x3072 fwd+bwd", gelu, tf.gelu, [(256, 3072)], [True]),
    ]
    mf = mg.nn.functional
    act = [(256, 3072)]
    cases += [
        ("act", "silu 256x3072 fwd+bwd", mf.silu, tf.silu, act, [True]),
        ("act", "sigmoid 256x3072 fwd+bwd", mg.sigmoid, torch.sigmoid, act, [True]),
        ("act", "softplus 256x3072 fwd+bwd", mf.softplus, tf.softplus, act, [True]),
        ("act", "elu 256x3072 fwd+bwd", mf.elu, tf.elu, act, [True]),
        ("act", "leaky_relu 256x3072 fwd+bwd", lambda x: mf.leaky_relu(x, 0.1),
         lambda x: tf.leaky_relu(x, 0.1), act, [True]),
        ("act", "leaky_relu 4M fwd", lambda x: mf.leaky_relu(x, 0.1),
         lambda x: tf.leaky_relu(x, 0.1), [(4096, 1024)], None),
        ("act", "leaky_relu 4M fwd+bwd", lambda x: mf.leaky_relu(x, 0.1),
         lambda x: tf.leaky_relu(x, 0.1), [(4096, 1024)], [True]),
        ("act", "leaky_relu 64K fwd+bwd", lambda x: mf.leaky_relu(x, 0.1),
         lambda x: tf.leaky_relu(x, 0.1), [(256, 256)], [True]),
        ("pwl", "relu6 256x3072 fwd+bwd", mf.relu6, tf.relu6, act, [True]),
        ("pwl", "hardtanh(-2, 2) 256x3072 fwd+bwd", lambda x: mf.hardtanh(x, -2.0, 2.0),
         lambda x: tf.hardtanh(x, -2.0, 2.0), act, [True]),
        ("pwl", "threshold(0.1, 20) 256x3072 fwd+bwd", lambda x: mf.threshold(x, 0.1, 20.0),
         lambda x: tf.threshold(x, 0.1, 20.0), act, [True]),
        ("pwl", "hardshrink 256x3072 fwd+bwd", mf.hardshrink, tf.hardshrink, act, [True]),
        ("pwl", "softshrink 256x3072 fwd+bwd", mf.softshrink, tf.softshrink, act, [True]),
        ("pwl", "hardswish 256x3072 fwd+bwd", mf.hardswish, tf.hardswish, act, [True]),
        ("pwl", "hardsigmoid 256x3072 fwd+bwd", mf.hardsigmoid, tf.hardsigmoid, act, [True]),
        ("act", "relu 4M fwd", mf.relu, tf.relu, [(4096, 1024)], None),
        ("act", "relu 4M fwd+bwd", mf.relu, tf.relu, [(4096, 1024)], [True]),
        ("act", "relu 64K fwd+bwd", mf.relu, tf.relu, [(256, 256)], [True]),
        ("norm", "layer_norm 64x128x256 fwd+bwd", lambda x, w, b: mf.layer_norm(x, [256], w, b),
         lambda x, w, b: tf.layer_norm(x, [256], w, b), [(64, 128, 256), (256,), (256,)],
         [True, True, True]),
        ("norm", "layer_norm 8x128x768 fwd+bwd", lambda x, w, b: mf.layer_norm(x, [768], w, b),
         lambda x, w, b: tf.layer_norm(x, [768], w, b), [(8, 128, 768), (768,), (768,)],
         [True, True, True]),
    ]  # fmt: skip
    # U-Net / FPN decoders: 2x upsampling, and the other interpolation modes
    for mode, shape, kw in (
        ("bilinear", (16, 64, 32, 32), dict(scale_factor=2)),
        ("bilinear", (8, 128, 64, 64), dict(scale_factor=2)),
        ("bilinear", (32, 256, 14, 14), dict(size=(28, 28))),
        ("linear", (16, 64, 256), dict(scale_factor=2)),
        ("bicubic", (16, 64, 32, 32), dict(scale_factor=2)),
        ("trilinear", (4, 32, 16, 16, 16), dict(scale_factor=2)),
    ):
        to = "x2" if "scale_factor" in kw else "to " + "x".join(map(str, kw["size"]))
        for ac in (False, True):
            name = f"{mode} {'x'.join(map(str, shape))} {to} ac={ac:d}"
            k = dict(kw, mode=mode, align_corners=ac)
            mi = lambda x, k=k: mf.interpolate(x, **k)  # noqa: E731
            ti = lambda x, k=k: tf.interpolate(x, **k)  # noqa: E731
            cases += [
                ("upsample", f"{name} fwd", mi, ti, [shape], None),
                ("upsample", f"{name} fwd+bwd", mi, ti, [shape], [True]),
            ]
    gn = lambda f, g: lambda x, w, b: f(x, g, w, b)  # noqa: E731
    for shape, g in (((32, 64, 56, 56), 32), ((16, 128, 32, 32), 32), ((8, 256, 16, 16), 8),
                     ((64, 32, 8, 8), 4)):  # fmt: skip
        name = f"group_norm {'x'.join(map(str, shape))} g{g}"
        specs = [shape, shape[1:2], shape[1:2]]
        cases += [
            ("gnorm", f"{name} fwd", gn(mf.group_norm, g), gn(tf.group_norm, g), specs, None),
            ("gnorm", f"{name} fwd+bwd", gn(mf.group_norm, g), gn(tf.group_norm, g), specs,
             [True, True, True]),
        ]  # fmt: skip
    # batch norm (ResNet, VGG, U-Net blocks): training forward + backward, and evaluation
    bn = lambda f, r, t: lambda x, w, b: f(x, *r, w, b, t)  # noqa: E731
    for shape in ((32, 64, 32, 32), (32, 256, 8, 8), (64, 32, 16, 16)):
        name = f"batch_norm {'x'.join(map(str, shape))}"
        c = shape[1]
        rng = np.random.default_rng(2)
        rm, rv = rng.standard_normal(c).astype(np.float32), rng.random(c).astype(np.float32) + 0.5
        specs = [shape, (c,), (c,)]
        cases += [
            ("bn", f"{name} train fwd+bwd", bn(mf.batch_norm, (mg.zeros(c), mg.ones(c)), True),
             bn(tf.batch_norm, (torch.zeros(c), torch.ones(c)), True), specs, [True, True, True]),
            ("bn", f"{name} eval fwd", bn(mf.batch_norm, (mg.tensor(rm), mg.tensor(rv)), False),
             bn(tf.batch_norm, (torch.tensor(rm), torch.tensor(rv)), False), specs, None),
        ]  # fmt: skip
    c1 = [(64, 1, 28, 28), (32, 1, 3, 3), (32,)]
    c2 = [(64, 32, 14, 14), (64, 32, 3, 3), (64,)]
    c3 = [(64, 32, 28, 28), (64, 32, 3, 3), (64,)]
    conv = lambda f: lambda x, w, b: f(x, w, b, padding=1)  # noqa: E731
    cases += [
        ("conv", "conv2d 1->32 28x28 fwd", conv(mg.conv2d), conv(tf.conv2d), c1, None),
        ("conv", "conv2d 1->32 28x28 fwd+bwd", conv(mg.conv2d), conv(tf.conv2d), c1,
         [False, True, True]),
        ("conv", "conv2d 32->64 14x14 fwd", conv(mg.conv2d), conv(tf.conv2d), c2, None),
        ("conv", "conv2d 32->64 14x14 fwd+bwd", conv(mg.conv2d), conv(tf.conv2d), c2,
         [True, True, True]),
        ("conv", "conv2d 32->64 28x28 fwd+bwd", conv(mg.conv2d), conv(tf.conv2d), c3,
         [True, True, True]),
        ("conv", "max_pool2d 2x2 64x32x28x28 fwd+bwd", lambda x: mg.max_pool2d(x, 2),
         lambda x: tf.max_pool2d(x, 2), [(64, 32, 28, 28)], [True]),
    ]  # fmt: skip
    # average pooling (ResNet/DenseNet transitions, Inception branches)
    ap = lambda f, *a, **kw: lambda x: f(x, *a, **kw)  # noqa: E731
    for args, kw, name in (((2,), {}, "2x2"), ((3, 2, 1), {}, "3x3 s2 p1"),
                           ((3, 1, 1), dict(count_include_pad=False), "3x3 s1 p1 no-pad-count"),
                           ((3, 2), dict(ceil_mode=True), "3x3 s2 ceil")):  # fmt: skip
        f_mg, f_t = ap(mg.nn.functional.avg_pool2d, *args, **kw), ap(tf.avg_pool2d, *args, **kw)
        cases += [
            ("pool", f"avg_pool2d {name} 32x64x32x32 fwd", f_mg, f_t, [(32, 64, 32, 32)], None),
            ("pool", f"avg_pool2d {name} 32x64x32x32 fwd+bwd", f_mg, f_t, [(32, 64, 32, 32)],
             [True]),
        ]  # fmt: skip
    # DCGAN / U-Net upsampling layers
    ct = lambda f, **kw: lambda x, w, b: f(x, w, b, **kw)  # noqa: E731
    k4 = dict(stride=2, padding=1)
    cases += [
        ("conv", "conv_transpose2d 64->32 14x14 k4s2 fwd", ct(mg.conv_transpose2d, **k4),
         ct(tf.conv_transpose2d, **k4), [(64, 64, 14, 14), (64, 32, 4, 4), (32,)], None),
        ("conv", "conv_transpose2d 64->32 14x14 k4s2 fwd+bwd", ct(mg.conv_transpose2d, **k4),
         ct(tf.conv_transpose2d, **k4), [(64, 64, 14, 14), (64, 32, 4, 4), (32,)],
         [True, True, True]),
        ("conv", "conv_transpose2d 128->64 16x16 k4s2 fwd+bwd", ct(mg.conv_transpose2d, **k4),
         ct(tf.conv_transpose2d, **k4), [(16, 128, 16, 16), (128, 64, 4, 4), (64,)],
         [True, True, True]),
        ("conv", "conv_transpose2d 64->32 16x16 k2s2 fwd+bwd", ct(mg.conv_transpose2d, stride=2),
         ct(tf.conv_transpose2d, stride=2), [(32, 64, 16, 16), (64, 32, 2, 2), (32,)],
         [True, True, True]),
    ]  # fmt: skip
    # the same layers in their own group, one line per kernel/stride variant
    for n, c, hw, o, k, s, p in (
        (32, 64, 16, 32, 4, 2, 1),
        (32, 128, 8, 64, 4, 2, 1),
        (16, 64, 32, 64, 3, 1, 1),
        (16, 128, 16, 64, 2, 2, 0),
    ):
        name = f"conv_transpose2d {n}x{c}x{hw}x{hw}->{o} k{k}s{s}p{p}"
        specs = [(n, c, hw, hw), (c, o, k, k), (o,)]
        f_mg = ct(mg.conv_transpose2d, stride=s, padding=p)
        f_t = ct(tf.conv_transpose2d, stride=s, padding=p)
        cases += [
            ("convT", f"{name} fwd", f_mg, f_t, specs, None),
            ("convT", f"{name} fwd+bwd", f_mg, f_t, specs, [True, True, True]),
        ]
    ct3 = lambda f: lambda x, w, b: f(x, w, b, stride=2, padding=1, output_padding=1)  # noqa: E731
    c3d = [(4, 16, 8, 16, 16), (16, 8, 3, 3, 3), (8,)]
    cases += [
        ("conv3d", "conv_transpose3d 16->8 8x16x16 k3 s2 fwd", ct3(mg.nn.functional.conv_transpose3d),
         ct3(tf.conv_transpose3d), c3d, None),
        ("conv3d", "conv_transpose3d 16->8 8x16x16 k3 s2 fwd+bwd",
         ct3(mg.nn.functional.conv_transpose3d), ct3(tf.conv_transpose3d), c3d, [True, True, True]),
    ]  # fmt: skip
    # depthwise convolutions (MobileNet, ConvNeXt, EfficientNet; conformer and TCN in 1-d)
    dw = lambda f, c, **kw: lambda x, w, b: f(x, w, b, groups=c, **kw)  # noqa: E731
    for n, c, hw, k, s, p in ((32, 64, 28, 3, 1, 1), (16, 128, 56, 3, 2, 1), (32, 96, 14, 5, 1, 2)):
        name = f"dwconv2d {n}x{c}x{hw}x{hw} k{k} s{s} p{p}"
        specs = [(n, c, hw, hw), (c, 1, k, k), (c,)]
        f_mg, f_t = dw(mg.conv2d, c, stride=s, padding=p), dw(tf.conv2d, c, stride=s, padding=p)
        cases += [
            ("dwconv", f"{name} fwd", f_mg, f_t, specs, None),
            ("dwconv", f"{name} fwd+bwd", f_mg, f_t, specs, [True, True, True]),
        ]
    specs1 = [(16, 256, 200), (256, 1, 31), (256,)]
    f_mg, f_t = dw(mg.conv1d, 256, padding=15), dw(tf.conv1d, 256, padding=15)
    cases += [
        ("dwconv", "dwconv1d 16x256x200 k31 p15 fwd", f_mg, f_t, specs1, None),
        ("dwconv", "dwconv1d 16x256x200 k31 p15 fwd+bwd", f_mg, f_t, specs1, [True, True, True]),
    ]  # fmt: skip
    # cross entropy of class logits (ImageNet-sized and LM-vocabulary-sized rows)
    for rows, classes in ((256, 1000), (64, 32000)):
        for eps in (0.0, 0.1):
            n_t = np.random.default_rng(1).integers(0, classes, rows)
            tm, tt = mg.tensor(n_t), torch.tensor(n_t)
            cases.append((
                "xent", f"cross_entropy {rows}x{classes} ls={eps} fwd+bwd",
                lambda x, tm=tm, eps=eps: mf.cross_entropy(x, tm, label_smoothing=eps),
                lambda x, tt=tt, eps=eps: tf.cross_entropy(x, tt, label_smoothing=eps),
                [(rows, classes)], [True]))  # fmt: skip
    return cases


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs (about 10 s in all)")
    ap.add_argument(
        "--only",
        default=None,
        help="run one group: add, matmul, softmax, gelu, act, norm, gnorm, bn, upsample, conv, "
        "convT, conv3d, dwconv, xent, pool",
    )
    ap.add_argument("--budget", type=float, default=None, help="seconds per library per case")
    ap.add_argument("--single-thread", action="store_true", help="1 thread each, CPU time")
    args = ap.parse_args(argv)
    if args.single_thread:
        global _clock
        torch.set_num_threads(1)
        _clock = time.process_time
    budget = args.budget or (0.3 if args.quick else 2.0)
    min_reps = 5 if args.quick else 15

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"numpy {np.__version__} ({_blas_info()}); torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); manygrad {mg.__version__}")  # fmt: skip
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    print(f"env: {env or 'no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE'}; float32; median of repeats; "
          f"{'process CPU time' if args.single_thread else 'wall time'}")  # fmt: skip
    if hasattr(os, "getloadavg"):
        print(f"load average before: {os.getloadavg()[0]:.2f} (other processes share the CPUs)")
    rows = []
    for group, name, f_mg, f_t, shapes, grads in _cases():
        if args.only and group != args.only:
            continue
        if grads is None:
            mk_mg = functools.partial(_fwd, "mg", f_mg, shapes)
            mk_t = functools.partial(_fwd, "torch", f_t, shapes)
        else:
            mk_mg = functools.partial(_fwd_bwd, "mg", f_mg, shapes, grads)
            mk_t = functools.partial(_fwd_bwd, "torch", f_t, shapes, grads)
        rows.append(_pair(name, mk_mg, mk_t, budget, min_reps))
        n, m, t, r = rows[-1]
        print(f"  {n:<38} {m:9.3f} {t:9.3f} {r:6.2f}", flush=True)
    if hasattr(os, "getloadavg"):
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    print()
    print("| case | manygrad ms | PyTorch ms | ratio |")
    print("|---|---:|---:|---:|")
    for n, m, t, r in rows:
        print(f"| {n} | {m:.3f} | {t:.3f} | {r:.2f} |")


if __name__ == "__main__":
    main()
