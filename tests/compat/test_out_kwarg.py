"""PyTorch's ``out=`` keyword: results, dtype rules, resizing, multi-output ops, factories
and the autograd refusal, compared with PyTorch."""

import warnings

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad.errors import AutogradError

A = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
B = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
IDX = np.array([[0, 1, 2, 0]])

# name -> args builder (lib, a, b, idx); all take out=
CASES = {
    "add": lambda lib, a, b, i: lib.add(a, b, alpha=2),
    "sub": lambda lib, a, b, i: lib.sub(a, b),
    "mul": lambda lib, a, b, i: lib.mul(a, 3),
    "div": lambda lib, a, b, i: lib.div(a, b),
    "pow": lambda lib, a, b, i: lib.pow(a, 2),
    "atan2": lambda lib, a, b, i: lib.atan2(a, b),
    "maximum": lambda lib, a, b, i: lib.maximum(a, b),
    "exp": lambda lib, a, b, i: lib.exp(a),
    "sqrt": lambda lib, a, b, i: lib.sqrt(a.abs()),
    "sigmoid": lambda lib, a, b, i: lib.sigmoid(a),
    "abs": lambda lib, a, b, i: lib.abs(a),
    "neg": lambda lib, a, b, i: lib.neg(a),
    "trunc": lambda lib, a, b, i: lib.trunc(a),
    "clamp": lambda lib, a, b, i: lib.clamp(a, -0.5, 0.5),
    "where": lambda lib, a, b, i: lib.where(a > 0, a, b),
    "eq": lambda lib, a, b, i: lib.eq(a, b),
    "gt": lambda lib, a, b, i: lib.gt(a, 0),
    "logical_not": lambda lib, a, b, i: lib.logical_not(a > 0),
    "sum": lambda lib, a, b, i: lib.sum(a, 0),
    "mean": lambda lib, a, b, i: lib.mean(a, 1, keepdim=True),
    "std": lambda lib, a, b, i: lib.std(a, 0),
    "amax": lambda lib, a, b, i: lib.amax(a, 0),
    "argmax": lambda lib, a, b, i: lib.argmax(a, 1),
    "cumsum": lambda lib, a, b, i: lib.cumsum(a, 1),
    "logsumexp": lambda lib, a, b, i: lib.logsumexp(a, 1),
    "softmax": lambda lib, a, b, i: lib.softmax(a, 1),
    "cat": lambda lib, a, b, i: lib.cat([a, b], 0),
    "stack": lambda lib, a, b, i: lib.stack([a, b]),
    "mm": lambda lib, a, b, i: lib.mm(a, b.T),
    "matmul": lambda lib, a, b, i: lib.matmul(a, b.T),
    "addmm": lambda lib, a, b, i: lib.addmm(a[:, :3], a, b.T),
    "tril": lambda lib, a, b, i: lib.tril(a),
    "gather": lambda lib, a, b, i: lib.gather(a, 0, i),
    "index_select": lambda lib, a, b, i: lib.index_select(a, 1, i[0]),
    "masked_select": lambda lib, a, b, i: lib.masked_select(a, a > 0),
    "diff": lambda lib, a, b, i: lib.diff(a),
    "nonzero": lambda lib, a, b, i: lib.nonzero(a > 0),
    "isin": lambda lib, a, b, i: lib.isin(i, i[:, :2]),
    "signbit": lambda lib, a, b, i: lib.signbit(a),
}
OUT_DTYPES = ["same", "float64", "int64", "bool"]
# PyTorch computes these reductions in out's dtype (a float sum into int64 truncates each
# element first); manygrad refuses the cast with an error instead of that result
REFUSED = {("sum", "int64"), ("sum", "bool"), ("cumsum", "int64")}


def _call(lib, name, out_dtype, device="cpu"):
    t = (lambda v: torch.tensor(v)) if lib is torch else (lambda v: mg.tensor(v, device=device))
    a, b, i = t(A), t(B), t(IDX)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = CASES[name](lib, a, b, i)
        dt = probe.dtype if out_dtype == "same" else getattr(lib, out_dtype)
        kw = {} if lib is torch else {"device": device}
        out = lib.empty(0, dtype=dt, **kw)
        fn = CASES[name]
        try:
            res = _with_out(lib, fn, (a, b, i), out)
        except (RuntimeError, TypeError) as e:
            return e, None
    return res, out


