"""Scatter-style ops against PyTorch: values and gradients to input and src."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")
IDX = np.array([[0, 1, 0, 2], [2, 0, 0, 1]])  # into dim 0 of a (3, 4) input
IDX1 = np.array([[0, 3, 3], [1, 1, 2]])  # into dim 1 of a (2, 5) input
UNIQ = np.array([[0, 1, 2, 2], [2, 0, 1, 1]])  # no repeats in a column (dim 0)
ROWS = [
    ("scatter", [(3, 4), 0, UNIQ[:1], (1, 4)], {}),
    ("scatter", [(2, 5), 1, np.array([[4, 0], [1, 3]]), (2, 2)], {}),
    ("scatter", [(3, 4), 0, UNIQ[:1]], {"value": 1.5}),
    ("scatter_add", [(3, 4), 0, IDX, (2, 4)], {}),
]
for red in ("sum", "prod", "mean", "amax", "amin"):
    for inc in (True, False):
        # NOTE: prod's second derivative is not implemented (its first one is exact)
        kw = {"include_self": inc, **({"double": False} if red == "prod" else {})}
        ROWS.append(("scatter_reduce", [(3, 4), 0, IDX, (2, 4), red], kw))
        ROWS.append(("scatter_reduce", [(2, 5), 1, IDX1, (2, 3), red], kw))
ROWS += [
    ("index_add", [(4, 3), 0, np.array([0, 2, 0]), (3, 3)], {}),
    ("index_add", [(4, 3), 1, np.array([2, 2]), (4, 2)], {"alpha": 2.0}),
    ("index_copy", [(4, 3), 0, np.array([3, 1]), (2, 3)], {}),
    ("index_fill", [(4, 3), 1, np.array([0, 2]), -1.0], {}),
    ("masked_select", [(3, 4), np.array([True, False, True, True])], {}),
    ("masked_scatter", [(3, 4), np.array([[True, False, True, True]]), (3, 5)], {}),
    ("take", [(3, 4), np.array([[0, 11], [5, 5]])], {}),
    ("take_along_dim", [(3, 4), np.array([[0, 3], [1, 1], [2, 0]])], {"dim": 1}),
    ("take_along_dim", [(3, 4), np.array([[0, 2, 2, 1]])], {"dim": 0}),
    ("take_along_dim", [(3, 4), np.array([1, 7])], {}),
]


@pytest.mark.parametrize("name,specs,opts", ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_scatter(name, specs, opts):
    check_op(name, specs, **opts)


def test_scatter_reduce_ties_share_gradient():
    # the input's value and one scattered value both equal the max: each gets half
    x = mg.tensor([1.0, 5.0], requires_grad=True)
    s = mg.tensor([5.0, 2.0], requires_grad=True)
    mg.scatter_reduce(x, 0, mg.tensor([1, 0]), s, "amax").sum().backward()
    tx = torch.tensor([1.0, 5.0], requires_grad=True)
    ts = torch.tensor([5.0, 2.0], requires_grad=True)
    torch.scatter_reduce(tx, 0, torch.tensor([1, 0]), ts, "amax").sum().backward()
    assert x.grad.tolist() == tx.grad.tolist() and s.grad.tolist() == ts.grad.tolist()


@pytest.mark.filterwarnings("ignore:The reduce argument")
def test_integer_scatter_reduce_and_legacy_reduce():
    x = np.array([[1, 2, 3], [4, 5, 6]])
    i = np.array([[0, 0, 1]])
    s = np.array([[7, -2, 3]])
    for red in ("sum", "prod", "mean", "amax", "amin"):
        got = mg.scatter_reduce(mg.tensor(x), 0, mg.tensor(i), mg.tensor(s), red)
        want = torch.scatter_reduce(torch.tensor(x), 0, torch.tensor(i), torch.tensor(s), red)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for red in ("add", "multiply"):
        got = mg.scatter(mg.tensor(x), 0, mg.tensor(i), mg.tensor(s), reduce=red)
        want = torch.scatter(torch.tensor(x), 0, torch.tensor(i), torch.tensor(s), reduce=red)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_bad_input_errors():
    with pytest.raises(ValueError, match="reduce must be one of"):
        mg.scatter_reduce(mg.zeros(3), 0, mg.tensor([0]), mg.ones(1), "max")
    with pytest.raises(mg.ManygradError, match="source must have shape"):
        mg.index_add(mg.zeros(3, 2), 0, mg.tensor([0]), mg.ones(2, 2))
    with pytest.raises(mg.ManygradError, match="bool"):
        mg.masked_select(mg.zeros(3), mg.tensor([0, 1, 0]))


@pytest.mark.parametrize("src", [[2.0, 2, 0, 3], [2.0, 0, 0, 3], [0.0, 2, 2, 3], [1.5, -2, 0.5, 3]])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("own", [[1.0, 1], [0.0, 2], [3.0, 0]])
def test_scatter_reduce_prod_gradient_with_zeros(src, include_self, own, device):
    got = []
    for lib, kw in ((torch, {}), (mg, {"device": device})):
        s = lib.tensor(src, requires_grad=True, **kw)
        x = lib.tensor(own, requires_grad=True, **kw)
        idx = lib.tensor([0, 0, 0, 1], **kw)
        o = x.scatter_reduce(0, idx, s, reduce="prod", include_self=include_self)
        (o * lib.tensor([1.0, 2.0], **kw)).sum().backward()
        got.append([t.detach().cpu().numpy() for t in (o, s.grad, x.grad)])
    for want, have in zip(*got):
        np.testing.assert_allclose(have, want, rtol=1e-6)
