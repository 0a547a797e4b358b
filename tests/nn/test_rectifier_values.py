"""relu and leaky_relu bit for bit as PyTorch's: NaN, +-inf, -0.0, the gradient at 0, inf
and NaN in the upstream gradient, slopes 0, 1, > 1 and negative, 16-bit floats, arrays of
one block and of many (``ops/_relu_blocks.py``) and strided ones (the plain formulas);
the in-place forms write into the input, bump its version and keep what PyTorch keeps."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.ops import _relu_blocks

torch = pytest.importorskip("torch")
F, TF = mg.nn.functional, torch.nn.functional

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 3e38, -3e38, 1.0, -1.0, 0.5]
UP_SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, 2.0]
SLOPES = [0.01, 0.2, 1.0, 1.5, 0.0, -0.5]


def _values(n, rng):
    """``n`` values: the special ones spread among random ones, and an upstream gradient
    holding inf, NaN and zeros at some of them."""
    x = rng.standard_normal(n)
    g = rng.standard_normal(n)
    at = rng.choice(n, size=min(n, 6 * len(SPECIAL)), replace=False)
    x[at] = np.resize(SPECIAL, at.size)
    g[at[::2]] = np.resize(UP_SPECIAL, at[::2].size)
    return x, g


def _same_bits(m, t, what, signs=True):
    """Equal values with equal signs of zero (unless ``signs`` is False); NaN where PyTorch
    has NaN (any payload)."""
    mv = m.detach().to(mg.float32).numpy() if m.dtype is mg.bfloat16 else m.detach().numpy()
    tv = t.detach().float().numpy() if t.dtype is torch.bfloat16 else t.detach().numpy()
    nan = np.isnan(tv)
    np.testing.assert_array_equal(np.isnan(mv), nan, err_msg=f"{what}: NaN positions")
    np.testing.assert_array_equal(mv[~nan], tv[~nan], err_msg=f"{what}: values")
    if signs:
        np.testing.assert_array_equal(np.signbit(mv[~nan]), np.signbit(tv[~nan]),
                                      err_msg=f"{what}: signs of zero")  # fmt: skip


def _exact(v, dtype):
    """``v`` rounded to ``dtype`` (by PyTorch), as float64: both libraries then start from
    the same values."""
    return torch.tensor(v).to(getattr(torch, dtype)).double().numpy()


def _run(lib, fn, x, g, dtype, strided):
    x, g = _exact(x, dtype), _exact(g, dtype)
    t = lib.tensor(x).to(getattr(lib, dtype))
    if strided:
        t = t.reshape(-1, 2).mT  # NOTE: a transposed view: no longer contiguous
    t.requires_grad_(True)
    y = fn(t)
    up = lib.tensor(g).to(getattr(lib, dtype))
    y.backward(up.reshape(-1, 2).mT if strided else up)
    return y, t.grad


CASES = [("relu", None)] + [("leaky_relu", s) for s in SLOPES]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("n,strided", [(60, False), (70_002, False), (70_002, True)])
@pytest.mark.parametrize("op,slope", CASES)
def test_bits_as_pytorch(op, slope, n, strided, dtype):
    rng = np.random.default_rng(n)
    x, g = _values(n, rng)

    def fns(lib, fmod):
        if op == "relu":
            return fmod.relu
        return lambda t: fmod.leaky_relu(t, slope)

    ym, gm = _run(mg, fns(mg, F), x, g, dtype, strided)
    yt, gt = _run(torch, fns(torch, TF), x, g, dtype, strided)
    where = f"{op}({slope}) n={n} strided={strided} {dtype}"
    assert ym.dtype == getattr(mg, dtype), where
    _same_bits(ym, yt, f"{where}: forward")
    _same_bits(gm, gt, f"{where}: gradient")


@pytest.mark.parametrize("op,slope", CASES)
def test_blocks_equal_plain_formulas(op, slope, monkeypatch):
    """The block loops (CPU float32/float64) against the plain formulas (GPUs, other
    dtypes, strided arrays)."""
    x, g = _values(70_002, np.random.default_rng(5))
    fn = F.relu if op == "relu" else (lambda t: F.leaky_relu(t, slope))
    runs = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(_relu_blocks, "fast", lambda *a: False)
        runs.append(_run(mg, fn, x, g, "float32", False))
    for m, p in zip(runs[0], runs[1]):
        a, b = m.detach().numpy(), p.detach().numpy()
        assert np.array_equal(a, b, equal_nan=True) and np.array_equal(
            np.signbit(a[~np.isnan(a)]), np.signbit(b[~np.isnan(b)]))  # fmt: skip


INPLACE = {
    "relu(inplace)": lambda f, t: f.relu(t, inplace=True),
    "relu_": lambda f, t: f.relu_(t),
    "leaky_relu(inplace)": lambda f, t: f.leaky_relu(t, 0.2, inplace=True),
    "leaky_relu_": lambda f, t: f.leaky_relu_(t, 0.2),
    "leaky_relu_(0)": lambda f, t: f.leaky_relu_(t, 0.0),
    "leaky_relu_(2)": lambda f, t: f.leaky_relu_(t, 2.0),
}


@pytest.mark.parametrize("n", [60, 70_002])
@pytest.mark.parametrize("name", list(INPLACE))
def test_in_place_as_pytorch(name, n):
    x, g = _values(n, np.random.default_rng(6))
    fn = INPLACE[name]
    for grad in (False, True):
        out = []
        for lib, fmod in ((mg, F), (torch, TF)):
            leaf = lib.tensor(x.reshape(-1, 2), requires_grad=grad)
            with lib.set_grad_enabled(grad):
                h = leaf * 1 if grad else leaf
                view = h[:, 1]  # NOTE: the base sees the write; one version for both
                v0 = h._version
                r = fn(fmod, view)
                assert r is view, name
                assert h._version == v0 + 1, name
            if grad:
                h.backward(lib.tensor(g.reshape(-1, 2)))
            out.append((h, leaf.grad))
        _same_bits(out[0][0], out[1][0], f"{name} grad={grad}: values")
        if grad:  # NOTE: the view's base passes -0.0 as 0.0 (CopySlices), as for mul_
            _same_bits(out[0][1], out[1][1], f"{name}: gradient", signs=False)


def test_in_place_refuses_leaf_and_keeps_slope_below_zero_right():
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    for fn in INPLACE.values():
        with pytest.raises(mg.errors.AutogradError, match="leaf"):
            fn(F, x)
    # NOTE: PyTorch refuses backward after leaky_relu_ with a negative slope (it keeps the
    # result only); manygrad keeps a copy of the input instead and gives the gradient
    h = x * 1
    F.leaky_relu_(h, -0.5)
    h.backward(mg.tensor([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, -0.5])


def test_saved_values_as_pytorch():
    """relu keeps its output, leaky_relu its input: changing the kept one in place makes
    backward refuse, changing the other does not (as PyTorch)."""
    for lib, fmod, err in ((mg, F, mg.errors.AutogradError), (torch, TF, RuntimeError)):
        for op, changed, refuses in (("relu", "out", True), ("relu", "in", False),
                                     ("leaky", "in", True), ("leaky", "out", False)):  # fmt: skip
            x = lib.tensor([1.0, -2.0, 0.5], requires_grad=True)
            h = x * 1
            y = fmod.relu(h) if op == "relu" else fmod.leaky_relu(h, 0.1)
            (y if changed == "out" else h).add_(1)
            if refuses:
                with pytest.raises(err, match="modified by an inplace operation"):
                    y.sum().backward()
            else:
                y.sum().backward()


def test_second_derivative_as_pytorch():
    a = np.random.default_rng(7).standard_normal((3, 5))
    res = []
    for lib, fmod in ((torch, TF), (mg, F)):
        x = lib.tensor(a, requires_grad=True)
        for f in (fmod.relu, lambda t, fmod=fmod: fmod.leaky_relu(t, 0.3)):
            (gx,) = lib.autograd.grad((f(x * x) * x).sum(), x, create_graph=True)
            (ggx,) = lib.autograd.grad(gx.sum(), x)
            res.append(ggx.detach().numpy())
    np.testing.assert_allclose(res[2:], res[:2], rtol=1e-12)
