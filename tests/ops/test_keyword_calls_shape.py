"""Reductions, shape ops, indexing, sorting and ``*_like`` factories called with PyTorch's
keyword names only (``torch.sum(input=x, dim=1)``, ``torch.split(tensor=x,
split_size_or_sections=2)``, ``torch.max(x, other=y)``), against the same call in PyTorch.

The signatures are checked for every function in ``tests/test_torch_keywords.py``; here the
keyword calls are run, so that a renamed argument that the body still reads by its old name
fails."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
X = _RNG.uniform(-2.0, 2.0, (3, 4))
Y = _RNG.uniform(-2.0, 2.0, (3, 4))
C = _RNG.uniform(-2.0, 2.0, (2, 3, 4))  # a cube for the dim-moving ops
M = _RNG.uniform(-2.0, 2.0, (4, 4))  # a square matrix
V = _RNG.uniform(-2.0, 2.0, (5,))
NAN = np.array([[1.0, np.nan, 3.0, 0.5], [np.nan, 2.0, -1.0, 4.0]])
I = np.array([[3, 1, 2], [0, 0, 1]])  # noqa: E741 - an integer input
COUNTS = np.array([1, 4, 1, 0, 4])  # repeats, for mode and bincount

# (namespace, function, tensors by keyword, other keywords); every argument by keyword
CASES = [
    # reductions
    ("", "sum", dict(input=X), dict(dim=1, keepdim=True)),
    ("", "sum", dict(input=I), dict(dim=(0, 1), dtype=torch.float64)),
    ("", "mean", dict(input=X), dict(dim=0)),
    ("", "var", dict(input=X), dict(dim=1, correction=0, keepdim=True)),
    ("", "std", dict(input=X), dict(dim=0, unbiased=False)),
    ("", "prod", dict(input=X), dict(dim=1, keepdim=True)),
    ("", "amax", dict(input=X), dict(dim=(0, 1))),
    ("", "amin", dict(input=X), dict(dim=1, keepdim=True)),
    ("", "logsumexp", dict(input=X), dict(dim=1, keepdim=False)),
    ("special", "logsumexp", dict(input=X), dict(dim=0)),
    ("", "norm", dict(input=X), dict(p=1, dim=1, keepdim=True)),
    ("", "nansum", dict(input=NAN), dict(dim=1)),
    ("", "nanmean", dict(input=NAN), dict(dim=1, keepdim=True)),
    ("", "var_mean", dict(input=X), dict(dim=1, correction=0)),
    ("", "std_mean", dict(input=X), dict(dim=0, keepdim=True)),
    ("", "aminmax", dict(input=X), dict(dim=1)),
    # scans
    ("", "cumsum", dict(input=X), dict(dim=1)),
    ("", "cumsum", dict(input=I), dict(dim=0, dtype=torch.float32)),
    ("", "cumprod", dict(input=X), dict(dim=0)),
    ("", "logcumsumexp", dict(input=X), dict(dim=1)),
    ("", "cummax", dict(input=X), dict(dim=1)),
    ("", "cummin", dict(input=X), dict(dim=0)),
    # shapes
    ("", "reshape", dict(input=X), dict(shape=(2, 6))),
    ("", "permute", dict(input=C), dict(dims=(2, 0, 1))),
    ("", "flatten", dict(input=C), dict(start_dim=1, end_dim=2)),
    ("", "unflatten", dict(input=X), dict(dim=1, sizes=(2, 2))),
    ("", "squeeze", dict(input=X[:, None]), dict(dim=1)),
    ("", "unsqueeze", dict(input=X), dict(dim=-1)),
    ("", "transpose", dict(input=C), dict(dim0=0, dim1=2)),
    ("", "t", dict(input=X), {}),
    ("", "movedim", dict(input=C), dict(source=0, destination=-1)),
    ("", "moveaxis", dict(input=C), dict(source=(0, 1), destination=(1, 0))),
    ("", "swapdims", dict(input=C), dict(dim0=0, dim1=1)),
    ("", "swapaxes", dict(input=C), dict(axis0=2, axis1=0)),
    ("", "narrow", dict(input=X), dict(dim=1, start=1, length=2)),
    ("", "split", dict(tensor=X), dict(split_size_or_sections=3, dim=1)),
    ("", "split", dict(tensor=X), dict(split_size_or_sections=[1, 2])),
    ("", "chunk", dict(input=X), dict(chunks=2, dim=1)),
    ("", "unbind", dict(input=X), dict(dim=1)),
    ("", "tensor_split", dict(input=X), dict(sections=3, dim=1)),
    ("", "tensor_split", dict(input=X), dict(indices=[1, 3], dim=1)),
    ("", "broadcast_to", dict(input=V), dict(size=(2, 5))),
    ("", "tile", dict(input=X), dict(dims=(2,))),
    ("", "as_strided", dict(input=V), dict(size=(3, 2), stride=(1, 1), storage_offset=1)),
    # rearranging
    ("", "flip", dict(input=X), dict(dims=(0, 1))),
    ("", "fliplr", dict(input=X), {}),
    ("", "flipud", dict(input=X), {}),
    ("", "roll", dict(input=X), dict(shifts=(1, -1), dims=(0, 1))),
    ("", "rot90", dict(input=X), dict(k=3, dims=(1, 0))),
    ("", "tril", dict(input=M), dict(diagonal=-1)),
    ("", "triu", dict(input=M), dict(diagonal=1)),
    ("", "diag", dict(input=M), dict(diagonal=1)),
    ("", "diag_embed", dict(input=X), dict(offset=-1, dim1=0, dim2=2)),
    ("", "diagflat", dict(input=V), dict(offset=2)),
    ("", "trace", dict(input=M), {}),
    ("nn.functional", "pad", dict(input=C), dict(pad=(1, 2), mode="reflect")),
    ("nn.functional", "pad", dict(input=X), dict(pad=(1, 1, 0, 2), value=-3.0)),
    # sorting and order statistics
    ("", "sort", dict(input=X), dict(dim=0, descending=True, stable=True)),
    ("", "msort", dict(input=X), {}),
    ("", "topk", dict(input=X), dict(k=2, dim=1, largest=False, sorted=True)),
    ("", "kthvalue", dict(input=X), dict(k=2, dim=0, keepdim=True)),
    ("", "median", dict(input=X), dict(dim=1, keepdim=False)),
    ("", "nanmedian", dict(input=NAN), dict(dim=1)),
    ("", "mode", dict(input=COUNTS), dict(dim=0)),
    ("", "argwhere", dict(input=I), {}),
]


def _fn(lib, space, name):
    mod = lib
    for part in filter(None, space.split(".")):
        mod = getattr(mod, part)
    return getattr(mod, name)


def _args(lib, kw):
    """PyTorch's dtypes as manygrad's for manygrad's call."""
    if lib is mg:
        return {k: getattr(mg, str(v).split(".")[1]) if isinstance(v, torch.dtype) else v
                for k, v in kw.items()}  # fmt: skip
    return kw


