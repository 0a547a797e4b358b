"""mg.segment_reduce against torch.segment_reduce: values and gradients, on the device
matrix, including empty segments, ``initial``, ties and NaNs."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")
REDUCE = ["sum", "mean", "max", "min", "prod"]
L1 = np.array([2, 0, 3, 1])  # 6 rows along axis 0, one segment empty
O1 = np.array([1, 1, 4, 5])  # offsets not starting at 0 nor ending at the last row
L2 = np.array([[3, 0, 4], [1, 5, 1]])  # per row of axis 0, segments along axis 1
O2 = np.array([[0, 3, 3, 7], [0, 1, 6, 7]])
# (shape, keyword arguments with index arrays as NumPy)
CASES = [
    ((6, 3), {"lengths": L1}),
    ((6,), {"lengths": L1, "initial": 0.5}),
    ((6, 2), {"offsets": O1}),
    ((2, 7, 3), {"lengths": L2, "axis": 1}),
    ((2, 7), {"offsets": O2, "axis": -1, "initial": -1.5}),
    ((5, 2), {"lengths": np.array([1, 3]), "unsafe": True}),  # the last row in no segment
]


def _call(lib, x, reduce, kw):
    kw = {k: lib.tensor(v, device=x.device) if isinstance(v, np.ndarray) else v
          for k, v in kw.items()}  # fmt: skip
    return lib.segment_reduce(x, reduce, **kw)


@pytest.mark.parametrize("reduce", REDUCE)
@pytest.mark.parametrize("shape,kw", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_segment_reduce_matches_torch(reduce, shape, kw):
    # NOTE: an empty segment's NaN / inf (mean, max, min) leaves finite differences undefined
    lens = kw["lengths"] if "lengths" in kw else np.diff(kw["offsets"])
    fd = reduce in ("sum", "prod") or kw.get("initial") is not None or bool(lens.all())
    check_op(lambda x: _call(mg, x, reduce, kw), [shape],
             torch_fn=lambda x: _call(torch, x, reduce, kw), fd=fd)  # fmt: skip


# ties, zeros and NaNs: PyTorch's rules for sharing gradients (no finite differences here)
TIES = np.array([1.0, 3, 3, 0, 2, 2, 0, 0, np.nan, 5, -1, np.nan, np.nan])
TIE_LENGTHS = np.array([3, 0, 3, 2, 2, 3])
TIE_GRAD = np.array([2.0, 5, -3, 1, -1, 4])  # a negative one: PyTorch does not split it


@pytest.mark.parametrize("reduce", REDUCE)
@pytest.mark.parametrize("initial", [None, 2.0])
def test_ties_zeros_and_nans_as_torch(device, reduce, initial):
    x = mg.tensor(TIES, device=device, requires_grad=True)
    tx = torch.tensor(TIES, requires_grad=True)
    kw = {"lengths": TIE_LENGTHS, "initial": initial}
    y, ty = _call(mg, x, reduce, kw), _call(torch, tx, reduce, kw)
    y.backward(mg.tensor(TIE_GRAD, device=device))
    ty.backward(torch.tensor(TIE_GRAD))
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.cpu().numpy(), tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("reduce", REDUCE)
def test_low_precision_dtypes(device, dtype, reduce):
    data = np.random.default_rng(1).uniform(0.5, 1.5, (9, 4))
    x = mg.tensor(data, device=device).to(getattr(mg, dtype))
    tx = torch.tensor(data).to(getattr(torch, dtype))
    kw = {"lengths": np.array([4, 0, 5]), "initial": 0.25}
    y, ty = _call(mg, x, reduce, kw), _call(torch, tx, reduce, kw)
    assert y.dtype == getattr(mg, dtype) and tuple(y.shape) == tuple(ty.shape)
    tol = {"float16": 2e-3, "bfloat16": 2e-2, "float32": 1e-6}[dtype]
    np.testing.assert_allclose(y.float().cpu().numpy(), ty.float().numpy(), rtol=tol, atol=tol)


def test_no_rows_and_lengths_of_int32(device):
    for reduce in REDUCE:
        got = _call(mg, mg.zeros(0, 3, device=device), reduce, {"lengths": np.array([0, 0])})
        want = _call(torch, torch.zeros(0, 3), reduce, {"lengths": np.array([0, 0])})
        np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())
    x = np.arange(6.0).reshape(3, 2)
    got = mg.segment_reduce(mg.tensor(x, device=device), "sum",
                            lengths=mg.tensor([1, 2], dtype=mg.int32, device=device))  # fmt: skip
    np.testing.assert_array_equal(got.cpu().numpy(), [[0, 1], [6, 8]])


def _raises(kind, match, data, reduce, **kw):
    for lib in (mg, torch):
        with pytest.raises(kind, match=match if lib is mg else None):
            _call(lib, lib.tensor(data), reduce, kw)


def test_bad_arguments_raise_as_torch():
    d = np.arange(12.0).reshape(3, 4)
    _raises(RuntimeError, "reduce must be one of", d, "avg", lengths=np.array([3]))
    _raises(RuntimeError, "either lengths or offsets", d, "sum")
    _raises(RuntimeError, "indices", d, "sum", indices=np.array([0, 1, 1]))
    _raises(RuntimeError, "sum to data.size", d, "sum", lengths=np.array([1, 1]))
    _raises(RuntimeError, "negative", d, "sum", lengths=np.array([4, -1]))
    _raises(RuntimeError, "last dimension of lengths", d, "sum", lengths=np.array([1, 3]), axis=1)
    _raises(RuntimeError, "non-decreasing", d, "sum", offsets=np.array([0, 2, 1, 3]))
    _raises(NotImplementedError, "floating point", d.astype(np.int64), "sum", lengths=np.array([3]))
    _raises(NotImplementedError, "int32 or int64", d, "sum", lengths=np.array([3.0]))
    _raises(IndexError, "out of range", d, "sum", lengths=np.array([3]), axis=2)
    with pytest.raises(TypeError):
        mg.segment_reduce(mg.tensor(d), "sum", mg.tensor([3]))  # lengths is keyword-only


def test_second_derivative_is_refused_as_torch():
    for lib in (mg, torch):
        x = lib.tensor(np.arange(1.0, 7.0).reshape(3, 2), requires_grad=True)
        y = lib.segment_reduce(x, "prod", lengths=lib.tensor([1, 2]))
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        with pytest.raises(RuntimeError):
            lib.autograd.grad((g * x).sum(), x)
