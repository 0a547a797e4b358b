"""manygrad.masked against torch.masked: the masked reductions (forward and gradients, with
random masks that leave whole slices masked out) and MaskedTensor's ops."""

import math

import numpy as np
import pytest

import manygrad as mg
from manygrad.masked import as_masked_tensor, is_masked_tensor, masked_tensor

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.filterwarnings("ignore:The PyTorch API of MaskedTensors:UserWarning"),
    pytest.mark.filterwarnings("ignore:It is not recommended to create a MaskedTensor"),
    pytest.mark.filterwarnings("ignore:.*is not implemented in __torch_dispatch__"),
    # NOTE: inf/NaN of fully masked-out slices (silent for users: manygrad filters these)
    pytest.mark.filterwarnings("ignore:.*encountered:RuntimeWarning"),
]
INF = math.inf


def _np(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t.detach().cpu().numpy()


def _dt(t) -> str:
    return str(t.dtype).split(".")[-1]


def close(got, want, rtol=1e-6, atol=1e-9):
    assert _dt(got) == _dt(want), f"dtype {got.dtype} != {want.dtype}"
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(_np(got), _np(want), rtol=rtol, atol=atol, equal_nan=True)


def mt_close(got, want, full=False):
    """Equal masks, and equal data where the mask is True (everywhere when ``full``)."""
    assert is_masked_tensor(got)
    assert type(want).__name__ == "MaskedTensor"
    m = _np(want.get_mask())
    np.testing.assert_array_equal(_np(got.get_mask()), m)
    g, w = _np(got.get_data()), _np(want.get_data())
    assert _dt(got.get_data()) == _dt(want.get_data()) and g.shape == w.shape
    if not full:
        g, w = np.where(m, g, 0), np.where(m, w, 0)
    np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9, equal_nan=True)


def make(a: np.ndarray, device, grad=False):
    """The same array as a manygrad and a torch tensor."""
    t = torch.tensor(a, requires_grad=grad)
    return mg.tensor(a, device=device, requires_grad=grad), t


def _mask(kind: str, rng) -> np.ndarray:
    if kind == "bcast":  # broadcast over the first dim; one (dim 1) slice fully masked out
        m = rng.random((4, 5)) < 0.6
        m[:, 2] = False
        return m
    m = rng.random((3, 4, 5)) < 0.5
    m[:, :, 0] = False  # every dim-1 slice at [:, :, 0] masked out
    m[0] = False  # the first batch fully masked out (dims (1, 2) and all)
    m[2, 1, :] = False  # a last-dim slice masked out
    m[1, 3, 4] = m[2, 3, 3] = True  # NOTE: keeps something masked in where reductions look
    return m


# op, keyword arguments (dim and the op's own), whether it has a gradient
REDUCTIONS = [
    ("sum", {"dim": 1}, True),
    ("sum", {"dim": (0, 2), "keepdim": True}, True),
    ("sum", {}, True),
    ("prod", {"dim": 1}, True),
    ("prod", {"dim": (0, 2)}, True),
    ("cumsum", {"dim": 1}, True),
    ("cumprod", {"dim": 2}, True),
    ("amax", {"dim": 1}, True),
    ("amin", {"dim": (1, 2), "keepdim": True}, True),
    ("amax", {}, True),
    ("argmax", {"dim": 1}, False),
    ("argmin", {"dim": 2, "keepdim": True}, False),
    ("argmax", {}, False),
    ("mean", {"dim": 1}, True),
    ("mean", {"dim": (0, 1), "keepdim": True}, True),
    ("mean", {}, True),
    ("median", {"dim": 1}, True),
    ("median", {"dim": -1, "keepdim": True}, True),
    ("norm", {"ord": 2.0, "dim": 1}, True),
    ("norm", {"ord": 1.0, "dim": 2}, True),
    ("norm", {"ord": INF, "dim": 1}, True),
    ("norm", {"ord": -INF, "dim": 1}, True),
    ("norm", {"ord": 3.5, "dim": (1, 2)}, True),
    ("var", {"dim": 1}, True),
    ("var", {"dim": 2, "unbiased": False, "keepdim": True}, True),
    ("var", {"dim": (0, 2), "correction": 2}, True),
    ("std", {"dim": 1}, True),
    ("std", {"dim": 2, "correction": 0}, True),
    ("logsumexp", {"dim": 1}, True),
    ("logsumexp", {"dim": (1, 2)}, True),
    ("softmax", {"dim": 1}, True),
    ("log_softmax", {"dim": -1}, True),
    ("softmin", {"dim": 1}, True),
    ("normalize", {"ord": 2.0, "dim": 1}, True),
    ("normalize", {"ord": 1.0, "dim": 2}, True),
]


