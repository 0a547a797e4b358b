"""Dtype rules of the normalisations and the losses against PyTorch: for each combination
of input and parameter/target dtypes, PyTorch is run first; where it refuses, manygrad
must raise a DTypeError (also a RuntimeError) naming the fix, and where it accepts,
manygrad must give the same result dtype, close values, and gradients of the same dtypes.
"""

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import DTypeError

torch = pytest.importorskip("torch")
# NOTE: PyTorch's rms_norm warns that a weight of another dtype skips its fused kernel
pytestmark = [
    pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight"),
    pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss"),
]

FLOATS = ("float32", "float64", "bfloat16", "float16")
rng = np.random.default_rng(0)
DATA = {
    "x": rng.standard_normal((4, 6, 5)),
    "x2": rng.standard_normal((4, 6)),
    "x1": rng.standard_normal(6),
    "p5": rng.standard_normal(5),
    "p6": rng.standard_normal(6),
    "rm": rng.uniform(-0.5, 0.5, 6),
    "rv": rng.uniform(0.5, 2.0, 6),
    "prob": rng.uniform(0.1, 0.9, (4, 6)),
    "soft": rng.dirichlet(np.ones(6), 4),
    "cls": rng.integers(0, 6, 4),
    "cls3": rng.integers(0, 6, (4, 5)),
    "cls0": np.int64(2),
    "sign": np.where(rng.standard_normal((4, 6)) > 0, 1.0, -1.0),
}


def _run(lib, case, device):
    """("error", exception) or ("ok", output, {name: gradient or an exception})."""
    leaves = {}

    def mk(name, dtype, grad=False, key=None):
        a = DATA[key or name]
        if lib is torch:
            t = torch.tensor(a).to(getattr(torch, dtype))
        else:
            t = mg.tensor(a, device=device).to(getattr(mg, dtype))
        if grad:
            t.requires_grad_()
            leaves[name] = t
        return t

    try:
        out = case(lib, mk)
    except Exception as e:  # noqa: BLE001 - the refusal is what is compared
        return ("error", e)
    try:
        out.float().sum().backward()
        grads = {n: t.grad for n, t in leaves.items()}
    except Exception as e:  # noqa: BLE001
        grads = e
    return ("ok", out, grads)


def _np(t):
    t = t.detach()
    if isinstance(t, torch.Tensor):
        return t.double().numpy()
    return t.double().cpu().numpy()


def _tol(*dtypes):
    """Tolerance of the least precise dtype taking part."""
    if "bfloat16" in dtypes:
        return 3e-2
    if "float16" in dtypes:
        return 4e-3
    return 2e-4 if "float32" in dtypes else 1e-9


def _name(dt):
    return str(dt).split(".")[-1]


