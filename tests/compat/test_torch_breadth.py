"""PyTorch's smaller top-level functions and Tensor methods (in-place forms, aliases, window
functions, finite differences, strided views, ...) against PyTorch, on every device."""

import numpy as np
import pytest
import torch

import manygrad as mg
from devicematrix import DEVICES

R = np.random.default_rng(0)


def _pair(a, device, grad=False):
    m = mg.tensor(a, device=device, requires_grad=grad)
    t = torch.tensor(a, requires_grad=grad)
    return m, t


def _close(m, t, tol=1e-6):
    got = m.detach().cpu().numpy() if isinstance(m, mg.Tensor) else np.asarray(m)
    want = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True)


# method name, args (arrays become tensors), input kind
INPLACE = [
    ("cumsum_", (1,), "f"), ("cumprod_", (0,), "f"), ("tril_", (), "f"), ("triu_", (1,), "f"),
    ("eq_", ("same",), "f"), ("gt_", ("other",), "f"), ("le_", (0.0,), "f"),
    ("not_equal_", ("other",), "f"), ("greater_equal_", ("other",), "f"),
    ("less_", (0.1,), "f"), ("logical_and_", ("other",), "f"), ("logical_not_", (), "f"),
    ("bitwise_and_", ("iother",), "i"), ("bitwise_left_shift_", (2,), "i"),
    ("gcd_", ("iother",), "i"), ("lcm_", ("iother",), "i"), ("erfc_", (), "f"),
    ("sinc_", (), "f"), ("deg2rad_", (), "f"), ("rad2deg_", (), "f"), ("fix_", (), "f"),
    ("arccos_", (), "u"), ("arcsinh_", (), "f"), ("arctan2_", ("other",), "f"),
    ("acosh_", (), "big"), ("negative_", (), "f"), ("absolute_", (), "f"),
    ("multiply_", ("other",), "f"), ("subtract_", ("other",), "f"),
    ("true_divide_", ("other",), "f"), ("ldexp_", ("iother",), "f"),
    ("renorm_", (2, 0, 1.0), "f"), ("mvlgamma_", (2,), "big"), ("polygamma_", (1,), "big"),
    ("swapaxes_", (0, 1), "f"), ("float_power_", (2,), "f"),
]  # fmt: skip


def _input(kind):
    if kind == "i":
        return R.integers(1, 20, (3, 4)).astype(np.int64)
    a = R.standard_normal((3, 4))
    return np.abs(a) * 0.9 / (np.abs(a).max()) if kind == "u" else (a + 3 if kind == "big" else a)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,args,kind", INPLACE, ids=[r[0] for r in INPLACE])