@pytest.mark.parametrize("kind", ["full", "bcast"])
@pytest.mark.parametrize("name,kw,grad", REDUCTIONS, ids=[f"{r[0]}-{i}" for i, r in
                                                          enumerate(REDUCTIONS)])  # fmt: skip
def test_masked_reduction_matches_torch(name, kw, grad, kind, device):
    rng = np.random.default_rng(len(name) + len(kw))
    a = rng.standard_normal((3, 4, 5))
    m = _mask(kind, rng)
    x, tx = make(a, device, grad)
    mask, tmask = make(m, device)
    kw = dict(kw)
    pos = [kw.pop("ord")] if "ord" in kw else []
    if "dim" in kw and name in ("norm", "normalize"):
        pos.append(kw.pop("dim"))
    got = getattr(mg.masked, name)(x, *pos, mask=mask, **kw)
    want = getattr(torch.masked, name)(tx, *pos, mask=tmask, **kw)
    close(got, want)
    if not grad:
        return
    w = rng.standard_normal(tuple(want.shape))
    (got * mg.tensor(w, device=device)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    close(x.grad, tx.grad)
    # nothing finite reaches the masked-out elements (nan may, where the op's value is nan)
    assert not np.nan_to_num(_np(x.grad))[np.broadcast_to(~m, a.shape)].any()


@pytest.mark.parametrize("name", ["sum", "prod", "amax", "amin", "argmax", "cumsum", "median"])
def test_masked_reduction_integer_input(name, device):
    rng = np.random.default_rng(3)
    a = rng.integers(-5, 6, (4, 6)).astype(np.int32)
    m = rng.random((4, 6)) < 0.6
    m[:, 0] = True
    x, tx = make(a, device)
    mask, tmask = make(m, device)
    close(getattr(mg.masked, name)(x, 1, mask=mask), getattr(torch.masked, name)(tx, 1, mask=tmask))
    if name != "median":
        close(getattr(mg.masked, name)(x, 1, mask=mask, dtype=mg.float64),
              getattr(torch.masked, name)(tx, 1, mask=tmask, dtype=torch.float64))  # fmt: skip


def test_masked_reduction_without_mask_and_logaddexp(device):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 3, 4))
    ma, mb = rng.random((2, 3, 4)) < 0.5
    ma[0, :2] = mb[0, :2] = False  # both operands masked out: -inf
    x, tx = make(a, device, True)
    y, ty = make(b, device, True)
    close(mg.masked.sum(x, 1), torch.masked.sum(tx, 1))
    close(mg.masked.var(x, 0), torch.masked.var(tx, 0))
    got = mg.masked.logaddexp(x, y, input_mask=mg.tensor(ma, device=device),
                              other_mask=mg.tensor(mb, device=device))  # fmt: skip
    want = torch.masked.logaddexp(tx, ty, input_mask=torch.tensor(ma), other_mask=torch.tensor(mb))
    close(got, want)
    got.sum().backward()
    want.sum().backward()
    close(x.grad, tx.grad)
    close(y.grad, ty.grad)


def test_masked_reduction_errors(device):
    x, tx = make(np.ones((2, 3)), device)
    mask, tmask = make(np.ones((2, 3), bool), device)
    cases = [
        lambda lib, x, m: lib.masked.sum(x, (1, 1), mask=m),  # repeated dim
        lambda lib, x, m: lib.masked.sum(x, 2, mask=m),  # out of range
        lambda lib, x, m: lib.masked.amax(x, 0, mask=m[None]),  # mask of more dims
        lambda lib, x, m: lib.masked.mean(x.long(), 0, mask=m),  # integer mean
        lambda lib, x, m: lib.masked.median(x.long(), 0, mask=m & False),  # int, all out
    ]
    for case in cases:
        with pytest.raises(Exception) as want:
            case(torch, tx, tmask)
        with pytest.raises(want.type):
            case(mg, x, mask)


# ------------------------------------------------------------------ MaskedTensor


def mts(device, grad=False, seed=0, dtype=np.float64):
    """The same MaskedTensor (3, 4) in manygrad and torch; row 1 fully masked out."""
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((3, 4)) + 0.5).astype(dtype)
    m = rng.random((3, 4)) < 0.6
    m[1] = False
    m[0, 0] = m[2, 1] = True
    ours = masked_tensor(mg.tensor(a, device=device), mg.tensor(m, device=device), grad)
    theirs = torch.masked.masked_tensor(torch.tensor(a), torch.tensor(m), grad)
    return ours, theirs