def compare(case, device, *dtypes):
    """Run ``case`` in PyTorch and manygrad and check that manygrad follows PyTorch."""
    want = _run(torch, case, "cpu")
    got = _run(mg, case, device)
    if want[0] == "error":
        assert got[0] == "error", f"PyTorch refuses ({want[1]}) but manygrad gave {got[1]!r}"
        e = got[1]
        assert isinstance(e, DTypeError) and isinstance(e, RuntimeError), repr(e)
        msg = str(e)
        assert any(fix in msg for fix in (".to(mg.", ".long()", ".float()")), msg
        return
    assert got[0] == "ok", f"PyTorch accepts but manygrad raised {got[1]!r}"
    out_t, out_m = want[1], got[1]
    assert _name(out_m.dtype) == _name(out_t.dtype)
    tol = _tol(*dtypes, _name(out_t.dtype))
    np.testing.assert_allclose(_np(out_m), _np(out_t), rtol=tol, atol=tol)
    grads_t, grads_m = want[2], got[2]
    assert not isinstance(grads_m, Exception), repr(grads_m)
    if isinstance(grads_t, Exception):
        # NOTE: PyTorch's backward refuses a few mixes its forward takes (layer_norm with
        # only a float32 bias for a 16-bit input, huber_loss with a target of another
        # dtype); manygrad gives each gradient in its tensor's dtype
        return
    for name, g_t in grads_t.items():
        g_m = grads_m[name]
        assert (g_t is None) == (g_m is None), name
        if g_t is not None:
            assert _name(g_m.dtype) == _name(g_t.dtype), name
            tol = _tol(*dtypes, _name(g_t.dtype))
            np.testing.assert_allclose(_np(g_m), _np(g_t), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------- normalisations

NORM_CASES = {
    "layer_norm": lambda xd, pd: lambda lib, mk: lib.nn.functional.layer_norm(
        mk("x", xd, True), (5,), mk("w", pd, True, "p5"), mk("b", pd, True, "p5")),
    "layer_norm_weight": lambda xd, pd: lambda lib, mk: lib.nn.functional.layer_norm(
        mk("x", xd, True), (5,), mk("w", pd, True, "p5")),
    "layer_norm_bias": lambda xd, pd: lambda lib, mk: lib.nn.functional.layer_norm(
        mk("x", xd, True), (5,), None, mk("b", pd, True, "p5")),
    "group_norm": lambda xd, pd: lambda lib, mk: lib.nn.functional.group_norm(
        mk("x", xd, True), 3, mk("w", pd, True, "p6"), mk("b", pd, True, "p6")),
    "batch_norm_train": lambda xd, pd: lambda lib, mk: lib.nn.functional.batch_norm(
        mk("x", xd, True), mk("rm", pd), mk("rv", pd), mk("w", pd, True, "p6"),
        mk("b", pd, True, "p6"), training=True),
    "batch_norm_eval": lambda xd, pd: lambda lib, mk: lib.nn.functional.batch_norm(
        mk("x", xd, True), mk("rm", pd), mk("rv", pd), training=False),
    "batch_norm_no_stats": lambda xd, pd: lambda lib, mk: lib.nn.functional.batch_norm(
        mk("x", xd, True), None, None, mk("w", pd, True, "p6"), None, training=True),
    "instance_norm": lambda xd, pd: lambda lib, mk: lib.nn.functional.instance_norm(
        mk("x", xd, True), weight=mk("w", pd, True, "p6"), bias=mk("b", pd, True, "p6")),
    "instance_norm_stats": lambda xd, pd: lambda lib, mk: lib.nn.functional.instance_norm(
        mk("x", xd, True), mk("rm", pd), mk("rv", pd)),
    "instance_norm_eval": lambda xd, pd: lambda lib, mk: lib.nn.functional.instance_norm(
        mk("x", xd, True), mk("rm", pd), mk("rv", pd), use_input_stats=False),
    "rms_norm": lambda xd, pd: lambda lib, mk: lib.nn.functional.rms_norm(
        mk("x", xd, True), (5,), mk("w", pd, True, "p5")),
}  # fmt: skip


@pytest.mark.parametrize("pdt", FLOATS)
@pytest.mark.parametrize("xdt", FLOATS)
@pytest.mark.parametrize("op", sorted(NORM_CASES))
def test_norm_param_dtypes_follow_torch(device, op, xdt, pdt):
    compare(NORM_CASES[op](xdt, pdt), device, xdt, pdt)


MIXED_PARAMS = [
    ("bfloat16", "float32", "bfloat16"),
    ("bfloat16", "bfloat16", "float32"),
    ("float16", "float32", "float64"),
    ("float32", "float32", "float64"),
    ("float64", "float64", "float32"),
]


@pytest.mark.parametrize("xdt, wdt, bdt", MIXED_PARAMS)
@pytest.mark.parametrize("op", ["layer_norm", "group_norm", "batch_norm", "instance_norm"])
def test_norm_weight_and_bias_of_different_dtypes(device, op, xdt, wdt, bdt):
    def case(lib, mk):
        F = lib.nn.functional
        x, w, b = mk("x", xdt, True), mk("w", wdt, True, "p6"), mk("b", bdt, True, "p6")
        if op == "layer_norm":
            return F.layer_norm(x, (5,), mk("w", wdt, True, "p5"), mk("b", bdt, True, "p5"))
        if op == "group_norm":
            return F.group_norm(x, 2, w, b)
        if op == "batch_norm":
            return F.batch_norm(x, None, None, w, b, training=True)
        return F.instance_norm(x, weight=w, bias=b)

    compare(case, device, xdt, wdt, bdt)


@pytest.mark.parametrize("xdt, sdt, wdt", [("bfloat16", "bfloat16", "float32"),
                                           ("bfloat16", "float32", "bfloat16"),
                                           ("float32", "float64", "float32"),
                                           ("float64", "float32", "float64")])  # fmt: skip
@pytest.mark.parametrize("op", ["batch_norm", "instance_norm"])
def test_running_stats_of_another_dtype_than_the_weight(device, op, xdt, sdt, wdt):
    def case(lib, mk):
        F = lib.nn.functional
        x, rm, rv = mk("x", xdt, True), mk("rm", sdt), mk("rv", sdt)
        w, b = mk("w", wdt, True, "p6"), mk("b", wdt, True, "p6")
        if op == "batch_norm":
            return F.batch_norm(x, rm, rv, w, b, training=True)
        return F.instance_norm(x, rm, rv, w, b)

    compare(case, device, xdt, sdt, wdt)


MODULES = {
    "LayerNorm": lambda lib, dt: lib.nn.LayerNorm(5, dtype=dt),
    "GroupNorm": lambda lib, dt: lib.nn.GroupNorm(3, 6, dtype=dt),
    "BatchNorm1d": lambda lib, dt: lib.nn.BatchNorm1d(6, dtype=dt),
    "BatchNorm1d_eval": lambda lib, dt: lib.nn.BatchNorm1d(6, dtype=dt).eval(),
    "InstanceNorm1d": lambda lib, dt: lib.nn.InstanceNorm1d(6, affine=True, dtype=dt),
    "RMSNorm": lambda lib, dt: lib.nn.RMSNorm(5, dtype=dt),
}


@pytest.mark.parametrize("xdt, pdt", [("bfloat16", "float32"), ("float16", "float32"),
                                      ("float64", "float32"), ("float32", "float64"),
                                      ("float32", "bfloat16")])  # fmt: skip
@pytest.mark.parametrize("name", sorted(MODULES))
def test_norm_modules_follow_torch(device, name, xdt, pdt):
    def case(lib, mk):
        m = MODULES[name](lib, getattr(lib, pdt))
        if lib is mg:
            m = m.to(device)
        return m(mk("x", xdt, True))

    compare(case, device, xdt, pdt)


def test_norm_refusal_names_the_tensors_and_the_cast():
    x = mg.randn(4, 6, 5).to(mg.bfloat16)
    with pytest.raises(DTypeError) as e:
        mg.nn.functional.batch_norm(x, mg.zeros(6, dtype=mg.bfloat16), mg.ones(6),
                                    mg.ones(6), mg.zeros(6), training=True)  # fmt: skip
    msg = str(e.value)
    assert "batch_norm" in msg and "running_mean" in msg and "bfloat16" in msg
    assert "running_mean.to(mg.float32)" in msg
    with pytest.raises(RuntimeError, match=r"weight\.to\(mg\.float32\)"):
        mg.nn.functional.layer_norm(mg.randn(3, 5), (5,), mg.ones(5, dtype=mg.float64))


def test_norms_under_cpu_autocast_follow_torch():
    """Under autocast a float32 model's norms take bfloat16 activations (mixed dtypes)."""
    outs = {}
    for lib in (torch, mg):
        w = lib.tensor(DATA["x"][0], dtype=lib.float32)  # (6, 5)
        mods = [lib.nn.LayerNorm(6), lib.nn.BatchNorm1d(6), lib.nn.GroupNorm(2, 6),
                lib.nn.RMSNorm(6)]  # fmt: skip
        x = lib.tensor(DATA["x2"][:, :5], dtype=lib.float32)
        with lib.autocast("cpu"):
            h = lib.nn.functional.linear(x, w, lib.tensor(DATA["p6"], dtype=lib.float32))
            outs[lib.__name__] = [h.dtype] + [m(h) for m in mods]
            outs[lib.__name__].append(lib.nn.InstanceNorm1d(6, affine=True)(h.reshape(2, 6, 2)))
    t, m = outs["torch"], outs["manygrad"]
    assert _name(m[0]) == _name(t[0]) == "bfloat16"
    for a, b in zip(m[1:], t[1:]):
        assert _name(a.dtype) == _name(b.dtype)
        np.testing.assert_allclose(_np(a), _np(b), rtol=3e-2, atol=3e-2)


def test_norms_under_gpu_autocast_keep_working():
    dev = "fakegpu"
    lin = mg.nn.Linear(5, 6, device=dev)
    mods = [mg.nn.LayerNorm(6, device=dev), mg.nn.BatchNorm1d(6, device=dev),
            mg.nn.GroupNorm(2, 6, device=dev), mg.nn.RMSNorm(6, device=dev)]  # fmt: skip
    with mg.autocast(dev):
        h = lin(mg.randn(4, 5, device=dev))
        assert h.dtype is mg.float16
        ys = [m(h) for m in mods]
    assert all(y.dtype in (mg.float16, mg.float32) for y in ys)
    sum(y.float().sum() for y in ys).backward()
    assert lin.weight.grad is not None and lin.weight.grad.dtype is mg.float32


# ---------------------------------------------------------------------------- losses

INTS = ("int64", "int32", "int16", "int8", "uint8", "bool")


@pytest.mark.parametrize("tdt", INTS)
@pytest.mark.parametrize("shape", ["x2", "x", "x1"])
@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_class_target_dtypes_follow_torch(device, op, shape, tdt):
    key = {"x2": "cls", "x": "cls3", "x1": "cls0"}[shape]

    def case(lib, mk):
        x = mk("x", "float32", True, shape)  # (N, C), (N, C, d) or (C,), C = 6
        t = mk("t", "int64", key=key).to(getattr(lib, tdt) if tdt != "bool" else lib.bool)
        return getattr(lib.nn.functional, op)(x, t)

    compare(case, device, "float32")


@pytest.mark.parametrize("xdt, wdt", [("float32", "float64"), ("float64", "float32"),
                                      ("bfloat16", "float32"), ("float32", "bfloat16"),
                                      ("float32", "float32")])  # fmt: skip
@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_class_weight_dtypes_follow_torch(device, op, xdt, wdt):
    def case(lib, mk):
        w = mk("w", wdt, key="p6").abs()
        return getattr(lib.nn.functional, op)(mk("x", xdt, True, "x2"),
                                              mk("t", "int64", key="cls"), weight=w)  # fmt: skip

    compare(case, device, xdt, wdt)


PAIRS = [("float32", "float64"), ("float64", "float32"), ("float32", "bfloat16"),
         ("bfloat16", "float32"), ("float16", "float32"), ("bfloat16", "float16"),
         ("float32", "float32")]  # fmt: skip


@pytest.mark.parametrize("xdt, tdt", PAIRS)
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.1}, {"weight": "float64"}])
def test_soft_target_cross_entropy_promotes_as_torch(device, xdt, tdt, kw):
    def case(lib, mk):
        kws = dict(kw)
        if "weight" in kws:
            kws["weight"] = mk("w", kws["weight"], key="p6").abs()
        return lib.nn.functional.cross_entropy(mk("x", xdt, True, "x2"),
                                               mk("t", tdt, True, "soft"), **kws)  # fmt: skip

    compare(case, device, xdt, tdt)


