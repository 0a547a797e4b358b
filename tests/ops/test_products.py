"""einsum, tensordot, matrix-vector products, cross, distances, scans and paired
reductions against PyTorch."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")


def _eq(eq):
    return (lambda *t: mg.einsum(eq, *t)), {"torch_fn": lambda *t: torch.einsum(eq, *t)}


EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("ij->", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(3,), (3,)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ijk,k", [(2, 3, 4), (4,)]),
    ("abc,cd->abd", [(2, 3, 4), (4, 5)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("i...->...", [(3, 2, 4)]),
]
ROWS = [(_eq(e)[0], s, _eq(e)[1]) for e, s in EINSUM]
ROWS += [
    ("tensordot", [(2, 3, 4), (3, 4, 5)], {"dims": 2}),
    ("tensordot", [(2, 3, 4), (4, 2)], {"dims": ([2, 0], [0, 1])}),
    ("outer", [(3,), (4,)], {}),
    ("inner", [(2, 3), (4, 3)], {}),
    ("dot", [(4,), (4,)], {}),
    ("vdot", [(4,), (4,)], {}),
    ("mv", [(3, 4), (4,)], {}),
    ("addmm", [(3, 5), (3, 4), (4, 5)], {}),
    ("addmm", [(5,), (3, 4), (4, 5)], {"beta": 0.5, "alpha": 2.0}),
    ("addmv", [(3,), (3, 4), (4,)], {"beta": 2.0}),
    ("addr", [(3, 4), (3,), (4,)], {"alpha": 0.5}),
    ("baddbmm", [(2, 3, 5), (2, 3, 4), (2, 4, 5)], {"beta": 0.5, "alpha": 1.5}),
    ("addbmm", [(3, 5), (2, 3, 4), (2, 4, 5)], {}),
    ("cross", [(4, 3), (4, 3)], {"dim": 1}),
    ("cross", [(3, 2), (3, 2)], {"dim": 0}),
    ("cdist", [(2, 4, 3), (2, 5, 3)], {}),
    ("cdist", [(4, 3), (5, 3)], {"p": 1.0}),
    ("cdist", [(4, 3), (5, 3)], {"p": 3.0}),
    ("dist", [(3, 4), (3, 4)], {}),
    ("dist", [(3, 4), (4,)], {"p": 3}),
    ("cumprod", [(3, 5)], {"dim": 1}),
    ("cumprod", [(4, 3)], {"dim": 0}),
    ("cummax", [(3, 6)], {"dim": 1}),
    ("cummin", [(6, 3)], {"dim": 0}),
    ("logcumsumexp", [(3, 5)], {"dim": 1}),
    ("var_mean", [(3, 5)], {"dim": 1}),
    ("std_mean", [(3, 5)], {"dim": 0, "keepdim": True}),
    ("aminmax", [(3, 5)], {"dim": 1}),
    ("nansum", [(3, 5)], {"dim": 1}),
    ("nanmean", [(3, 5)], {}),
]


@pytest.mark.parametrize("name,specs,opts", ROWS, ids=[str(i) for i in range(len(ROWS))])
def test_products(name, specs, opts):
    check_op(name, specs, **opts)


def test_addmm_beta_zero_ignores_nan():
    inp = mg.full((2, 2), float("nan"))
    out = mg.addmm(inp, mg.ones(2, 3), mg.ones(3, 2), beta=0)
    assert out.tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_cumprod_with_zeros_and_integer_scans():
    a = np.array([[2.0, 0.0, 3.0, 0.0, 4.0], [1.0, 2.0, 0.5, 3.0, 0.0]])
    x, t = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    u = np.random.default_rng(0).standard_normal(a.shape)
    (mg.cumprod(x, 1) * mg.tensor(u)).sum().backward()
    (torch.cumprod(t, 1) * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    i = np.array([[3, 1, 3, 2, 5, 5]])
    for name in ("cummax", "cummin"):
        got = getattr(mg, name)(mg.tensor(i), 1)
        want = getattr(torch, name)(torch.tensor(i), 1)
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    f = np.array([[1.0, np.nan, 3.0, np.nan, 0.0]])
    for name in ("cummax", "cummin"):
        got = getattr(mg, name)(mg.tensor(f), 1)
        want = getattr(torch, name)(torch.tensor(f), 1)
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


def test_einsum_errors():
    with pytest.raises(mg.ManygradError, match="einsum"):
        mg.einsum("ij,jk->ik", mg.ones(2, 3))
    with pytest.raises(mg.ManygradError, match="einsum"):
        mg.einsum("ijk->i", mg.ones(2, 3))


@pytest.mark.parametrize("bshape", [(1,), (), (2, 4), (4,)])
def test_linear_bias_broadcasts_as_pytorch(bshape, device):
    import torch.nn.functional as TF

    rng = np.random.default_rng(5)
    arrays = (rng.standard_normal((2, 3)), rng.standard_normal((4, 3)),
              np.asarray(rng.standard_normal(bshape)))  # fmt: skip
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ms = [mg.tensor(a, device=device, requires_grad=True) for a in arrays]
    tr, mr = TF.linear(*ts), mg.nn.functional.linear(*ms)
    np.testing.assert_allclose(mr.detach().cpu().numpy(), tr.detach().numpy(), rtol=1e-12)
    tr.sum().backward()
    mr.sum().backward()
    for t, m in zip(ts, ms):
        np.testing.assert_allclose(m.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="does not broadcast"):
        mg.nn.functional.linear(ms[0], ms[1], mg.ones(3, dtype=mg.float64, device=device))