def filled_close(got, want):
    """Equal values where each is masked in, 0 elsewhere (gradients: PyTorch's gradient
    masks follow the ops, manygrad's are the leaf's mask)."""
    close(got.to_tensor(0), want.to_tensor(0))


def grad_vs_plain_torch(f, device, g=lambda y: y, seed=0):
    """The gradient of ``sum(g(f(mt)))`` over the masked-in results, against PyTorch's
    autograd on the plain data (``f`` on a Tensor, the result's mask applied after)."""
    mt, tmt = mts(device, grad=True, seed=seed)
    out = f(mt)
    g(out).sum().backward()
    x = tmt.get_data().detach().requires_grad_()
    y = f(x)
    want_mask = f(tmt).get_mask()
    torch.where(want_mask, g(y), 0).sum().backward()
    np.testing.assert_array_equal(_np(out.get_mask()), _np(want_mask))
    close(mt.grad.to_tensor(0), torch.where(tmt.get_mask(), x.grad, 0))


def test_masked_tensor_basics(device):
    mt, tmt = mts(device)
    assert is_masked_tensor(mt) and isinstance(mt, mg.masked.MaskedTensor)
    assert not is_masked_tensor(mt.get_data())
    assert tuple(mt.shape) == tuple(tmt.shape) and mt.dim() == 2 and len(mt) == 3
    assert mt.dtype is mg.float64 and mt.numel() == 12 and mt.size(1) == 4
    close(mt.get_data(), tmt.get_data())
    close(mt.get_mask(), tmt.get_mask())
    close(mt.to_tensor(-1.0), tmt.to_tensor(-1.0))
    assert repr(mt) == repr(tmt)
    for idx in [(0, 0), (1, 2), (2, 3)]:
        assert repr(mt[idx]) == repr(tmt[idx])
    assert mt[0, 0].item() == tmt[0, 0].item() and float(mt.sum()) == pytest.approx(
        float(tmt.sum())
    )
    with pytest.raises(ValueError):
        tmt[1].sum().item()
    with pytest.raises(ValueError, match="masked-in"):
        mt[1].sum().item()
    b = masked_tensor(
        mg.tensor([3, -1, 2], device=device), mg.tensor([True, False, True]).to(device)
    )
    tb = torch.masked.masked_tensor(torch.tensor([3, -1, 2]), torch.tensor([True, False, True]))
    assert repr(b) == repr(tb) and repr(b > 0) == repr(tb > 0)
    assert repr(mt.sum()) == repr(tmt.sum())


def test_masked_tensor_copies_its_inputs(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    m = mg.tensor([True, False], device=device)
    with pytest.warns(UserWarning, match="requires_grad"):
        mt = masked_tensor(x, m)
    assert not mt.requires_grad and mt.is_leaf
    with mg.no_grad():
        x.mul_(0)
    m.fill_(True)
    assert mt.get_data().tolist() == [1.0, 2.0] and mt.get_mask().tolist() == [True, False]


def test_masked_tensor_construction_errors(device):
    a, m = np.ones((2, 3)), np.ones((2, 3), bool)
    cases = [
        lambda t: (a.tolist(), t(m)),  # data not a tensor
        lambda t: (t(a), m),  # mask not a tensor
        lambda t: (t(a), t(m.astype(np.int32))),  # mask not bool
        lambda t: (t(a), t(m[0])),  # fewer dims
        lambda t: (t(a), t(m[:, :2])),  # another shape
        lambda t: (t(a.astype(np.uint8)), t(m)),  # unsupported dtype
    ]
    for case in cases:
        with pytest.raises(Exception) as want:
            torch.masked.masked_tensor(*case(torch.tensor))
        with pytest.raises(want.type):
            masked_tensor(*case(lambda v: mg.tensor(v, device=device)))


UNARY = [
    ("exp", ()), ("log", ()), ("sqrt", ()), ("sigmoid", ()), ("abs", ()), ("neg", ()),
    ("tanh", ()), ("sin", ()), ("clamp", (0.0, 1.0)), ("pow", (2,)), ("square", ()),
    ("reciprocal", ()), ("round", ()),
]  # fmt: skip


@pytest.mark.parametrize("name,args", UNARY, ids=[u[0] for u in UNARY])
def test_masked_tensor_unary(name, args, device):
    mt, tmt = mts(device)
    mt_close(getattr(mt, name)(*args), getattr(tmt, name)(*args))
    grad_vs_plain_torch(lambda a: getattr(a, name)(*args), device)


def test_masked_tensor_operators(device):
    mt, tmt = mts(device, grad=True)
    x = np.arange(4.0) - 1.5
    t, tt = make(x, device)
    for f in [lambda a, b, t: -a + abs(a) * 2 - a**2, lambda a, b, t: a * b / (b + 3),
              lambda a, b, t: (a - t) * t, lambda a, b, t: a.maximum(b) + 1,
              lambda a, b, t: 2 * a + 1 / (a + 5) - a.sub(b).mul(a)]:  # fmt: skip
        mt_close(f(mt, mt.exp(), t), f(tmt, tmt.exp(), tt))
    for f in [lambda a, t: a > 0.2, lambda a, t: a == a, lambda a, t: a <= t]:
        mt_close(f(mt, t), f(tmt, tt))
    grad_vs_plain_torch(lambda a: a * a.sigmoid() + a / 2 - a.exp().maximum(a), device)
    # and through torch's own MaskedTensor autograd where it has one
    y, ty = (mt * mt.exp() + 1 / (mt + 4)).sum(), (tmt * tmt.exp() + 1 / (tmt + 4)).sum()
    y.backward()
    ty.backward()
    mt_close(mt.grad, tmt.grad, full=True)


def test_masked_tensor_binary_errors(device):
    mt, tmt = mts(device)
    other, tother = mts(device, seed=1)
    with pytest.raises(ValueError):
        tmt + tother
    with pytest.raises(ValueError, match="masks must match"):
        mt + other
    with pytest.raises(ValueError):
        tmt.add(tmt, alpha=2)
    with pytest.raises(ValueError, match="alpha"):
        mt.add(mt, alpha=2)


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "prod", "argmax", "argmin"])
@pytest.mark.parametrize("args", [(), (1,), (0, True)], ids=["all", "dim", "keepdim"])
def test_masked_tensor_reductions(name, args, device):
    mt, tmt = mts(device, grad=True)
    got, want = getattr(mt, name)(*args), getattr(tmt, name)(*args)
    mt_close(got, want)
    if name.startswith("arg"):
        return
    got.sum().backward()
    want.sum().backward()
    mt_close(mt.grad, tmt.grad, full=True)