def _with_out(lib, fn, args, out):
    # NOTE: call the builder with the library function patched to pass out=
    class _Lib:
        def __getattr__(self, name):
            f = getattr(lib, name)
            return lambda *a, **k: f(*a, **k, out=out) if name != "empty" else f(*a, **k)

    return fn(_Lib(), *args)


@pytest.mark.parametrize("out_dtype", OUT_DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_out_matches_pytorch(name, out_dtype, device):
    if (name, out_dtype) in REFUSED:
        res, _ = _call(mg, name, out_dtype, device)
        assert isinstance(res, RuntimeError) and "can't be cast" in str(res)
        return
    tres, tout = _call(torch, name, out_dtype)
    mres, mout = _call(mg, name, out_dtype, device)
    if isinstance(tres, Exception):
        assert isinstance(mres, Exception), f"PyTorch raised {tres!r}; manygrad did not"
        return
    assert not isinstance(mres, Exception), f"manygrad raised {mres!r}; PyTorch did not"
    assert mres is mout
    assert str(mout.dtype).split(".")[-1] == str(tout.dtype).split(".")[-1]
    assert tuple(mout.shape) == tuple(tout.shape)
    np.testing.assert_allclose(
        mout.cpu().numpy().astype(np.float64),
        tout.numpy().astype(np.float64),
        rtol=1e-5,
        atol=1e-6,
    )


def test_multi_output_ops_write_each_tensor(device):
    x = mg.tensor(A, device=device)
    v, i = mg.empty(0, device=device), mg.empty(0, dtype=mg.long, device=device)
    r = mg.max(x, 1, out=(v, i))
    tv, ti = torch.max(torch.tensor(A), 1)
    assert r.values is v and r.indices is i
    np.testing.assert_array_equal(v.cpu().numpy(), tv.numpy())
    np.testing.assert_array_equal(i.cpu().numpy(), ti.numpy())
    s, j = mg.empty(0, device=device), mg.empty(0, dtype=mg.long, device=device)
    mg.sort(x, 1, descending=True, out=(s, j))
    np.testing.assert_array_equal(s.cpu().numpy(), torch.sort(torch.tensor(A), 1, True)[0])
    with pytest.raises(RuntimeError, match="long|int64"):
        mg.sort(x, out=(mg.empty(0, device=device), mg.empty(0, device=device)))
    with pytest.raises(TypeError, match="tuple of 2"):
        mg.max(x, 1, out=v)


def test_resize_warns_as_pytorch_and_views_keep_their_shape(device):
    x = mg.tensor(A, device=device)
    out = mg.empty(5, device=device)
    with pytest.warns(UserWarning, match=r"resized since it had shape \[5\]"):
        mg.exp(x, out=out)
    assert out.shape == (3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NOTE: an empty out resizes silently
        mg.exp(x, out=mg.empty(0, device=device))
    base = mg.zeros(6, 4, device=device)
    mg.exp(x, out=base[1:4])  # a view of the right shape is written in place
    np.testing.assert_allclose(base[1:4].cpu().numpy(), np.exp(A), rtol=1e-6)
    assert base._version == 1
    with pytest.raises(RuntimeError, match="view"):
        mg.exp(x, out=base[:2])


def test_out_aliasing_an_input(device):
    x = mg.tensor(A, device=device)
    r = mg.add(x, 1, out=x)
    assert r is x
    np.testing.assert_allclose(x.cpu().numpy(), A + 1)


def test_factories_take_outs_dtype_and_device(device):
    out = mg.empty(0, dtype=mg.float64, device=device)
    r = mg.arange(5, out=out)
    assert r is out and out.dtype == mg.float64 and out.device == mg.device(device)
    np.testing.assert_array_equal(out.cpu().numpy(), np.arange(5.0))
    mg.zeros(2, 3, out=out.resize_(0))
    assert out.shape == (2, 3) and float(out.sum()) == 0.0
    o = mg.empty(0, dtype=mg.int32, device=device)
    mg.randint(0, 5, (4,), out=o)
    assert o.dtype == mg.int32 and o.shape == (4,)
    t = torch.empty(0, dtype=torch.float64)
    torch.linspace(0, 1, 5, out=t)
    mg.linspace(0, 1, 5, out=out.resize_(0))
    np.testing.assert_allclose(out.cpu().numpy(), t.numpy())


def test_out_refused_while_recording_gradients():
    x = mg.tensor(A, requires_grad=True)
    with pytest.raises(AutogradError, match=r"add\(\): functions with out=\.\.\."):
        mg.add(x, 1, out=mg.empty(0))
    with pytest.raises(AutogradError):
        mg.add(mg.tensor(A), 1, out=mg.empty(0, requires_grad=True))
    with pytest.raises(AutogradError):
        mg.cat([x, x], out=mg.empty(0))
    with mg.no_grad():
        out = mg.empty(0)
        mg.add(x, 1, out=out)
    assert not out.requires_grad
    np.testing.assert_allclose(out.numpy(), A + 1)


def test_out_device_and_type_errors():
    x = mg.tensor(A)
    with pytest.raises(RuntimeError, match="fakegpu"):
        mg.exp(x, out=mg.empty(0, device="fakegpu"))
    with pytest.raises(TypeError, match="must be a Tensor"):
        mg.exp(x, out=np.empty(3))


def test_namespaces_take_out():
    import manygrad.fft as mfft
    import manygrad.linalg as mla
    import manygrad.special as msp

    x = mg.tensor(A)
    o = mg.empty(0, dtype=mg.float64)
    msp.expit(x, out=o)
    np.testing.assert_allclose(o.numpy(), torch.special.expit(torch.tensor(A)).double(), rtol=1e-6)
    m = mg.empty(0)
    mla.matrix_norm(x, out=m)
    assert float(m) == pytest.approx(float(torch.linalg.matrix_norm(torch.tensor(A))), 1e-6)
    c = mg.empty(0, dtype=mg.complex64)
    mfft.fft(x, out=c)
    np.testing.assert_allclose(c.numpy(), torch.fft.fft(torch.tensor(A)).numpy(), atol=1e-5)
    f = mg.empty(0, dtype=mg.float64)
    mfft.fftfreq(4, out=f)
    np.testing.assert_allclose(f.numpy(), torch.fft.fftfreq(4, dtype=torch.float64).numpy())


def test_without_out_the_wrapper_is_transparent():
    assert mg.add(mg.tensor(A), 1, out=None).shape == (3, 4)
    assert mg.add.__name__ == "add" and mg.add.__wrapped__ is not None


def test_resize_matches_pytorch(device):
    for shape in [(3, 2), (4,), (2, 4), (0,), (6,)]:
        t = torch.arange(6.0)
        m = mg.arange(6.0, device=device)
        r = m.resize_(*shape)
        t.resize_(*shape)
        assert r is m and tuple(m.shape) == tuple(t.shape)
        n = min(6, t.numel())
        np.testing.assert_array_equal(m.cpu().numpy().ravel()[:n], t.numpy().ravel()[:n])
    m = mg.arange(6.0, device=device)
    m.resize_as_(mg.empty(2, 2))
    assert m.shape == (2, 2)
    with pytest.raises(RuntimeError, match="require grad"):
        mg.ones(2, requires_grad=True).resize_(3)
    with pytest.warns(UserWarning, match="non-inplace resize is deprecated"):
        assert mg.arange(6.0).resize(2, 3).shape == (2, 3)
    with pytest.raises(RuntimeError, match="6 elements"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mg.arange(6.0).resize(4)
    base = mg.arange(6.0, device=device)
    v = base.reshape(2, 3).resize_(4)  # a contiguous view shrinks within its memory
    v[0] = 9
    assert float(base[0]) == 9.0
    with pytest.raises(RuntimeError, match="clone"):
        base.reshape(2, 3).resize_(8)
