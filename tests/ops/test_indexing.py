"""Indexing ops: x[idx] (basic, integer-array, boolean), x[idx] = v, gather, scatter_add,
index_select, masked_fill against PyTorch and finite differences; then errors."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import AutogradError, DeviceError, DTypeError, ShapeError
from opcheck import check_finite_differences, check_op

torch = pytest.importorskip("torch")


def GET(x, idx):
    return x[idx]


def at(fn):
    """An index built from the index tensors that check_op passes in."""
    return {"torch_fn": fn, "fn": fn}


I = np.array  # noqa: E741 - reads like a literal in the table
MASK_ROWS = I([True, False, True])
MASK_2D = I([[True, False, False, True], [False, False, True, True], [True, True, False, False]])

# (label, specs, options): options hold the index (idx=...) or a lambda (fn=...)
ROWS = [
    # basic indexing
    ("int", [(3, 4)], {"idx": 1}),
    ("neg-int", [(3, 4)], {"idx": -1}),
    ("int-int", [(3, 4)], {"idx": (2, -3)}),
    ("slice", [(5, 4)], {"idx": slice(1, 4)}),
    ("slice-step", [(5, 4)], {"idx": (slice(None), slice(None, None, 2))}),
    ("slice-open", [(5, 4)], {"idx": (slice(-2, None), slice(None, 3))}),
    ("slice-empty", [(5, 4)], {"idx": slice(2, 2)}),
    ("slice-past-end", [(5, 4)], {"idx": slice(3, 100)}),
    ("none", [(3, 4)], {"idx": (None, slice(1, 3), None)}),
    ("ellipsis", [(2, 3, 4)], {"idx": (Ellipsis, 0)}),
    ("ellipsis-mid", [(2, 3, 4, 5)], {"idx": (1, Ellipsis, slice(1, 3))}),
    ("ellipsis-none", [(2, 3)], {"idx": (None, Ellipsis, None)}),
    ("0d-empty-tuple", [()], {"idx": ()}),
    ("0d-none", [()], {"idx": None}),
    ("0d-ellipsis", [()], {"idx": Ellipsis}),
    ("empty-tensor", [(0, 3)], {"idx": (slice(None), 1)}),
    ("py-true", [(2, 3)], {"idx": True}),
    ("py-false", [(2, 3)], {"idx": False}),
    # integer arrays (as tensors, lists and NumPy arrays)
    ("arr-repeat", [(5, 3), I([0, 2, 0, 4, 0])], at(lambda x, i: x[i])),
    ("arr-2d", [(5, 3), I([[0, 1], [1, 4]])], at(lambda x, i: x[i])),
    ("arr-dim1", [(4, 5, 6), I([[0, 1], [1, 3]])], at(lambda x, i: x[:, i])),
    ("arr-neg", [(4, 5), I([-1, 0, -1])], at(lambda x, i: x[i])),
    ("arr-empty", [(4, 5), I([], dtype=np.int64)], at(lambda x, i: x[i])),
    ("arr-then-int", [(3, 4, 5), I([2, 0, 2])], at(lambda x, i: x[1, :, i])),
    ("arr-int-apart", [(3, 3, 4, 5), I([0, 2, 1])], at(lambda x, i: x[:, i, :, 0])),
    ("arr-pair", [(4, 5), I([0, 3, 3]), I([1, 1, 4])], at(lambda x, i, j: x[i, j])),
    ("arr-pair-apart", [(4, 5, 3), I([0, 3]), I([2, 1])], at(lambda x, i, j: x[i, :, j])),
    ("arr-broadcast", [(4, 5), I([[0], [3]]), I([1, 2, 2])], at(lambda x, i, j: x[i, j])),
    ("arr-0d", [(4, 5), I(3)], at(lambda x, i: x[i])),
    ("arr-0d-select", [(2, 3, 4), I(1), I([0, 3])], at(lambda x, i, j: x[i, :, j])),
    ("arr-slice-mix", [(4, 5, 6), I([0, 0, 2])], at(lambda x, i: x[1:, i, ::2])),
    ("arr-none", [(4, 5), I([1, 1])], at(lambda x, i: x[None, i, None])),
    ("list", [(5, 3)], {"idx": [0, 2, 2]}),
    ("list-dim1", [(5, 3)], {"idx": (slice(None), [1, 0, 1])}),
    ("ndarray", [(5, 3)], {"idx": I([4, 4, 1])}),
    ("ndarray-pair", [(5, 3)], {"idx": (I([4, 0]), I([2, 2]))}),
    # boolean masks
    ("mask", [(3, 4), MASK_ROWS], at(lambda x, m: x[m])),
    ("mask-2d", [(3, 4), MASK_2D], at(lambda x, m: x[m])),
    ("mask-dim1", [(3, 4), I([True, True, False, True])], at(lambda x, m: x[:, m])),
    ("mask-none-true", [(3, 4), I([False, False, False])], at(lambda x, m: x[m])),
    ("mask-and-arr", [(3, 4), MASK_ROWS, I([3, 0])], at(lambda x, m, i: x[m, i])),
    ("mask-0d", [(3, 4), I(True)], at(lambda x, m: x[m])),
    ("mask-list", [(3, 4)], {"idx": [True, False, True]}),
]


@pytest.mark.parametrize("label,specs,opts", ROWS, ids=[r[0] for r in ROWS])
def test_getitem(label, specs, opts):
    opts = dict(opts)
    fn = opts.pop("fn", GET)
    check_op(fn, specs, torch_fn=opts.pop("torch_fn", GET), **opts)


IDX = I([[0, 0, 3], [1, 2, 2]])
ROWS_OPS = [
    ("gather", "gather", [(3, 4), 1, IDX], {}),
    ("gather-dim0", "gather", [(3, 4), 0, I([[2, 0, 2, 1]])], {}),
    ("gather-small", "gather", [(4, 5, 3), -1, I([[[2], [0]]])], {}),
    ("gather-0d", "gather", [(), 0, I(0)], {}),
    ("gather-empty", "gather", [(3, 4), 0, np.zeros((0, 4), np.int64)], {}),
    ("scatter_add", "scatter_add", [(3, 4), 0, I([[0, 1, 0, 2], [0, 0, 2, 2]]), (2, 4)], {}),
    # NOTE: PyTorch's own backward fails when src is larger than index: forward only here,
    # gradients by finite differences below
    ("scatter_add-big-src", "scatter_add", [(3, 4), 1, IDX, (3, 5)], {"grad": False}),
    (
        "scatter_add-empty",
        "scatter_add",
        [(3, 4), 1, np.zeros((3, 0), np.int64), (3, 2)],
        {"grad": False},
    ),  # fmt: skip
    ("index_select", "index_select", [(4, 3), 0, I([3, 0, 3])], {}),
    ("index_select-dim1", "index_select", [(2, 4, 3), -2, I([1, 1, 2, 0])], {}),
    ("index_select-0d-index", "index_select", [(4, 3), 1, I(2)], {}),
    ("index_select-0d", "index_select", [(), 0, I([0])], {}),
    ("index_select-empty", "index_select", [(4, 3), 0, I([], dtype=np.int64)], {}),
    ("masked_fill", "masked_fill", [(3, 4), MASK_2D, 1.5], {}),
    ("masked_fill-bcast", "masked_fill", [(3, 4), I([True, False, False, True])], {"value": -2.0}),
    (
        "masked_fill-grow",
        "masked_fill",
        [(4,), I([[True, False, False, True], [False] * 4])],
        {"value": 0.5},
    ),  # fmt: skip
    ("masked_fill-tensor-value", "masked_fill", [(3, 4), MASK_2D, ()], {}),
    ("masked_fill-0d", "masked_fill", [(), I(True), 3.0], {}),
    ("masked_fill-empty", "masked_fill", [(0, 4), I([True, False, False, True]), 1.0], {}),
]


@pytest.mark.parametrize("label,name,specs,opts", ROWS_OPS, ids=[r[0] for r in ROWS_OPS])
def test_index_ops(label, name, specs, opts):
    check_op(name, specs, **opts)


@pytest.mark.parametrize("index", [IDX, np.zeros((3, 0), np.int64)], ids=["big-src", "empty"])
def test_scatter_add_grads_with_src_larger_than_index(index):
    rng = np.random.default_rng(0)
    arrays = [("grad", rng.normal(size=(3, 4))), ("value", 1), ("const", index),
              ("grad", rng.normal(size=(3, 5)))]  # fmt: skip
    check_finite_differences(mg.scatter_add, arrays, {})


def test_getitem_function_and_repeated_index_grad(device):
    x = mg.ones(3, 2, device=device, requires_grad=True)
    idx = mg.tensor([0, 0, 0, 2], device=device)
    mg.getitem(x, idx).sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [[3, 3], [0, 0], [1, 1]])


def test_element_is_a_view(device):
    x = mg.zeros(2, 3, device=device)
    with mg.no_grad():
        x[1, 2].fill_(4.0)
    assert x.cpu().numpy()[1, 2] == 4.0


def test_full_slice_is_a_new_view(device):
    x = mg.zeros(2, 3, device=device)
    for y in (x[:], x[...], x[()]):
        assert y is not x and y.shape == x.shape
        y[0, 0] = 1.0
    assert x.cpu().numpy()[0, 0] == 1.0


def test_int_and_mask_indexing_make_no_host_syncs():
    x = mg.randn(5, 4, device="fakegpu", requires_grad=True)
    i = mg.tensor([0, 3, 3], device="fakegpu")
    mg.backend.fake_stats.reset()
    (x[i][:, 1:] * 2).sum().backward()
    x[[1, 2]].gather(1, i[None].expand(2, 3)).sum()
    assert mg.backend.fake_stats.syncs == 0


# ---------------------------------------------------------------------------- setitem


def test_setitem_matches_torch(device):
    cases = [
        (1, 5.0),
        ((slice(None), 0), [1.0, 2.0, 3.0]),
        ((slice(1, 3), slice(None, None, 2)), 7.0),
        (([0, 2, 2],), -1.0),
        ((Ellipsis, 1), 0.5),
        ((None, 0), 9.0),
        ((slice(None), [3, 1]), [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
    ]
    for idx, value in cases:
        x = mg.zeros(3, 4, device=device)
        t = torch.zeros(3, 4)
        x[idx] = value
        t[idx] = torch.tensor(value) if isinstance(value, list) else value
        np.testing.assert_array_equal(x.cpu().numpy(), t.numpy(), err_msg=str(idx))


def test_setitem_with_tensors(device):
    x = mg.arange(12.0, device=device).reshape(3, 4)
    t = torch.arange(12.0).reshape(3, 4)
    x[x > 5] = 0.0
    t[t > 5] = 0.0
    x[mg.tensor([0, 1], device=device), 1] = mg.tensor([-1.0, -2.0], device=device)
    t[torch.tensor([0, 1]), 1] = torch.tensor([-1.0, -2.0])
    x[:, mg.tensor(3, device=device)] = mg.tensor(4.0, device=device)
    t[:, torch.tensor(3)] = torch.tensor(4.0)
    x[np.array([2])] = np.array([1.0, 2.0, 3.0, 4.0])
    t[np.array([2])] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(x.cpu().numpy(), t.numpy())


def test_setitem_writes_through_views(device):
    x = mg.zeros(3, 4, device=device)
    row = x[1]
    row[2:] = 1.0
    assert x.cpu().numpy()[1].tolist() == [0, 0, 1, 1]


def test_setitem_on_grad_leaf_needs_no_grad():
    w = mg.zeros(3, requires_grad=True)
    with pytest.raises(AutogradError, match="setitem.*leaf.*no_grad"):
        w[0] = 1.0
    with mg.no_grad():
        w[0] = 1.0
    assert w.detach().numpy().tolist() == [1, 0, 0]
    assert w.requires_grad and w.is_leaf


def test_setitem_records_the_value_gradient():
    v = mg.tensor([1.0, 2.0], requires_grad=True)
    out = mg.zeros(3)
    out[1:] = v * 2
    assert out.requires_grad and out.grad_fn is not None
    (out * mg.tensor([5.0, 6.0, 7.0])).sum().backward()
    assert v.grad.numpy().tolist() == [12.0, 14.0]


def test_setitem_errors():
    x = mg.zeros(3, 4)
    with pytest.raises(ShapeError, match="setitem.*value"):
        x[0] = mg.ones(5)
    with pytest.raises(DeviceError, match="setitem.*fakegpu.*cpu"):
        x[0] = mg.ones(4, device="fakegpu")
    with pytest.raises(DeviceError, match="getitem.*fakegpu.*cpu"):
        x[mg.tensor([0], device="fakegpu")] = 1.0


# ---------------------------------------------------------------------------- errors


def test_getitem_errors():
    x = mg.zeros(3, 4)
    with pytest.raises(ValueError, match="step must be greater than zero.*flip"):
        x[::-1]
    with pytest.raises(ValueError, match="step"):
        x[:, ::0]
    with pytest.raises(IndexError, match="too many indices.*2 dims"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match=r"index 3 is out of range for dim 0 of size 3"):
        x[3]
    with pytest.raises(IndexError, match=r"index -5 .* dim 1 of size 4"):
        x[:, -5]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(DTypeError, match="getitem.*integer or bool.*float"):
        x[mg.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match=r"mask of shape \(2,\).*\(3, 4\)"):
        x[mg.tensor([True, False])]
    with pytest.raises(TypeError, match="getitem.*str"):
        x["a"]
    with pytest.raises(DeviceError, match="getitem.*fakegpu.*cpu"):
        x[mg.tensor([0], device="fakegpu")]


def test_index_op_errors():
    x = mg.zeros(3, 4)
    i = mg.tensor([[0, 1]])
    with pytest.raises(ShapeError, match=r"gather.*\(2,\).*\(3, 4\)"):
        mg.gather(x, 1, mg.tensor([0, 1]))
    with pytest.raises(ShapeError, match=r"gather.*\(1, 5\).*\(3, 4\).*dim 0"):
        mg.gather(x, 0, mg.zeros(1, 5, dtype=mg.int64))
    with pytest.raises(DTypeError, match="gather.*integer"):
        mg.gather(x, 1, mg.zeros(1, 2))
    with pytest.raises(IndexError, match="gather.*dim 2.*-2 <= dim <= 1"):
        mg.gather(x, 2, i)
    with pytest.raises(DTypeError, match="scatter_add.*float64.*float32"):
        mg.scatter_add(x, 1, i, mg.ones(1, 2, dtype=mg.float64))
    with pytest.raises(ShapeError, match=r"scatter_add.*src shape \(1, 1\)"):
        mg.scatter_add(x, 1, i, mg.ones(1, 1))
    with pytest.raises(ShapeError, match=r"index_select.*1-d.*\(1, 2\)"):
        mg.index_select(x, 0, i)
    with pytest.raises(DTypeError, match="masked_fill.*bool"):
        mg.masked_fill(x, mg.ones(3, 4), 1.0)
    with pytest.raises(ShapeError, match=r"masked_fill.*\(2,\).*\(3, 4\)"):
        mg.masked_fill(x, mg.ones(2).bool(), 1.0)
    with pytest.raises(ShapeError, match=r"masked_fill.*0-d.*\(2,\)"):
        mg.masked_fill(x, mg.ones(3, 4).bool(), mg.ones(2))


def test_index_passed_by_keyword_is_device_checked():
    x = mg.zeros(3, 4)
    idx = mg.tensor([[0, 1]], device="fakegpu")
    with pytest.raises(DeviceError, match="gather.*fakegpu.*cpu"):
        mg.gather(x, dim=1, index=idx)
    with pytest.raises(DeviceError, match="index_select.*fakegpu.*cpu"):
        mg.index_select(x, dim=0, index=idx[0])
    with pytest.raises(DeviceError, match="scatter_add.*fakegpu.*cpu"):
        mg.scatter_add(x, dim=1, index=idx, src=mg.ones(1, 2))
    with pytest.raises(DeviceError, match="masked_fill.*fakegpu.*cpu"):
        x.masked_fill(mask=mg.ones(3, 4, device="fakegpu").bool(), value=1.0)