def _check(got, want):
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want)
        if hasattr(want, "_fields"):  # a named tuple: (values, indices), (min, max)
            assert got._fields == want._fields
        for g, w in zip(got, want):
            _check(g, w)
        return
    assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "space, name, tensors, kw",
    CASES,
    ids=[f"{s or 'torch'}.{n}-{'-'.join([*t, *k])}" for s, n, t, k in CASES],
)
def test_keyword_call_matches_pytorch(space, name, tensors, kw):
    got = _fn(mg, space, name)(**{k: mg.tensor(v) for k, v in tensors.items()}, **_args(mg, kw))
    want = _fn(torch, space, name)(**{k: torch.tensor(v) for k, v in tensors.items()}, **kw)
    _check(got, want)


# NOTE: these wrap themselves in backend.on_tensor_device, whose wrapper takes the first
# argument positionally: the input goes first, every other argument by keyword
FIRST_POSITIONAL = [
    ("max", X, dict(dim=1, keepdim=True)),
    ("min", X, dict(dim=0)),
    ("argmax", X, dict(dim=1, keepdim=True)),
    ("argmin", X, dict(dim=0)),
    ("all", X > 0, dict(dim=1)),
    ("any", X > 0, dict(dim=0, keepdim=True)),
    ("gather", X, dict(dim=1, index=np.array([[0, 3], [1, 1], [2, 0]]))),
    ("index_select", X, dict(dim=1, index=np.array([3, 0]))),
    ("scatter_add", X, dict(dim=0, index=np.array([[2, 0, 1, 0]]), src=Y)),
    ("masked_fill", X, dict(mask=X > 0.5, value=-1.0)),
    ("diagonal", C, dict(offset=1, dim1=2, dim2=1)),
    ("argsort", X, dict(dim=1, descending=True, stable=True)),
    ("quantile", X, dict(q=0.3, dim=1, keepdim=True, interpolation="midpoint")),
    ("nanquantile", NAN, dict(q=0.5, dim=1)),
    ("nonzero", X > 0, dict(as_tuple=False)),
    ("count_nonzero", X > 0, dict(dim=1)),
    ("bincount", COUNTS, dict(weights=V, minlength=7)),
    ("histc", X, dict(bins=5, min=-1, max=1)),
    ("unique", I, dict(sorted=True, return_inverse=True, return_counts=True)),
]


