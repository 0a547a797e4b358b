"""nn.UninitializedParameter / UninitializedBuffer and the lazy modules' placeholders: the
classes, isinstance answers, errors on use and materialize() as PyTorch's, on every device."""

import copy
import pickle

import numpy as np
import pytest

import manygrad as mg
from manygrad.nn.parameter import is_lazy

torch = pytest.importorskip("torch")
TP, MP = torch.nn.parameter, mg.nn.parameter


@pytest.mark.parametrize("name", ["UninitializedParameter", "UninitializedBuffer"])
def test_placeholders_answer_like_torchs(name):
    t, m = getattr(TP, name)(), getattr(mg.nn, name)()
    assert getattr(MP, name) is type(m)
    for cls in ("Parameter", "UninitializedParameter", "UninitializedBuffer"):
        assert isinstance(m, getattr(mg.nn, cls)) == isinstance(t, getattr(torch.nn, cls))
    assert isinstance(m, mg.Tensor) and is_lazy(m) and TP.is_lazy(t)
    assert not is_lazy(mg.zeros(1)) and not is_lazy(mg.nn.Parameter(mg.zeros(1)))
    assert repr(m) == repr(t) and str(m) == str(t)
    assert m.requires_grad == t.requires_grad and m.is_leaf and m.grad is None
    assert tuple(m.size()) == tuple(t.size()) and m.dtype == mg.float32
    assert m.is_floating_point() and not m.is_complex() and m.get_device() == t.get_device()
    assert m in [m] and m in {m}  # hashing by identity still works
    if name == "UninitializedBuffer":
        assert m.persistent and not mg.nn.UninitializedBuffer(persistent=False).persistent


USES = [
    ("add", lambda p: p + 1), ("radd", lambda p: 1 + p), ("sum", lambda p: p.sum()),
    ("numel", lambda p: p.numel()), ("dim", lambda p: p.dim()), ("detach", lambda p: p.detach()),
    ("requires_grad_", lambda p: p.requires_grad_(False)), ("len", lambda p: len(p)),
    ("getitem", lambda p: p[0]), ("eq", lambda p: p == p), ("bool", lambda p: bool(p)),
    ("view", lambda p: p.view(-1)), ("clone", lambda p: p.clone()),
    ("new_zeros", lambda p: p.new_zeros(3)), ("numpy", lambda p: p.numpy()),
]  # fmt: skip


@pytest.mark.parametrize("use", [u for _, u in USES], ids=[n for n, _ in USES])
@pytest.mark.parametrize("name", ["UninitializedParameter", "UninitializedBuffer"])
def test_use_before_materialize_is_refused_as_torch(name, use):
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter in"):
        use(getattr(TP, name)())
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter in") as e:
        use(getattr(mg.nn, name)())
    assert "call `forward` with a dummy batch" in str(e.value)


def test_shape_and_share_memory_are_refused_as_torch():
    for lib in (torch, mg):
        p = lib.nn.UninitializedParameter()
        with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized"):
            p.shape  # noqa: B018
        with pytest.raises(RuntimeError, match="Can't share memory on an uninitialized"):
            p.share_memory_()
    with pytest.raises(RuntimeError, match="Can't access the shape"):  # F.linear reads it
        mg.nn.functional.linear(mg.ones(2, 3), mg.nn.UninitializedParameter())


@pytest.mark.parametrize("requires_grad", [True, False])
def test_materialize_turns_the_object_into_a_parameter(requires_grad, device):
    p = mg.nn.UninitializedParameter(requires_grad, device=device, dtype=mg.float64)
    same = p
    p.materialize((2, 3))
    t = TP.UninitializedParameter(requires_grad, dtype=torch.float64)
    t.materialize((2, 3))
    assert type(p) is mg.nn.Parameter and type(t) is torch.nn.Parameter and p is same
    assert tuple(p.shape) == (2, 3) and p.dtype == mg.float64 and p.device == mg.device(device)
    assert p.requires_grad == t.requires_grad == requires_grad and p.is_leaf
    b = mg.nn.UninitializedBuffer(device=device)
    b.materialize(4, dtype=mg.float16, device="cpu")
    assert type(b) is mg.Tensor and tuple(b.shape) == (4,) and b.dtype == mg.float16
    assert b.device == mg.device("cpu") and not b.requires_grad
    if requires_grad:
        mg.nn.init.zeros_(p)  # NOTE: materialize leaves the values uninitialized, as empty()
        (p * 2).sum().backward()
        np.testing.assert_array_equal(p.grad.cpu().numpy(), np.full((2, 3), 2.0))