@pytest.mark.parametrize("name", ["var", "std"])
def test_masked_tensor_var_std(name, device):
    mt, tmt = mts(device, grad=True)
    mt_close(getattr(mt, name)(), getattr(tmt, name)())
    got, want = getattr(mt, name)(1), getattr(tmt, name)(1)
    mt_close(got, want)
    got.sum().backward()
    want.sum().backward()
    filled_close(mt.grad, tmt.grad)
    # the keyword forms, against torch.masked's functions
    m = mt.get_mask()
    close(
        getattr(mt, name)(1, correction=0).get_data(),
        getattr(torch.masked, name)(tmt.get_data(), 1, correction=0, mask=tmt.get_mask()),
    )
    close(mt.norm(1.0, 1).get_data(), torch.masked.norm(tmt.get_data(), 1.0, 1,
                                                         mask=tmt.get_mask()))  # fmt: skip
    assert m is mt.get_mask()


def test_masked_tensor_all(device):
    mt, tmt = mts(device)
    b, tb = mt > 0.3, tmt > 0.3
    mt_close(b.all(), tb.all())
    mt_close(b.all(1), tb.all(1))
    mt_close(b.all(0, True), tb.all(0, True))


def test_masked_tensor_softmax_where(device):
    mt, tmt = mts(device, grad=True)
    got, want = mt.softmax(1), torch.softmax(tmt, 1)
    mt_close(got, want, full=True)
    (got * got).sum().backward()
    (want * want).sum().backward()
    mt_close(mt.grad, tmt.grad, full=True)

    mt, tmt = mts(device, grad=True)
    other, tother = mts(device, seed=4)
    c = np.random.default_rng(2).random((3, 4)) < 0.5
    cond, tcond = make(c, device)
    mt_close(mt.where(cond, other), torch.where(tcond, tmt, tother))
    plain, tplain = make(np.full((3, 4), 7.0), device)
    got, want = mt.where(cond, plain), torch.where(tcond, tmt, tplain)
    mt_close(got, want)
    got.sum().backward()
    want.sum().backward()
    filled_close(mt.grad, tmt.grad)


SHAPE_OPS = [
    lambda a: a[0], lambda a: a[:, 1:], lambda a: a[1:, ::2], lambda a: a[2, 1],
    lambda a: a.transpose(0, 1), lambda a: a.t(), lambda a: a.reshape(2, 6),
    lambda a: a.view(4, 3), lambda a: a.flatten(), lambda a: a.unsqueeze(1),
    lambda a: a.select(1, 2), lambda a: a.expand(2, 3, 4), lambda a: a.split(2)[1],
    lambda a: a.contiguous(), lambda a: a.clone(), lambda a: a.detach(),
]  # fmt: skip


