"""group_norm (ops/_group_norm_rows.py: CPU arrays in cache-sized blocks of groups, other
devices in one block) against PyTorch: values and the gradients of input, weight and bias.

float32 results are compared with PyTorch's float64 results on the same float32 values,
to a few float32 roundings of the largest value: the blocks, the shifted two-pass variance
and the mean's rounding error carried into backward are what keep them there.
"""

import numpy as np
import pytest

import manygrad as mg
from manygrad.ops import _group_norm_rows

torch = pytest.importorskip("torch")
TF = torch.nn.functional
F = mg.nn.functional

# max |got - want| / max |want|, per dtype (float32: ~1e-7 seen here; PyTorch's own float32
# kernel is off by up to 7e-4 at x + 1e4, one of the cases below)
REL = {"float32": 2e-6, "float64": 1e-13}


def _data(shape, affine, dt, offset=0.0, seed=0):
    r = np.random.default_rng(seed)
    c = shape[1]
    x = (r.standard_normal(shape) * 2 + offset).astype(dt)
    g = r.standard_normal(shape).astype(dt)
    w = (r.standard_normal(c) + 1).astype(dt) if affine in ("both", "weight") else None
    b = r.standard_normal(c).astype(dt) if affine in ("both", "bias") else None
    return x, w, b, g


def _run(lib, fn, x, w, b, g, groups, device=None, need=(True, True, True)):
    """y and the gradients of x, weight, bias (None where not asked for) as float64 NumPy,
    and their dtypes; ``g`` None: the gradient of ``y.sum()``."""
    kw = {} if lib is torch else {"device": device}
    ts = [
        None if a is None else lib.tensor(a, **kw).requires_grad_(n)
        for a, n in zip((x, w, b), need)
    ]
    wt = ts[1]
    if lib is torch and w is None and b is not None:
        # NOTE: PyTorch 2.13's CPU backward fails on a bias without a weight ("tensor does
        # not have a device"): a constant weight of ones gives the same values
        wt = torch.ones(x.shape[1], dtype=ts[0].dtype)
    y = fn(ts[0], groups, wt, ts[2], 1e-5)
    if g is None:
        y.sum().backward()
    else:
        y.backward(lib.tensor(g, **kw))
    outs = [y] + [None if t is None else t.grad for t in ts]
    vals = [None if t is None else _np64(t) for t in outs]
    return vals, [None if t is None else t.dtype for t in outs]


def _np64(t):
    t = t.detach()
    return (t.cpu() if isinstance(t, mg.Tensor) else t).double().numpy()


def _truth(x, w, b, g, groups):
    """PyTorch in float64 on the same values (the upstream gradient, or ones)."""
    f64 = [None if a is None else a.astype(np.float64) for a in (x, w, b)]
    g64 = None if g is None else g.astype(np.float64)
    return _run(torch, TF.group_norm, *f64, g64, groups)[0]


def _close(got, want, rel, what, dx_scale=0.0):
    """Each of y, dx, dweight, dbias within ``rel`` of the largest value of ``want``'s (of
    ``dx_scale`` for dx if larger: its terms' size, where they cancel to ~0; and of 1)."""
    for i, (a, e) in enumerate(zip(got, want)):
        name = ("y", "dx", "dweight", "dbias")[i]
        assert (a is None) == (e is None), f"{what}: {name} given by one side only"
        if a is None or e.size == 0:
            continue
        assert a.shape == e.shape, f"{what}: {name} shape {a.shape} != {e.shape}"
        scale = max(float(np.abs(e).max()), dx_scale if i == 1 else 0.0, 1.0)
        err = float(np.abs(a - e).max()) / scale
        assert err <= rel, f"{what}: {name} off by {err:.2e} of its largest value (> {rel})"


def _dx_scale(x, w, g, groups):
    """max |g| max |w| max rstd: the size of dx's terms (dx ~ 0 in groups of 1 or 2 values)."""
    rstd = 1 / np.sqrt(x.astype(np.float64).reshape(x.shape[0], groups, -1).var(axis=2) + 1e-5)
    g_max = 1.0 if g is None else float(np.abs(g).max())
    w_max = 1.0 if w is None else float(np.abs(w).max())
    return g_max * w_max * float(rstd.max())