REGRESSION = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
              "binary_cross_entropy", "binary_cross_entropy_with_logits", "soft_margin_loss",
              "poisson_nll_loss", "multilabel_soft_margin_loss"]  # fmt: skip


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("xdt, tdt", PAIRS)
@pytest.mark.parametrize("op", REGRESSION)
def test_target_dtype_rules_follow_torch(device, op, xdt, tdt, reduction):
    key = {"binary_cross_entropy": "prob", "kl_div": "prob", "soft_margin_loss": "sign",
           "multilabel_soft_margin_loss": "prob", "binary_cross_entropy_with_logits": "prob"}  # fmt: skip

    def case(lib, mk):
        x = mk("x", xdt, True, "prob" if op == "binary_cross_entropy" else "x2")
        t = mk("t", tdt, op != "soft_margin_loss", key.get(op, "x2"))
        if op == "kl_div":
            x = x.log_softmax(1)
        return getattr(lib.nn.functional, op)(x, t, reduction=reduction)

    compare(case, device, xdt, tdt)


@pytest.mark.parametrize("tdt", ["int64", "int32", "bool"])
@pytest.mark.parametrize("op", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                                "kl_div", "binary_cross_entropy_with_logits"])  # fmt: skip
def test_integer_targets_follow_torch(device, op, tdt):
    def case(lib, mk):
        t = mk("t", "float32", key="sign").gt(0).to(getattr(lib, tdt))
        return getattr(lib.nn.functional, op)(mk("x", "float32", True, "x2"), t)

    compare(case, device, "float32")