@pytest.mark.parametrize("name, a, kw", FIRST_POSITIONAL, ids=[c[0] for c in FIRST_POSITIONAL])
def test_other_arguments_by_keyword(name, a, kw):
    def lib_kw(lib):
        return {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}

    got = getattr(mg, name)(mg.tensor(a), **lib_kw(mg))
    want = getattr(torch, name)(torch.tensor(a), **lib_kw(torch))
    _check(got, want)


def test_wrapped_functions_take_input_by_keyword():
    # NOTE: these run under backend.on_tensor_device, which finds the tensor by keyword too
    for name, kw in [("max", dict(dim=1)), ("argmax", dict(dim=0)), ("any", {}),
                     ("argsort", dict(dim=1)), ("count_nonzero", {}), ("nonzero", {})]:  # fmt: skip
        _check(getattr(mg, name)(input=mg.tensor(X), **kw),
               getattr(torch, name)(input=torch.tensor(X), **kw))  # fmt: skip


def test_max_and_min_with_other_are_elementwise():
    x, y, tx, ty = mg.tensor(X), mg.tensor(Y), torch.tensor(X), torch.tensor(Y)
    _check(mg.max(x, other=y), torch.max(tx, other=ty))
    _check(mg.min(x, other=y), torch.min(tx, other=ty))
    _check(mg.max(x, y), torch.max(tx, ty))  # the positional form is unchanged
    with pytest.raises(TypeError, match="both dim and other"):
        mg.max(x, 1, other=y)
    with pytest.raises(TypeError, match="clamp"):
        mg.min(x, other=0.5)  # NOTE: PyTorch refuses a number too


def test_max_with_other_keeps_gradients():
    x, y = mg.tensor(X, requires_grad=True), mg.tensor(Y, requires_grad=True)
    tx, ty = torch.tensor(X, requires_grad=True), torch.tensor(Y, requires_grad=True)
    (mg.max(x, other=y) * mg.tensor(M[:3])).sum().backward()
    (torch.max(tx, other=ty) * torch.tensor(M[:3])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy())


def test_shape_given_both_ways_is_refused():
    with pytest.raises(TypeError, match="both positionally and as shape="):
        mg.reshape(mg.tensor(X), 2, 6, shape=(12,))
    with pytest.raises(TypeError, match="both positionally and as dims="):
        mg.permute(mg.tensor(C), 1, 0, 2, dims=(2, 1, 0))


def test_gather_sparse_grad_gives_a_sparse_gradient():
    index = np.array([[0, 0, 3], [2, 1, 1], [3, 3, 0]])
    x, tx = mg.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    w = _RNG.uniform(-1.0, 1.0, index.shape)
    (mg.gather(x, dim=1, index=mg.tensor(index), sparse_grad=True) * mg.tensor(w)).sum().backward()
    (torch.gather(tx, 1, torch.tensor(index), sparse_grad=True) * torch.tensor(w)).sum().backward()
    assert x.grad.is_sparse and tx.grad.is_sparse
    np.testing.assert_allclose(x.grad.to_dense().numpy(), tx.grad.to_dense().numpy())
    x.grad = None
    (mg.gather(x, 1, mg.tensor(index)) * mg.tensor(w)).sum().backward()  # dense by default
    assert not x.grad.is_sparse
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.to_dense().numpy())


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "empty_like", "rand_like"])
def test_like_factories_by_keyword(name):
    got = getattr(mg, name)(input=mg.tensor(C), dtype=mg.float16, requires_grad=False)
    want = getattr(torch, name)(input=torch.tensor(C), dtype=torch.float16, requires_grad=False)
    assert tuple(got.shape) == tuple(want.shape) and got.dtype is mg.float16
    if name != "empty_like" and name != "rand_like":
        _check(got, want)