@pytest.mark.parametrize("i", range(len(SHAPE_OPS)))
def test_masked_tensor_shape_ops(i, device):
    mt, tmt = mts(device)
    mt_close(SHAPE_OPS[i](mt), SHAPE_OPS[i](tmt), full=True)
    if i < len(SHAPE_OPS) - 1:  # (detach, the last, has no gradient path)
        grad_vs_plain_torch(SHAPE_OPS[i], device, g=lambda y: y * y)


def test_masked_tensor_advanced_indexing_and_casts(device):
    mt, tmt = mts(device)
    idx, tidx = make(np.array([2, 0, 2]), device)
    mt_close(mt[idx], tmt[tidx], full=True)
    mt_close(mt[mt.get_mask()], tmt[tmt.get_mask()], full=True)
    for f in [
        lambda a: a.float(),
        lambda a: a.long(),
        lambda a: a.to(mg.float32 if a is mt else torch.float32),
    ]:
        mt_close(f(mt), f(tmt))
    assert [tuple(p.shape) for p in mt.chunk(2, 1)] == [tuple(p.shape) for p in tmt.chunk(2, 1)]


def test_masked_tensor_autograd_paths(device):
    mt, tmt = mts(device, grad=True)
    assert mt.requires_grad and mt.is_leaf and mt.grad is None
    mt.get_data().sum().backward()
    tmt.get_data().sum().backward()
    mt_close(mt.grad, tmt.grad, full=True)

    mt, tmt = mts(device, grad=True)
    (mt.to_tensor(0.0) * 3).sum().backward()
    (tmt.to_tensor(0.0) * 3).sum().backward()
    mt_close(mt.grad, tmt.grad, full=True)

    # as_masked_tensor keeps the gradient path to the data
    a = np.random.default_rng(1).standard_normal((3, 4))
    m = a > 0
    x, tx = make(a, device, grad=True)
    amt = as_masked_tensor(x, mg.tensor(m, device=device))
    tamt = torch.masked.as_masked_tensor(tx, torch.tensor(m))
    assert amt.requires_grad and not amt.is_leaf
    (amt * 2).exp().sum().backward()
    (tamt * 2).exp().sum().backward()
    close(x.grad, tx.grad.get_data())

    # masked functions take a MaskedTensor and return a plain Tensor
    mt, tmt = mts(device)
    close(mg.masked.sum(mt, 1), torch.masked.sum(tmt, 1))
    close(mg.masked.mean(mt, 1, mask=mt.get_mask()), torch.masked.mean(tmt, 1, mask=tmt.get_mask()))


def test_masked_tensor_unsupported_ops_name_the_op(device):
    mt, tmt = mts(device)
    for name, call in [("cumsum", lambda a: a.cumsum(0)), ("T", lambda a: a.T),
                       ("masked_fill", lambda a: a.masked_fill(a.get_mask(), 0.0)),
                       ("log_softmax", lambda a: a.log_softmax(1))]:  # fmt: skip
        with pytest.raises(TypeError):
            call(tmt)
        with pytest.raises(TypeError, match=name):
            call(mt)
    with pytest.raises(TypeError, match="unary ops"):
        mt.pow(mt)
    with pytest.raises(AttributeError):
        mt.no_such_name  # noqa: B018


def test_masked_ops_do_not_sync_the_device():
    x = mg.randn(4, 6, device="fakegpu", requires_grad=True)
    m = mg.rand(4, 6, device="fakegpu") > 0.5
    mg.backend.fake_stats.reset()
    ys = [getattr(mg.masked, n)(x, 1, mask=m) for n in ("sum", "amax", "mean", "var", "softmax")]
    mt = as_masked_tensor(x, m)
    out = ((mt.exp() + mt) * 2 - mt.sigmoid()).sum(1).amax() * mt.softmax(0).sum().get_data()
    (sum(y.sum() for y in ys) + out.get_data()).backward()
    assert mg.backend.fake_stats.syncs == 0
    # NOTE: two MaskedTensors with different mask objects must compare their masks (a sync)
    (mt.sum() + mt.mean()).get_data()
    assert mg.backend.fake_stats.syncs == 1


def test_torch_masked_maps_to_manygrad_masked():
    from manygrad.compat.importer import target_name

    assert target_name("torch.masked") == "manygrad.masked"
    assert mg.masked.MaskedTensor is mg.masked._tensor.MaskedTensor
    assert set(torch.masked.__all__) <= set(mg.masked.__all__)
