"""nn.utils.parametrize and nn.utils.parametrizations against PyTorch: the same state-dict
names, the same tensors, and the same training trajectories."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.nn.utils import parametrizations as MP
from manygrad.nn.utils import parametrize as MZ

torch = pytest.importorskip("torch")
TP = torch.nn.utils.parametrizations
TZ = torch.nn.utils.parametrize


def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "cpu") else t.detach().numpy()


def _copy_state(src_torch, dst_mg):
    dst_mg.load_state_dict({k: mg.tensor(_np(v)) for k, v in src_torch.state_dict().items()})


def _same_state(a_mg, b_torch, atol=1e-10):
    sa, sb = a_mg.state_dict(), b_torch.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_allclose(_np(sa[k]), _np(sb[k]), atol=atol, err_msg=k)


def _pair(make_mg, make_torch, seed=0):
    torch.manual_seed(seed)
    t = make_torch().double()
    m = make_mg().to(mg.float64)
    return m, t


def _train(m, t, x, steps=4, lr=0.1, attr="weight"):
    om, ot = mg.optim.SGD(m.parameters(), lr=lr), torch.optim.SGD(t.parameters(), lr=lr)
    xm, xt = mg.tensor(x), torch.tensor(x)
    for _ in range(steps):
        om.zero_grad(), ot.zero_grad()
        lm, lt = (m(xm) ** 2).mean(), (t(xt) ** 2).mean()
        lm.backward(), lt.backward()
        om.step(), ot.step()
        np.testing.assert_allclose(lm.item(), lt.item(), rtol=1e-9)
    np.testing.assert_allclose(_np(getattr(m, attr)), _np(getattr(t, attr)), atol=1e-9)


class SymMG(mg.nn.Module):
    def forward(self, X):  # noqa: N803
        return X.triu() + X.triu(1).mT


class SymT(torch.nn.Module):
    def forward(self, X):  # noqa: N803
        return X.triu() + X.triu(1).mT


class ScaleMG(mg.nn.Module):
    """Two originals: a scale and a direction."""

    def forward(self, s, v):
        return s * v

    def right_inverse(self, w):
        return w.norm().reshape(1), w / w.norm()


class ScaleT(torch.nn.Module):
    def forward(self, s, v):
        return s * v

    def right_inverse(self, w):
        return w.norm().reshape(1), w / w.norm()


def test_register_names_values_and_training_equal_pytorchs():
    m, t = _pair(lambda: mg.nn.Linear(4, 4), lambda: torch.nn.Linear(4, 4))
    _copy_state(t, m)
    MZ.register_parametrization(m, "weight", SymMG())
    TZ.register_parametrization(t, "weight", SymT())
    assert type(m).__name__ == type(t).__name__ == "ParametrizedLinear"
    assert MZ.type_before_parametrizations(m) is mg.nn.Linear
    assert MZ.is_parametrized(m) and MZ.is_parametrized(m, "weight")
    assert not MZ.is_parametrized(m, "bias")
    _same_state(m, t)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    np.testing.assert_allclose(_np(m.weight), _np(t.weight))
    assert repr(m).replace("SymMG", "Sym") == repr(t).replace("SymT", "Sym")
    x = np.random.default_rng(0).standard_normal((5, 4))
    _train(m, t, x)


def test_sequence_originals_assignment_and_chains():
    m, t = _pair(lambda: mg.nn.Linear(3, 2), lambda: torch.nn.Linear(3, 2))
    _copy_state(t, m)
    MZ.register_parametrization(m, "weight", ScaleMG())
    TZ.register_parametrization(t, "weight", ScaleT())
    _same_state(m, t)
    assert "parametrizations.weight.original1" in m.state_dict()
    w = np.arange(6.0).reshape(2, 3)
    m.weight, t.weight = mg.tensor(w), torch.tensor(w)  # through right_inverse
    _same_state(m, t)
    np.testing.assert_allclose(_np(m.weight), w, atol=1e-12)
    # a second parametrization on the same tensor: applied after the first
    m2, t2 = _pair(lambda: mg.nn.Linear(3, 3), lambda: torch.nn.Linear(3, 3))
    _copy_state(t2, m2)
    for mod, sym in ((m2, SymMG), (t2, SymT)):
        reg = MZ.register_parametrization if mod is m2 else TZ.register_parametrization
        reg(mod, "weight", sym())
        reg(mod, "weight", sym())
    _same_state(m2, t2)
    assert len(m2.parametrizations.weight) == 2


def test_original_object_kept_so_optimizers_keep_working():
    m = mg.nn.Linear(3, 3)
    w = m.weight
    opt = mg.optim.SGD(m.parameters(), lr=0.1)
    MZ.register_parametrization(m, "weight", SymMG())
    assert m.parametrizations.weight.original is w
    m(mg.ones(2, 3)).sum().backward()
    before = w.detach().clone()
    opt.step()
    assert not bool((w == before).all())


def test_cached_computes_once_inside_the_block():
    calls = []

    class Counting(mg.nn.Module):
        def forward(self, X):  # noqa: N803
            calls.append(1)
            return X * 2

    m = mg.nn.Linear(2, 2)
    MZ.register_parametrization(m, "weight", Counting())
    calls.clear()
    with MZ.cached():
        a, b = m.weight, m.weight
        assert a is b
    assert len(calls) == 1
    m.weight, m.weight  # noqa: B018
    assert len(calls) == 3


@pytest.mark.parametrize("leave", [True, False])
def test_remove_parametrizations(leave):
    m, t = _pair(lambda: mg.nn.Linear(3, 3), lambda: torch.nn.Linear(3, 3))
    _copy_state(t, m)
    MZ.register_parametrization(m, "weight", SymMG())
    TZ.register_parametrization(t, "weight", SymT())
    w = m.parametrizations.weight.original
    MZ.remove_parametrizations(m, "weight", leave_parametrized=leave)
    TZ.remove_parametrizations(t, "weight", leave_parametrized=leave)
    assert type(m) is mg.nn.Linear and not MZ.is_parametrized(m)
    assert m.weight is w and isinstance(m.weight, mg.nn.Parameter)
    _same_state(m, t)
    with pytest.raises(ValueError, match="does not have a parametrization"):
        MZ.remove_parametrizations(m, "weight")


def test_remove_sequence_originals_needs_leave_parametrized():
    m = MZ.register_parametrization(mg.nn.Linear(3, 2), "weight", ScaleMG())
    with pytest.raises(ValueError, match="sequence of tensors"):
        MZ.remove_parametrizations(m, "weight", leave_parametrized=False)
    w = m.weight.detach().clone()
    MZ.remove_parametrizations(m, "weight")
    np.testing.assert_allclose(m.weight.detach().numpy(), w.numpy())
    assert isinstance(m.weight, mg.nn.Parameter) and m.weight.requires_grad


def test_errors_name_the_problem():
    class Shrink(mg.nn.Module):
        def forward(self, X):  # noqa: N803
            return X[:1]

    with pytest.raises(ValueError, match="shape"):
        MZ.register_parametrization(mg.nn.Linear(3, 3), "weight", Shrink())
    MZ.register_parametrization(mg.nn.Linear(3, 3), "weight", Shrink(), unsafe=True)
    with pytest.raises(ValueError, match="does not have a parameter"):
        MZ.register_parametrization(mg.nn.Linear(3, 3), "nope", SymMG())
    m = MZ.register_parametrization(mg.nn.Linear(3, 3), "weight", SymMG())
    with pytest.raises(RuntimeError, match="right_inverse"):
        m.weight = mg.ones(3, 3)
    import pickle

    with pytest.raises(RuntimeError, match="state_dict"):
        pickle.dumps(m)
    import copy

    c = copy.deepcopy(m)
    np.testing.assert_allclose(c.weight.detach().numpy(), m.weight.detach().numpy())
    assert c.parametrizations.weight.original is not m.parametrizations.weight.original


def test_buffers_can_be_parametrized():
    m = mg.nn.BatchNorm1d(3)
    MZ.register_parametrization(m, "running_var", _Abs())
    assert "parametrizations.running_var.original" in m.state_dict()
    assert not isinstance(m.parametrizations.running_var.original, mg.nn.Parameter)


class _Abs(mg.nn.Module):
    def forward(self, x):
        return x.abs()


# ------------------------------------------------------------------- orthogonal


@pytest.mark.parametrize("omap", ["matrix_exp", "cayley", "householder"])
def test_orthogonal_square_equals_pytorch_through_training(omap):
    m, t = _pair(lambda: mg.nn.Linear(4, 4), lambda: torch.nn.Linear(4, 4), seed=1)
    _copy_state(t, m)
    MP.orthogonal(m, orthogonal_map=omap)
    TP.orthogonal(t, orthogonal_map=omap)
    _same_state(m, t, atol=1e-9)
    np.testing.assert_allclose(_np(m.weight), _np(t.weight), atol=1e-9)
    w = _np(m.weight)
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-9)
    x = np.random.default_rng(0).standard_normal((6, 4))
    _train(m, t, x, steps=5, lr=0.5)
    w = _np(m.weight)
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-9)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5)])
@pytest.mark.parametrize("omap", ["matrix_exp", "cayley", "householder"])
def test_orthogonal_rectangular_keeps_orthonormal_columns_or_rows(shape, omap):
    m, t = _pair(lambda: mg.nn.Linear(shape[1], shape[0]), lambda: torch.nn.Linear(*shape[::-1]))
    _copy_state(t, m)
    MP.orthogonal(m, orthogonal_map=omap)
    TP.orthogonal(t, orthogonal_map=omap)
    # the starting weight depends only on the original (the completed basis is random)
    np.testing.assert_allclose(_np(m.weight), _np(t.weight), atol=1e-9)
    opt = mg.optim.SGD(m.parameters(), lr=0.3)
    x = mg.tensor(np.random.default_rng(0).standard_normal((6, shape[1])))
    for _ in range(4):
        opt.zero_grad()
        (m(x) ** 2).mean().backward()
        opt.step()
    w = _np(m.weight)
    gram = w.T @ w if shape[0] > shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-9)


@pytest.mark.parametrize("shape", [(4, 4), (5, 3)])
def test_orthogonal_without_trivialization_householder_equals_pytorch(shape):
    m, t = _pair(lambda: mg.nn.Linear(shape[1], shape[0]), lambda: torch.nn.Linear(*shape[::-1]))
    _copy_state(t, m)
    MP.orthogonal(m, orthogonal_map="householder", use_trivialization=False)
    TP.orthogonal(t, orthogonal_map="householder", use_trivialization=False)
    _same_state(m, t, atol=1e-9)
    x = np.random.default_rng(0).standard_normal((6, shape[1]))
    _train(m, t, x, steps=4, lr=0.3)


def test_orthogonal_assignment_and_errors():
    m = MP.orthogonal(mg.nn.Linear(3, 3).to(mg.float64))
    q = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))[0]
    m.weight = mg.tensor(q)
    np.testing.assert_allclose(_np(m.weight), q, atol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        m.weight = mg.ones(2, 3, dtype=mg.float64)
    with pytest.raises(ValueError, match="one of"):
        MP.orthogonal(mg.nn.Linear(3, 3), orthogonal_map="svd")
    with pytest.raises(ValueError, match="matrix or batch of matrices"):
        MP.orthogonal(mg.nn.Linear(3, 3), name="bias")
    with pytest.raises(ValueError, match="no parameter"):
        MP.orthogonal(mg.nn.Linear(3, 3), name="nope")


# ------------------------------------------------------------------- weight_norm


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_equals_pytorch(dim):
    m, t = _pair(lambda: mg.nn.Conv1d(3, 4, 3), lambda: torch.nn.Conv1d(3, 4, 3))
    _copy_state(t, m)
    MP.weight_norm(m, dim=dim)
    TP.weight_norm(t, dim=dim)
    _same_state(m, t)
    x = np.random.default_rng(0).standard_normal((2, 3, 7))
    _train(m, t, x)


def test_weight_norm_loads_the_hook_based_state_dict():
    old = mg.nn.utils.weight_norm(mg.nn.Linear(3, 4))
    sd = old.state_dict()
    assert "weight_g" in sd
    new = MP.weight_norm(mg.nn.Linear(3, 4))
    new.load_state_dict(sd)
    np.testing.assert_allclose(_np(new.weight), _np(old.weight), rtol=1e-6)


# ------------------------------------------------------------------- spectral_norm


@pytest.mark.parametrize("kind", ["linear", "conv_transpose"])
def test_spectral_norm_equals_pytorch_in_train_and_eval(kind):
    if kind == "linear":
        m, t = _pair(lambda: mg.nn.Linear(5, 4), lambda: torch.nn.Linear(5, 4))
        x = np.random.default_rng(0).standard_normal((3, 5))
    else:
        m, t = _pair(lambda: mg.nn.ConvTranspose1d(3, 4, 3),
                     lambda: torch.nn.ConvTranspose1d(3, 4, 3))  # fmt: skip
        x = np.random.default_rng(0).standard_normal((2, 3, 6))
    _copy_state(t, m)
    MP.spectral_norm(m)
    TP.spectral_norm(t)
    assert list(m.state_dict()) == list(t.state_dict())
    _copy_state(t, m)  # the power iteration's random start vectors
    _train(m, t, x, steps=3)
    _same_state(m, t, atol=1e-9)
    m.eval(), t.eval()
    np.testing.assert_allclose(_np(m.weight), _np(t.weight), atol=1e-9)


def test_spectral_norm_of_a_vector_normalizes():
    m = mg.nn.Linear(3, 3)
    MP.spectral_norm(m, "bias")
    np.testing.assert_allclose(float(m.bias.norm()), 1.0, rtol=1e-6)


@pytest.mark.parametrize("device", ["fakegpu"])
def test_parametrizations_run_on_the_fake_gpu(device):
    m = MP.orthogonal(mg.nn.Linear(4, 4)).to(device)
    m = MP.spectral_norm(mg.nn.Linear(4, 3)).to(device)
    out = m(mg.ones(2, 4, device=device))
    assert out.device.type == "fakegpu"
    o = MP.orthogonal(mg.nn.Linear(4, 4).to(device))
    w = o.weight.cpu().detach().numpy()
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-5)


# ------------------------------------------------------------------- state-dict hooks


def test_state_dict_and_load_hooks():
    m = mg.nn.Linear(2, 2)
    seen = []
    h1 = m.register_state_dict_pre_hook(lambda mod, prefix, keep: seen.append(("pre", prefix)))

    def post(mod, sd, prefix, meta):
        sd[prefix + "extra"] = mg.zeros(1)

    m.register_state_dict_post_hook(post)
    sd = m.state_dict()
    assert seen == [("pre", "")] and "extra" in sd
    h1.remove()

    def drop_extra(mod, keys):
        if "extra" in keys.unexpected_keys:
            keys.unexpected_keys.remove("extra")

    m.register_load_state_dict_post_hook(drop_extra)
    m.load_state_dict(sd)  # strict: the hook accounted for the extra key

    def rename(mod, sd, prefix, meta, strict, missing, unexpected, errors):
        if prefix + "w" in sd:
            sd[prefix + "weight"] = sd.pop(prefix + "w")

    m.register_load_state_dict_pre_hook(rename)
    m.load_state_dict({"w": mg.ones(2, 2), "bias": mg.zeros(2)})
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.ones((2, 2), np.float32))