def test_full_like_and_queries_by_keyword():
    _check(
        mg.full_like(input=mg.tensor(X), fill_value=2.5),
        torch.full_like(input=torch.tensor(X), fill_value=2.5),
    )
    assert mg.numel(input=mg.tensor(C)) == torch.numel(input=torch.tensor(C)) == 24
    assert mg.is_tensor(obj=mg.tensor(X)) and not mg.is_tensor(obj=X)


def test_random_like_factories_take_a_generator():
    x = mg.tensor(X)
    a = mg.randn_like(input=x, generator=mg.Generator().manual_seed(3))
    b = mg.randn_like(x, generator=mg.Generator().manual_seed(3))
    c = mg.rand_like(input=x, generator=mg.Generator().manual_seed(3))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert tuple(c.shape) == (3, 4) and 0 <= c.min().item() and c.max().item() < 1


def test_like_factories_take_a_memory_format():
    x = mg.tensor(_RNG.uniform(size=(2, 3, 4, 5)))
    y = mg.zeros_like(x, memory_format=mg.channels_last, requires_grad=True)
    assert y.is_contiguous(memory_format=mg.channels_last) and y.is_leaf and y.requires_grad
    z = mg.ones_like(input=x, memory_format=mg.preserve_format)  # as torch.optim calls it
    np.testing.assert_array_equal(z.numpy(), np.ones((2, 3, 4, 5)))


def test_positional_calls_are_unchanged():
    x, tx = mg.tensor(X), torch.tensor(X)
    pairs = [
        (mg.sum(x, 1, True), torch.sum(tx, 1, True)),
        (mg.reshape(x, 6, 2), torch.reshape(tx, (6, 2))),
        (mg.reshape(x, (2, 6)), torch.reshape(tx, (2, 6))),
        (mg.permute(mg.tensor(C), 1, 2, 0), torch.permute(torch.tensor(C), (1, 2, 0))),
        (mg.swapdims(x, 0, 1), torch.swapdims(tx, 0, 1)),
        (mg.split(x, 2, 1), torch.split(tx, 2, 1)),
        (mg.topk(x, 2, 0), torch.topk(tx, 2, 0)),
        (mg.max(x, 1), torch.max(tx, 1)),
        (mg.zeros_like(x, mg.float32), torch.zeros_like(tx, dtype=torch.float32)),
    ]
    for got, want in pairs:
        _check(got, want)
    assert mg.reshape(mg.tensor([5.0])).shape == ()  # NOTE: no sizes: a 0-d tensor, as before


# (call, positional args, keyword): each size/dims argument goes through one reader
_ONE_FORM = [
    ("reshape", (3, 4), "shape"),
    ("permute", (1, 0), "dims"),
    ("view", (4, 3), "size"),
    ("expand", (2, 3, 4), "size"),
    ("flip", (0, 1), "dims"),
    ("repeat", (2, 1), "repeats"),
    ("new_zeros", (2, 5), "size"),
    ("new_ones", (2, 5), "size"),
    ("sum_to_size", (1, 4), "size"),
]


@pytest.mark.parametrize("name, args, key", _ONE_FORM, ids=[c[0] for c in _ONE_FORM])
def test_size_arguments_take_one_form(name, args, key):
    x, tx = mg.tensor(X), torch.tensor(X)
    want = getattr(tx, name)(**{key: args})
    for got in (getattr(x, name)(*args), getattr(x, name)(args), getattr(x, name)(**{key: args})):
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    with pytest.raises(TypeError, match=f"both positionally and as {key}="):
        getattr(x, name)(*args, **{key: args})


def test_resize_and_creation_take_one_size_form():
    t = mg.zeros(2, 3)
    assert tuple(t.resize_(size=(3, 2)).shape) == (3, 2)
    with pytest.raises(TypeError, match="both positionally and as size="):
        t.resize_(6, size=(6,))
    with pytest.raises(TypeError, match="one of size, dtype"):
        mg.tensor(X).view(size=(12,), dtype=mg.int32)