def test_conversions_deepcopy_and_pickle_keep_placeholders(device):
    p = mg.nn.UninitializedParameter(device=device)
    assert p.to(device) is p and not is_lazy(p.double())  # as torch: a plain empty tensor
    q = copy.deepcopy(p)
    assert type(q) is type(p) and q is not p and q.device == p.device and q.requires_grad
    b = pickle.loads(pickle.dumps(mg.nn.UninitializedBuffer()))
    assert type(b) is mg.nn.UninitializedBuffer and not b.requires_grad


LAZY = [
    ("LazyLinear", (3,), {}, (2, 5)),
    ("LazyConv2d", (4, 3), {}, (1, 2, 5, 5)),
    ("LazyConvTranspose1d", (4, 3), dict(bias=False), (2, 3, 5)),
    ("LazyBatchNorm1d", (), {}, (4, 3)),
    ("LazyInstanceNorm2d", (), dict(affine=True, track_running_stats=True), (2, 3, 4, 4)),
    ("LazyBatchNorm2d", (), dict(affine=False), (2, 3, 4, 4)),
]  # fmt: skip


@pytest.mark.parametrize("cls,args,kw,shape", LAZY, ids=[c[0] for c in LAZY])
def test_lazy_modules_hold_placeholders_as_torch(cls, args, kw, shape, device):
    tm = getattr(torch.nn, cls)(*args, **kw)
    mm = getattr(mg.nn, cls)(*args, **kw)
    t_sd, m_sd = tm.state_dict(), mm.state_dict()
    assert list(m_sd) == list(t_sd) and repr(mm) == repr(tm)
    for k, v in t_sd.items():
        assert type(m_sd[k]).__name__ == type(v).__name__, k  # the placeholders themselves
    assert mm.has_uninitialized_params() == tm.has_uninitialized_params() is True
    mm.reset_parameters()  # a no-op before the sizes are known, as in PyTorch
    if list(mm.parameters()):
        with pytest.raises(ValueError, match="uninitialized parameter"):
            mm.requires_grad_(False)
        with pytest.raises(ValueError, match="uninitialized parameter"):
            tm.requires_grad_(False)
    mm.to(device).to(mg.float64)
    assert all(t.dtype == mg.float64 for t in mm.parameters())
    x = mg.tensor(np.random.default_rng(0).standard_normal(shape), device=device)
    tm.double()(torch.tensor(x.cpu().numpy()))
    mm(x)
    assert type(mm).__name__ == type(tm).__name__ and repr(mm) == repr(tm)
    for k, v in tm.state_dict().items():
        got = mm.state_dict()[k]
        assert not is_lazy(got) and tuple(got.shape) == tuple(v.shape), k
        assert got.device == mg.device(device)
        assert str(got.dtype).split(".")[-1] == str(v.dtype).split(".")[-1], k


def test_load_state_dict_materializes_with_the_loaded_shapes():
    src_t, src_m = torch.nn.Linear(4, 3), mg.nn.Linear(4, 3)
    tm, mm = torch.nn.LazyLinear(3), mg.nn.LazyLinear(3)
    tm.load_state_dict(src_t.state_dict())
    mm.load_state_dict(src_m.state_dict())
    assert type(mm).__name__ == type(tm).__name__ == "LazyLinear"  # until the first call
    assert not mm.has_uninitialized_params()
    np.testing.assert_array_equal(mm.weight.detach().numpy(), src_m.weight.detach().numpy())
    out = mm(mg.ones(2, 4))
    np.testing.assert_allclose(out.detach().numpy(), src_m(mg.ones(2, 4)).detach().numpy())
    bn = mg.nn.LazyBatchNorm1d()
    bn.load_state_dict(mg.nn.BatchNorm1d(5).state_dict())
    assert tuple(bn.running_var.shape) == (5,) and type(bn.running_var) is mg.Tensor


def test_lazy_sizes_are_checked_like_torch():
    with pytest.raises(ValueError, match="Expected 3D \\(unbatched\\) or 4D \\(batched\\)"):
        mg.nn.LazyConv2d(4, 3)(mg.ones(5, 5))
    with pytest.raises(ValueError, match="divisible by groups"):
        mg.nn.LazyConv2d(4, 3, groups=2)(mg.ones(1, 3, 5, 5))