CASES = [
    ((4, 6, 17), 2),  # 3-d
    ((3, 8, 5, 5), 8),  # C == groups
    ((3, 8, 5, 5), 1),  # one group
    ((4, 6, 1, 1), 3),  # spatial size 1
    ((5, 6), 3),  # no spatial dims
    ((2, 8, 3, 4, 5), 4),  # 5-d
    ((8, 32, 16, 16), 4),
    ((2, 4, 1, 2), 4),  # two values a group
]


@pytest.mark.parametrize("block", [None, 40], ids=["one-block", "blocks"])
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize("shape, groups", CASES)
def test_group_norm_matches_float64(shape, groups, affine, block, monkeypatch):
    # NOTE: a block of 40 values: several blocks of whole groups with a short last one, or
    # one group a block when a group has more than 40 values
    if block is not None:
        monkeypatch.setattr(_group_norm_rows, "_BLOCK", block)
    x, w, b, g = _data(shape, affine, "float32")
    got, _ = _run(mg, F.group_norm, x, w, b, g, groups)
    want = _truth(x, w, b, g, groups)
    _close(got, want, REL["float32"], f"{shape} g{groups} {affine}", _dx_scale(x, w, g, groups))


@pytest.mark.parametrize("shape, groups", [((3, 8, 5, 5), 2), ((2, 6, 7), 3), ((4, 6), 6)])
def test_group_norm_on_every_device(device, shape, groups):
    for dt in ("float32", "float64"):
        x, w, b, g = _data(shape, "both", dt)
        got, dts = _run(mg, F.group_norm, x, w, b, g, groups, device=device)
        want, scale = _truth(x, w, b, g, groups), _dx_scale(x, w, g, groups)
        _close(got, want, REL[dt], f"{device} {dt} {shape} g{groups}", scale)
        assert all(d is getattr(mg, dt) for d in dts)


def test_group_norm_one_group_larger_than_a_block():
    # NOTE: 360k values a group, past the 256k of a block: one group a block
    x, w, b, g = _data((1, 4, 300, 300), "both", "float32")
    got, _ = _run(mg, F.group_norm, x, w, b, g, 1)
    _close(got, _truth(x, w, b, g, 1), REL["float32"], "one large group")


@pytest.mark.parametrize(
    "shape, groups, offset",
    [((8, 32, 16, 16), 8, 1e3), ((4, 32, 16, 16), 1, 1e4), ((64, 16, 2, 2), 4, 1e4)],
)
def test_group_norm_large_mean_float32(shape, groups, offset):
    # NOTE: PyTorch's float32 CPU kernel is off by 1e-5 to 7e-4 here (y, dx, dweight); a
    # one-pass variance, or x - mean in backward with the mean rounded to float32 (dweight;
    # dx in groups of 16 values) fails REL
    x, w, b, g = _data(shape, "both", "float32", offset=offset)
    got, _ = _run(mg, F.group_norm, x, w, b, g, groups)
    want, scale = _truth(x, w, b, g, groups), _dx_scale(x, w, g, groups)
    _close(got, want, REL["float32"], f"x + {offset:g}", scale)


def test_group_norm_outlier_first_in_each_group():
    # NOTE: the shift of the two-pass variance is the mean of a group's first 1024 values:
    # one first value 1000 std devs out (far from the mean) would lose ~13 bits
    x, w, b, g = _data((4, 32, 16, 16), "both", "float32")
    x.reshape(4, 4, -1)[:, :, 0] = 1000.0
    got, _ = _run(mg, F.group_norm, x, w, b, g, 4)
    _close(got, _truth(x, w, b, g, 4), REL["float32"], "outliers", _dx_scale(x, w, g, 4))


def test_group_norm_constant_groups():
    # NOTE: zero variance: y is the bias, exactly here (x - mean is 0)
    x, w, b, g = _data((2, 4, 3, 3), "both", "float32")
    x[...] = 3.0
    got, _ = _run(mg, F.group_norm, x, w, b, g, 2)
    np.testing.assert_array_equal(got[0], np.broadcast_to(b[None, :, None, None], x.shape))
    _close(got, _truth(x, w, b, g, 2), REL["float32"], "constant", _dx_scale(x, w, g, 2))


def test_group_norm_float64_matches_torch():
    x, w, b, g = _data((6, 12, 9, 7), "both", "float64", offset=5.0)
    got, _ = _run(mg, F.group_norm, x, w, b, g, 4)
    want, _ = _run(torch, TF.group_norm, x, w, b, g, 4)
    _close(got, want, REL["float64"], "float64")


