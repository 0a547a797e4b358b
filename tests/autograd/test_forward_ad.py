"""autograd.forward_ad (dual_level, make_dual, unpack_dual): tangents equal PyTorch's
forward-mode results, for one or several dual inputs, on every device."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.autograd.forward_ad as MF

torch = pytest.importorskip("torch")
TF = torch.autograd.forward_ad
RNG = np.random.default_rng(0)

FUNCS = [
    ("elementwise", lambda a, b: (a * a).sin() * b.exp()),
    ("matmul and softmax", lambda a, b: (a @ b.mT).softmax(-1)),
    ("reduction", lambda a, b: (a - b).pow(2).mean(-1)),
]


@pytest.mark.parametrize("name,fn", FUNCS, ids=[n for n, _ in FUNCS])
def test_tangents_equal_pytorchs(name, fn, device):
    a, b, ta, tb = (RNG.standard_normal((3, 4)) for _ in range(4))
    with TF.dual_level():
        ya = fn(TF.make_dual(torch.tensor(a), torch.tensor(ta)),
                TF.make_dual(torch.tensor(b), torch.tensor(tb)))  # fmt: skip
        want = TF.unpack_dual(ya)
    with MF.dual_level():
        da = MF.make_dual(mg.tensor(a, device=device), mg.tensor(ta, device=device))
        db = MF.make_dual(mg.tensor(b, device=device), mg.tensor(tb, device=device))
        got = MF.unpack_dual(fn(da, db))
        assert MF.unpack_dual(da).tangent is not None
    np.testing.assert_allclose(got.primal.cpu().numpy(), want.primal.numpy(), rtol=1e-12)
    np.testing.assert_allclose(got.tangent.cpu().numpy(), want.tangent.numpy(), rtol=1e-10,
                               atol=1e-12)  # fmt: skip


def test_one_dual_among_plain_tensors_and_modules():
    torch.manual_seed(0)
    lin_t = torch.nn.Linear(4, 3).double()
    lin_m = mg.nn.Linear(4, 3).to(mg.float64)
    lin_m.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in lin_t.state_dict().items()})
    x, t = RNG.standard_normal((2, 4)), RNG.standard_normal((2, 4))
    with TF.dual_level():
        want = TF.unpack_dual(torch.tanh(lin_t(TF.make_dual(torch.tensor(x), torch.tensor(t)))))
    with MF.dual_level():
        got = MF.unpack_dual(mg.tanh(lin_m(MF.make_dual(mg.tensor(x), mg.tensor(t)))))
        assert MF.unpack_dual(mg.ones(2)).tangent is None  # depends on no dual
    np.testing.assert_allclose(got.tangent.numpy(), want.tangent.detach().numpy(), rtol=1e-10)


def test_levels_and_bad_input():
    with pytest.raises(RuntimeError, match="dual level"):
        MF.make_dual(mg.ones(2), mg.ones(2))
    with MF.dual_level():
        with pytest.raises(ValueError, match="shape"):
            MF.make_dual(mg.ones(2), mg.ones(3))
        d = MF.make_dual(mg.ones(2), mg.ones(2))
    assert MF.unpack_dual(d * 2).tangent is None  # the level is closed
    with pytest.raises(RuntimeError, match="no dual level"):
        MF.exit_dual_level()