def test_inplace_forms_match_torch(device, name, args, kind):
    a = _input(kind)
    other = {"same": a, "other": R.standard_normal(a.shape),
             "iother": R.integers(1, 5, a.shape).astype(np.int64)}  # fmt: skip
    margs = [mg.tensor(other[x], device=device) if isinstance(x, str) else x for x in args]
    targs = [torch.tensor(other[x]) if isinstance(x, str) else x for x in args]
    m, t = mg.tensor(a, device=device), torch.tensor(a)
    out = getattr(m, name)(*margs)
    getattr(t, name)(*targs)
    assert out is m
    _close(m, t, 1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_inplace_forms_keep_the_graph(device):
    a = R.standard_normal((3, 4))
    m, t = _pair(a, device, grad=True)
    mo, to = m * 2, t * 2
    mo.cumsum_(1).tril_()
    to.cumsum_(1).tril_()
    mo.addmm_(m[:, :3].T.contiguous().T, m[:3, :], beta=0.5)
    to.addmm_(t[:, :3].T.contiguous().T, t[:3, :], beta=0.5)
    (mo**2).sum().backward()
    (to**2).sum().backward()
    _close(m.grad, t.grad, 1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_aliases_and_real_number_api(device):
    a = np.array([-1.5, 0.0, 2.0, np.nan])
    m, t = _pair(a, device, grad=True)
    for name in ("greater", "greater_equal", "less", "less_equal", "not_equal"):
        _close(getattr(m, name)(0.5), getattr(t, name)(0.5))
    _close(m.angle(), t.angle())
    _close(mg.angle(mg.tensor([-2, 3], device=device)), torch.angle(torch.tensor([-2, 3])))
    assert m.conj() is m and not m.is_conj() and not mg.is_neg(m)
    _close(m.real, t.real)
    with pytest.raises(RuntimeError, match="non-complex"):
        _ = m.imag
    m.angle().sum().backward()
    assert float(m.grad.abs().sum().cpu()) == 0.0
    _close(m.hardshrink(1.0), t.hardshrink(1.0))
    _close(m.nextafter(mg.tensor(5.0, device=device)), t.nextafter(torch.tensor(5.0)))
    _close(m.diagflat(1), t.diagflat(1))


@pytest.mark.parametrize("device", DEVICES)
def test_fill_diagonal(device):
    for shape, wrap in [((3, 3), False), ((5, 3), False), ((7, 3), True), ((3, 5), True),
                        ((3, 3, 3), False)]:  # fmt: skip
        m, t = mg.zeros(*shape, device=device), torch.zeros(*shape)
        m.fill_diagonal_(2.5, wrap=wrap)
        t.fill_diagonal_(2.5, wrap=wrap)
        _close(m, t)


@pytest.mark.parametrize("device", DEVICES)
def test_as_strided_windows_and_gradient(device):
    a = R.standard_normal(7)
    m, t = _pair(a, device, grad=True)
    mw, tw = m.as_strided((5, 3), (1, 1)), t.as_strided((5, 3), (1, 1))
    _close(mw, tw)
    w = R.standard_normal((5, 3))
    (mw * mg.tensor(w, device=device)).sum().backward()
    (tw * torch.tensor(w)).sum().backward()
    _close(m.grad, t.grad)
    _close(mg.tensor(a, device=device).as_strided((2, 2), (3, 1), 1),
           torch.tensor(a).as_strided((2, 2), (3, 1), 1))  # fmt: skip
    src = R.standard_normal((2, 2))
    _close(mg.as_strided_scatter(mg.tensor(a, device=device), mg.tensor(src, device=device),
                                 (2, 2), (3, 1), 1),
           torch.as_strided_scatter(torch.tensor(a), torch.tensor(src), (2, 2), (3, 1), 1))  # fmt: skip
    with pytest.raises(mg.ManygradError, match="outside"):
        mg.tensor(a, device=device).as_strided((3, 3), (3, 1))
    with pytest.raises(mg.ManygradError, match="contiguous"):
        mg.ones(3, 4, device=device).T.as_strided((2,), (1,))


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_matches_torch(device):
    a = R.standard_normal((6, 5))
    coords = np.cumsum(R.uniform(0.5, 1.5, 6))
    cases = [({}, {}), ({"spacing": 0.5}, {"spacing": 0.5}), ({"dim": 1}, {"dim": 1}),
             ({"edge_order": 2, "spacing": [2.0, 0.5]}, {"edge_order": 2, "spacing": [2.0, 0.5]}),
             ({"spacing": [mg.tensor(coords, device=device)], "dim": 0, "edge_order": 2},
              {"spacing": [torch.tensor(coords)], "dim": 0, "edge_order": 2}),
             ({"spacing": [mg.tensor(coords, device=device)], "dim": 0},
              {"spacing": [torch.tensor(coords)], "dim": 0})]  # fmt: skip
    for mk, tk in cases:
        m, t = _pair(a, device, grad=True)
        mg_out, t_out = mg.gradient(m, **mk), torch.gradient(t, **tk)
        assert len(mg_out) == len(t_out)
        for x, y in zip(mg_out, t_out):
            _close(x, y)
        sum(x.sum() * (i + 1) for i, x in enumerate(mg_out)).backward()
        sum(y.sum() * (i + 1) for i, y in enumerate(t_out)).backward()
        _close(m.grad, t.grad)
    with pytest.raises(ValueError, match="edge_order"):
        mg.gradient(mg.ones(2, device=device), edge_order=2)


@pytest.mark.parametrize("device", DEVICES)
def test_isin_unravel_index_reduce_sum_to_size(device):
    e = R.integers(0, 6, (3, 4))
    _close(mg.isin(mg.tensor(e, device=device), mg.tensor([1, 3], device=device)),
           torch.isin(torch.tensor(e), torch.tensor([1, 3])))  # fmt: skip
    _close(mg.isin(mg.tensor(e, device=device), 2, invert=True),
           torch.isin(torch.tensor(e), 2, invert=True))  # fmt: skip
    idx = np.array([0, 5, 11, 23])
    for x, y in zip(mg.unravel_index(mg.tensor(idx, device=device), (2, 3, 4)),
                    torch.unravel_index(torch.tensor(idx), (2, 3, 4))):  # fmt: skip
        _close(x, y)
    a, src = R.standard_normal((4, 3)), R.standard_normal((5, 3))
    index = np.array([0, 2, 2, 3, 0])
    for reduce in ("prod", "mean", "amax", "amin"):
        for inc in (True, False):
            m, t = _pair(a, device, grad=True)
            ms, ts = _pair(src, device, grad=True)
            mo = m.index_reduce(0, mg.tensor(index, device=device), ms, reduce, include_self=inc)
            to = t.index_reduce(0, torch.tensor(index), ts, reduce, include_self=inc)
            _close(mo, to)
            mo.sum().backward()
            to.sum().backward()
            _close(m.grad, t.grad)
            _close(ms.grad, ts.grad)
    b = R.standard_normal((2, 3, 4))
    _close(mg.tensor(b, device=device).sum_to_size(3, 1), torch.tensor(b).sum_to_size(3, 1))
    with pytest.raises(mg.ManygradError, match="expandable"):
        mg.tensor(b, device=device).sum_to_size(2, 4)


@pytest.mark.parametrize("name", ["hann_window", "hamming_window", "blackman_window",
                                  "bartlett_window", "kaiser_window"])  # fmt: skip
@pytest.mark.parametrize("n,periodic", [(0, True), (1, False), (8, True), (9, False)])
def test_windows(name, n, periodic):
    _close(getattr(mg, name)(n, periodic), getattr(torch, name)(n, periodic), 1e-6)
    assert getattr(mg, name)(5, dtype=mg.float64).dtype is mg.float64


@pytest.mark.parametrize("device", DEVICES)
def test_random_fills_overwrite_nan_and_have_the_right_law(device):
    n = 20000
    x = mg.full((n,), float("nan"), device=device)
    for fill in (lambda t: t.exponential_(), lambda t: t.cauchy_(), lambda t: t.geometric_(0.3),
                 lambda t: t.log_normal_(0.0, 0.5), lambda t: t.bernoulli_(0.5),
                 lambda t: t.uniform_(), lambda t: t.normal_(), lambda t: t.fill_(2.0),
                 lambda t: t.zero_()):  # fmt: skip
        x.fill_(float("inf"))
        assert bool(mg.isfinite(fill(x)).all())
    v = x.geometric_(0.3).cpu().numpy()
    assert v.min() >= 1 and abs(v.mean() - 1 / 0.3) < 0.15
    v = x.log_normal_(0.0, 0.5).cpu().numpy()
    assert abs(np.median(np.log(v))) < 0.03
    v = x.cauchy_(1.0, 2.0).cpu().numpy()
    assert abs(np.median(v) - 1.0) < 0.1


@pytest.mark.parametrize("device", DEVICES)
def test_top_level_positional_forms(device):
    a = R.standard_normal((2, 3, 8))
    m, t = _pair(a, device, grad=True)
    for mo, to in [
        (mg.alpha_dropout(m, 0.5, False), torch.alpha_dropout(t, 0.5, False)),
        (mg.adaptive_max_pool1d(m, 4)[0], torch.adaptive_max_pool1d(t, 4)[0]),
        (mg.adaptive_max_pool1d(m, 4)[1], torch.adaptive_max_pool1d(t, 4)[1]),
        (mg.constant_pad_nd(m, [1, 2], 0.5), torch.constant_pad_nd(t, [1, 2], 0.5)),
        (mg.frobenius_norm(m, [1, 2]), torch.frobenius_norm(t, [1, 2])),
        (mg.nuclear_norm(m[0]), torch.nuclear_norm(t[0])),
        (mg.max_pool3d(m.unsqueeze(0), 2), torch.max_pool3d(t.unsqueeze(0), 2)),
        (mg.margin_ranking_loss(m, m * 0.5, mg.ones_like(m), 0.1, 2),
         torch.margin_ranking_loss(t, t * 0.5, torch.ones_like(t), 0.1, 2)),
        (mg.hinge_embedding_loss(m, mg.ones_like(m), 1.0, 0),
         torch.hinge_embedding_loss(t, torch.ones_like(t), 1.0, 0)),
        (mg.split_with_sizes(m, [1, 2], 1)[1], torch.split_with_sizes(t, [1, 2], 1)[1]),
        (mg.put(m, mg.tensor([0, 5], device=device), mg.tensor([1.0, 2.0], device=device)),
         torch.put(t, torch.tensor([0, 5]), torch.tensor([1.0, 2.0]).double())),
    ]:  # fmt: skip
        _close(mo, to)
    w = R.standard_normal((4, 3, 3))
    mw, tw = _pair(w, device)
    _close(mg.convolution(m, mw, None, [1], [1], [1], False, [0], 1),
           torch.convolution(t, tw, None, [1], [1], [1], False, [0], 1))  # fmt: skip
    wt = R.standard_normal((3, 4, 3))
    _close(mg.convolution(m, mg.tensor(wt, device=device), None, [2], [1], [1], True, [1], 1),
           torch.convolution(t, torch.tensor(wt), None, [2], [1], [1], True, [1], 1))  # fmt: skip


def test_creation_functions():
    t = mg.empty_strided((2, 3), (1, 2))
    assert t.shape == (2, 3) and t.stride() == (1, 2)
    p = mg.empty_permuted((2, 3, 4, 5), (0, 2, 3, 1))
    assert p.shape == (2, 3, 4, 5) and p.stride() == torch.empty_permuted(
        (2, 3, 4, 5), (0, 2, 3, 1)).stride()  # fmt: skip
    assert mg.scalar_tensor(3).dtype is mg.float32 and mg.scalar_tensor(3).ndim == 0
    buf = bytearray(np.arange(6, dtype=np.float32).tobytes())
    fb = mg.frombuffer(buf, dtype=mg.float32, count=4, offset=4)
    _close(fb, torch.frombuffer(bytearray(buf), dtype=torch.float32, count=4, offset=4))
    with pytest.warns(UserWarning, match="deprecated"):
        _close(mg.range(1, 2, 0.25), torch.arange(1, 2.01, 0.25))
    arr = np.arange(4.0)
    shared = mg.asarray(arr)
    arr[0] = 9
    assert float(shared[0]) == 9.0
    assert float(mg.asarray(arr, copy=True)[0]) == 9.0
    with pytest.raises(ValueError, match="copy=False"):
        mg.asarray([1, 2], copy=False)
    x = mg.fill(mg.tensor([float("inf"), 1.0], requires_grad=True), 2.0)
    _close(x, torch.tensor([2.0, 2.0]))


def test_dlpack_round_trip():
    t = torch.arange(6.0).reshape(2, 3)
    m = mg.from_dlpack(t)
    t[0, 0] = 7
    assert float(m[0, 0]) == 7.0 and m.device.type == "cpu"
    back = torch.from_dlpack(mg.to_dlpack(m))
    assert back.shape == (2, 3) and float(back[0, 0]) == 7.0


def test_default_device_and_modes():
    try:
        mg.set_default_device("fakegpu")
        assert mg.get_default_device().type == "fakegpu"
        assert mg.zeros(2).device.type == "fakegpu"
        assert mg.tensor([1.0, 2.0]).device.type == "fakegpu"
        assert mg.nn.Linear(2, 3).weight.device.type == "fakegpu"
        assert mg.zeros(2, device="cpu").device.type == "cpu"
    finally:
        mg.set_default_device(None)
    assert mg.zeros(2).device.type == "cpu"
    assert not mg.is_inference_mode_enabled()
    with mg.inference_mode():
        assert mg.is_inference_mode_enabled()
        with mg.inference_mode(False):
            assert not mg.is_inference_mode_enabled()
    x = mg.tensor([-1.0, 2.0])
    assert mg.relu_(x) is x and float(x.sum()) == 2.0