@pytest.mark.parametrize("tdt", ["int64", "int32", "uint8"])
def test_margin_class_targets_follow_torch(device, tdt):
    def multi(lib, mk):
        t = mk("t", "int64", key="cls").to(getattr(lib, tdt))
        return lib.nn.functional.multi_margin_loss(mk("x", "float32", True, "x2"), t)

    def multilabel(lib, mk):
        t = mk("t", "int64", key="cls").reshape(4, 1).expand(4, 6).to(getattr(lib, tdt))
        return lib.nn.functional.multilabel_margin_loss(mk("x", "float32", True, "x2"), t)

    compare(multi, device, "float32")
    compare(multilabel, device, "float32")


@pytest.mark.parametrize("wdt", ["float32", "float64"])
def test_multi_margin_weight_dtype_follows_torch(device, wdt):
    def case(lib, mk):
        return lib.nn.functional.multi_margin_loss(
            mk("x", "float32", True, "x2"), mk("t", "int64", key="cls"),
            weight=mk("w", wdt, key="p6").abs())  # fmt: skip

    compare(case, device, "float32", wdt)


def test_losses_under_autocast_keep_float32():
    """Under autocast the losses take bfloat16 activations with float32 targets/weights."""
    res = {}
    for lib in (torch, mg):
        x = lib.tensor(DATA["x2"], dtype=lib.float32)
        with lib.autocast("cpu"):
            h = lib.nn.functional.linear(x, lib.tensor(np.eye(6), dtype=lib.float32))
            F = lib.nn.functional
            res[lib.__name__] = [
                F.cross_entropy(h, lib.tensor(DATA["cls"]), weight=lib.ones(6)),
                F.cross_entropy(h, lib.tensor(DATA["soft"], dtype=lib.float32)),
                F.mse_loss(h, lib.tensor(DATA["x2"], dtype=lib.float32)),
                F.binary_cross_entropy_with_logits(h, lib.tensor(DATA["prob"], dtype=lib.float32)),
            ]  # fmt: skip
    for a, b in zip(res["manygrad"], res["torch"]):
        assert _name(a.dtype) == _name(b.dtype)
        np.testing.assert_allclose(_np(a), _np(b), rtol=3e-2, atol=3e-2)