def _strided(lib, a, layout):
    """``a`` (N, C, H, W) as a leaf tensor laid out as ``layout`` in memory."""
    if lib is torch:
        return torch.tensor(a).requires_grad_(True)
    if layout == "channels_last":
        data = np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    else:
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        data = wide[..., ::2]
    assert not data.flags.c_contiguous
    return mg.Tensor._wrap(data).requires_grad_(True)


@pytest.mark.parametrize("layout", ["channels_last", "strided"])
@pytest.mark.parametrize("grad", ["contiguous", "strided", "sum"])
def test_group_norm_non_contiguous(layout, grad):
    x, w, b, g = _data((4, 6, 5, 7), "both", "float32")
    outs = []
    for lib, fn in ((mg, F.group_norm), (torch, TF.group_norm)):
        xt = _strided(lib, x, layout)
        wt, bt = lib.tensor(w).requires_grad_(True), lib.tensor(b).requires_grad_(True)
        y = fn(xt, 3, wt, bt, 1e-5)
        if grad == "sum":  # NOTE: a broadcast gradient: copied block by block
            y.sum().backward()
        else:
            y.backward(_strided(lib, g, "strided").detach() if grad == "strided" else lib.tensor(g))
        outs.append([_np64(t) for t in (y, xt.grad, wt.grad, bt.grad)])
    _close(outs[0], outs[1], 2e-6, f"{layout} x, {grad} gradient")


def test_block_loop_takes_a_broadcast_gradient_as_its_copy(monkeypatch):
    monkeypatch.setattr(_group_norm_rows, "_BLOCK", 100)
    x, w, _, _ = _data((3, 4, 5, 6), "both", "float32")
    _, mean, rstd = _group_norm_rows.forward(np, x, 2, w, None, 1e-5)
    g = np.broadcast_to(np.float32(0.5), x.shape)
    args = (x, mean, rstd, 2, w, True, True, True)
    got = _group_norm_rows.backward(np, g, *args)
    want = _group_norm_rows.backward(np, np.ascontiguousarray(g), *args)
    for a, e in zip(got, want):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("need", [(True, False, False), (False, True, True), (False, True, False)])
def test_group_norm_some_gradients(need):
    x, w, b, g = _data((4, 8, 6, 6), "both", "float32")
    got, _ = _run(mg, F.group_norm, x, w, b, g, 4, need=need)
    want, _ = _run(torch, TF.group_norm, x, w, b, g, 4, need=need)
    _close(got, want, 2e-6, f"needs {need}")


@pytest.mark.parametrize("dt", ["bfloat16", "float16"])
@pytest.mark.parametrize("param_dt", [None, "float32"])
def test_group_norm_half_precision(dt, param_dt):
    # NOTE: computed in float32 and rounded once, as PyTorch: y is PyTorch's to one rounding
    # and the gradients are within two roundings of float64 on the same values
    x, w, b, g = _data((4, 6, 7, 7), "both", "float32")
    rounded = [mg.tensor(a).to(getattr(mg, d)).float().numpy()
               for a, d in ((x, dt), (w, param_dt or dt), (b, param_dt or dt), (g, dt))]  # fmt: skip
    outs, dts = [], []
    for lib, fn in ((mg, F.group_norm), (torch, TF.group_norm)):
        xt, wt, bt, gt = (lib.tensor(a).to(getattr(lib, d)) for a, d in
                          zip(rounded, (dt, param_dt or dt, param_dt or dt, dt)))  # fmt: skip
        for t in (xt, wt, bt):
            t.requires_grad_(True)
        y = fn(xt, 3, wt, bt, 1e-5)
        y.backward(gt)
        outs.append([_np64(t) for t in (y, xt.grad, wt.grad, bt.grad)])
        dts.append([str(t.dtype).split(".")[-1] for t in (y, xt.grad, wt.grad, bt.grad)])
    assert dts[0] == dts[1]
    ulp = {"bfloat16": 2.0**-8, "float16": 2.0**-11}[dt]
    _close(outs[0][:1], outs[1][:1], ulp, f"{dt} y")
    _close(outs[0], _truth(*rounded, 3), 2 * ulp, f"{dt} vs float64")
