"""PyTorch parity, compared with PyTorch: the exception types of bad arguments (dtypes an op
does not take, dims out of range, bad sizes and options), the indices ``topk``,
``kthvalue`` and ``mode`` give among equal values (PyTorch's CPU order), reductions over
empty dims, the ``grad_fn`` names of 16-bit products with a number, and ``torch.fx``
(functions kept as module attributes, ``experimental.optimization.fuse``)."""

import textwrap

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad import compat
from parity_helpers import _both_raise, _np

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::RuntimeWarning", "ignore::DeprecationWarning"
)


def _on(lib, device):
    """Keyword arguments that put a new tensor on ``device`` (manygrad only)."""
    return {} if lib is torch else {"device": device}


def _t(lib, device, data, dtype=None):
    return lib.tensor(
        data, dtype=None if dtype is None else getattr(lib, dtype), **_on(lib, device)
    )


def _x(lib, device):
    return lib.arange(6.0, **_on(lib, device)).reshape(2, 3)


# ---------------------------------------------------------------------------- error types

# (case, fn(lib, lib.nn.functional, device), PyTorch's exception type): both libraries must raise it
ERRORS = [
    ("gelu approximate", lambda lb, nnf, d: nnf.gelu(_x(lb, d), approximate="bad"), RuntimeError),
    ("GELU approximate", lambda lb, nnf, d: lb.nn.GELU("bad")(_x(lb, d)), RuntimeError),
    ("flip int dims", lambda lb, nnf, d: lb.flip(_x(lb, d), 1), TypeError),
    ("x.flip(dims=int)", lambda lb, nnf, d: _x(lb, d).flip(dims=1), TypeError),
    ("frac int", lambda lb, nnf, d: lb.frac(_t(lb, d, [1, -2])), NotImplementedError),
    ("x.frac uint8", lambda lb, nnf, d: _t(lb, d, [1, 2], "uint8").frac(), NotImplementedError),
    ("frac bool", lambda lb, nnf, d: lb.frac(_t(lb, d, [True])), NotImplementedError),
    ("floor bool", lambda lb, nnf, d: lb.floor(_t(lb, d, [True])), NotImplementedError),
    ("ceil bool", lambda lb, nnf, d: lb.ceil(_t(lb, d, [True])), NotImplementedError),
    ("trunc bool", lambda lb, nnf, d: lb.trunc(_t(lb, d, [True])), NotImplementedError),
    ("round bool", lambda lb, nnf, d: lb.round(_t(lb, d, [True])), NotImplementedError),
    ("relu bool", lambda lb, nnf, d: nnf.relu(_t(lb, d, [True, False])), RuntimeError),
    ("positive bool", lambda lb, nnf, d: lb.positive(_t(lb, d, [True])), RuntimeError),
    ("std int", lambda lb, nnf, d: lb.std(_t(lb, d, [1, 2, 4])), RuntimeError),
    ("var bool", lambda lb, nnf, d: lb.var(_t(lb, d, [True, False]), 0), RuntimeError),
    ("argmax bool", lambda lb, nnf, d: lb.argmax(_t(lb, d, [True, False])), RuntimeError),
    ("argmin bool dim", lambda lb, nnf, d: lb.argmin(_t(lb, d, [[True, False]]), 1), RuntimeError),
    ("nanmean int", lambda lb, nnf, d: lb.nanmean(_t(lb, d, [1, 2])), RuntimeError),
    ("median bool", lambda lb, nnf, d: lb.median(_t(lb, d, [[True, False]]), 1), NotImplementedError),
    ("softmax int", lambda lb, nnf, d: nnf.softmax(_t(lb, d, [[1, 2]]), 1), NotImplementedError),
    ("log_softmax bool", lambda lb, nnf, d: lb.log_softmax(_t(lb, d, [True]), 0), NotImplementedError),
    ("logcumsumexp int", lambda lb, nnf, d: lb.logcumsumexp(_t(lb, d, [1, 2]), 0), NotImplementedError),
    ("vector_norm int", lambda lb, nnf, d: lb.linalg.vector_norm(_t(lb, d, [3, 4])), RuntimeError),
    ("norm bool", lambda lb, nnf, d: lb.norm(_t(lb, d, [True, False])), RuntimeError),
    ("normalize int", lambda lb, nnf, d: nnf.normalize(_t(lb, d, [[3, 4]])), RuntimeError),
    ("norm p=bad", lambda lb, nnf, d: lb.norm(_x(lb, d), p="bad"), RuntimeError),
    ("sum dim out of range", lambda lb, nnf, d: lb.sum(_x(lb, d), 5), IndexError),
    ("amax dim -3", lambda lb, nnf, d: lb.amax(_x(lb, d), -3), IndexError),
    ("all dim 2", lambda lb, nnf, d: lb.all(_x(lb, d), 2), IndexError),
    ("std_mean dim 2", lambda lb, nnf, d: lb.std_mean(_x(lb, d), 2), IndexError),
    ("cumsum dim 2", lambda lb, nnf, d: lb.cumsum(_x(lb, d), 2), IndexError),
    ("softmax dim 2", lambda lb, nnf, d: lb.softmax(_x(lb, d), 2), IndexError),
    ("softmax int dim 2", lambda lb, nnf, d: lb.softmax(_t(lb, d, [[1]]), 2), IndexError),
    ("norm dim 5", lambda lb, nnf, d: lb.norm(_x(lb, d), 2, 5), IndexError),
    ("normalize dim 5", lambda lb, nnf, d: nnf.normalize(_x(lb, d), dim=5), IndexError),
    ("sum of 0-d dim 1", lambda lb, nnf, d: lb.sum(_t(lb, d, 3.0), 1), IndexError),
    ("sum repeated dim", lambda lb, nnf, d: lb.sum(_x(lb, d), (0, 0)), RuntimeError),
    ("var repeated dim", lambda lb, nnf, d: lb.var(_x(lb, d), (1, -1)), RuntimeError),
    ("index_select 2-d index", lambda lb, nnf, d: lb.index_select(_x(lb, d), 1, _t(lb, d, [[1]])),
     IndexError),
    ("split 0", lambda lb, nnf, d: lb.split(_x(lb, d), 0), RuntimeError),
    ("split -1", lambda lb, nnf, d: _x(lb, d).split(-1), RuntimeError),
    ("chunk 0", lambda lb, nnf, d: lb.chunk(_x(lb, d), 0), RuntimeError),
    ("tensor_split 0", lambda lb, nnf, d: lb.tensor_split(_x(lb, d), 0), RuntimeError),
    ("zeros negative", lambda lb, nnf, d: lb.zeros(2, -1, **_on(lb, d)), RuntimeError),
    ("ones negative", lambda lb, nnf, d: lb.ones(-3, **_on(lb, d)), RuntimeError),
    ("empty negative", lambda lb, nnf, d: lb.empty((-1,), **_on(lb, d)), RuntimeError),
    ("full negative", lambda lb, nnf, d: lb.full((-1,), 2.0, **_on(lb, d)), RuntimeError),
    ("randn negative", lambda lb, nnf, d: lb.randn(2, -1, **_on(lb, d)), RuntimeError),
    ("new_zeros negative", lambda lb, nnf, d: _x(lb, d).new_zeros((-1,)), RuntimeError),
    ("eye negative", lambda lb, nnf, d: lb.eye(-1, **_on(lb, d)), RuntimeError),
    ("linspace negative", lambda lb, nnf, d: lb.linspace(0, 1, -1, **_on(lb, d)), RuntimeError),
    ("arange step 0", lambda lb, nnf, d: lb.arange(0, 5, 0, **_on(lb, d)), RuntimeError),
    ("arange step sign", lambda lb, nnf, d: lb.arange(0, 5, -1, **_on(lb, d)), RuntimeError),
    ("randperm negative", lambda lb, nnf, d: lb.randperm(-1, **_on(lb, d)), RuntimeError),
    ("polar ints", lambda lb, nnf, d: lb.polar(_t(lb, d, [1]), _t(lb, d, [2])), RuntimeError),
    ("polar number", lambda lb, nnf, d: lb.polar(_x(lb, d), 2.0), TypeError),
    ("complex number", lambda lb, nnf, d: lb.complex(_x(lb, d), 1.0), TypeError),
    ("label_smoothing 1.5", lambda lb, nnf, d: nnf.cross_entropy(
        _x(lb, d), _t(lb, d, [0, 1]), label_smoothing=1.5), RuntimeError),
    ("smooth_l1 beta < 0", lambda lb, nnf, d: nnf.smooth_l1_loss(_x(lb, d), _x(lb, d), beta=-1.0),
     RuntimeError),
    ("huber delta 0", lambda lb, nnf, d: nnf.huber_loss(_x(lb, d), _x(lb, d), delta=0.0),
     RuntimeError),
    ("celu alpha 0", lambda lb, nnf, d: nnf.celu(_x(lb, d), alpha=0.0), RuntimeError),
    ("softshrink lambd < 0", lambda lb, nnf, d: nnf.softshrink(_x(lb, d), -1.0), RuntimeError),
    ("max_pool padding", lambda lb, nnf, d: nnf.max_pool2d(_x(lb, d)[None], 2, padding=2),
     RuntimeError),
    ("avg_pool kernel 0", lambda lb, nnf, d: nnf.avg_pool2d(_x(lb, d)[None], 0), RuntimeError),
]  # fmt: skip


@pytest.mark.parametrize("case", [c[0] for c in ERRORS])
def test_bad_arguments_raise_pytorchs_exception(device, case):
    fn, exc = {c[0]: c[1:] for c in ERRORS}[case]
    err = _both_raise(
        lambda: fn(torch, torch.nn.functional, device),
        lambda: fn(mg, mg.nn.functional, device),
        exc,
    )
    assert str(err)  # a message, naming the op


# PyTorch checks these indices on the CPU only (its CUDA kernels assert on the device)
CPU_INDEX_ERRORS = [
    ("gather -1", lambda lb, x: lb.gather(x, 1, lb.tensor([[-1]])), RuntimeError),
    ("gather 3", lambda lb, x: lb.gather(x, 1, lb.tensor([[3]])), RuntimeError),
    ("index_select -1", lambda lb, x: lb.index_select(x, 1, lb.tensor([-1])), RuntimeError),
    ("index_select 3", lambda lb, x: x.index_select(1, lb.tensor([3])), RuntimeError),
    ("scatter -1", lambda lb, x: lb.scatter(x, 1, lb.tensor([[-1]]), 1.0), RuntimeError),
    ("scatter_ -1", lambda lb, x: x.scatter_(1, lb.tensor([[-1]]), 1.0), RuntimeError),
    ("scatter_add -1", lambda lb, x: lb.scatter_add(x, 1, lb.tensor([[-1]]), lb.ones(1, 1)),
     RuntimeError),
    ("scatter_reduce 3", lambda lb, x: lb.scatter_reduce(
        x, 1, lb.tensor([[3]]), lb.ones(1, 1), "sum"), RuntimeError),
    ("index_add -1", lambda lb, x: lb.index_add(x, 0, lb.tensor([-1]), lb.ones(1, 3)),
     RuntimeError),
    ("index_copy -1", lambda lb, x: lb.index_copy(x, 0, lb.tensor([-1]), lb.ones(1, 3)),
     IndexError),
    ("index_copy 2", lambda lb, x: lb.index_copy(x, 0, lb.tensor([2]), lb.ones(1, 3)),
     IndexError),
    ("embedding -1", lambda lb, x: lb.nn.functional.embedding(lb.tensor([-1]), x), IndexError),
    ("embedding 2", lambda lb, x: lb.nn.functional.embedding(lb.tensor([2]), x), IndexError),
]  # fmt: skip


@pytest.mark.parametrize("case", [c[0] for c in CPU_INDEX_ERRORS])
def test_indices_out_of_range_raise_on_the_cpu(case):
    fn, exc = {c[0]: c[1:] for c in CPU_INDEX_ERRORS}[case]
    _both_raise(lambda: fn(torch, _x(torch, None)), lambda: fn(mg, _x(mg, "cpu")), exc)


def test_take_along_dim_wraps_indices_along_a_dim_as_pytorch(device):
    x = np.arange(12.0, dtype="float32").reshape(3, 4)
    for idx, dim in (([[-9, -5, -4, -1, 0, 4, 7, 8, 100]], 1), ([[-3], [3], [5]], 0)):
        want = torch.take_along_dim(torch.tensor(x), torch.tensor(idx), dim)
        got = mg.take_along_dim(mg.tensor(x, device=device), _t(mg, device, idx), dim)
        np.testing.assert_array_equal(_np(got), want.numpy())
    for idx in ([-1], [12]):  # NOTE: flattened (dim None), the indices are checked
        _both_raise(
            lambda i=idx: torch.take_along_dim(torch.tensor(x), torch.tensor(i)),
            lambda i=idx: mg.take_along_dim(mg.tensor(x), mg.tensor(i)),
        )


def test_index_fill_takes_negative_indices_as_pytorch(device):
    want = torch.index_fill(_x(torch, None), 0, torch.tensor([-1]), 1.0)
    got = mg.index_fill(_x(mg, device), 0, _t(mg, device, [-1]), 1.0)
    np.testing.assert_array_equal(_np(got), _np(want))


def test_flip_method_takes_ints_as_pytorch(device):
    for args in ((1,), (0, 1), ([1],), ((0,),)):
        np.testing.assert_array_equal(
            _np(_x(mg, device).flip(*args)), _np(_x(torch, None).flip(*args))
        )
    got, want = mg.flip(_x(mg, device), [1]), torch.flip(_x(torch, None), [1])
    np.testing.assert_array_equal(_np(got), _np(want))


@pytest.mark.parametrize("op", ["floor", "ceil", "trunc", "round", "fix"])
def test_rounding_integers_copies_them_as_pytorch(device, op):
    want = getattr(torch, op)(torch.tensor([3, -2]))
    got = getattr(mg, op)(_t(mg, device, [3, -2]))
    assert got.dtype == mg.int64 and _np(got).tolist() == want.tolist()


# ---------------------------------------------------------------------------- results


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_logaddexp2_of_16_bit_floats_in_float32(device, dt):
    a, b = [1.5, -2.0, 100.0, 3.25], [0.5, 3.0, 99.0, 3.25]
    for other in (lambda lb, d: _t(lb, d, b), lambda lb, d: _t(lb, d, b, dt)):
        want = torch.logaddexp2(torch.tensor(a, dtype=getattr(torch, dt)), other(torch, None))
        got = mg.logaddexp2(_t(mg, device, a, dt), other(mg, device))
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        # NOTE: float32 results within an ulp (PyTorch's vectorised log1p and exp2)
        np.testing.assert_allclose(_np(got.float()), _np(want.float()), rtol=2e-7)


@pytest.mark.parametrize("p", [2, 3, 1, float("inf")])
def test_norm_over_no_listed_dims_is_over_all(device, p):
    for keepdim in (False, True):
        want = torch.norm(_x(torch, None), p, dim=(), keepdim=keepdim)
        got = mg.norm(_x(mg, device), p, dim=(), keepdim=keepdim)
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6)


# ---------------------------------------------------------------------------- ties


TIES = {
    "all equal": [[2.0] * 7, [0.0] * 7],
    "two values": [[2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0], [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]],
    "nan": [[np.nan, 1.0, np.nan, 1.0, 0.0, 1.0, 5.0], [3.0, np.nan, 3.0, 3.0, 0.0, 0.0, 3.0]],
    "long rows": np.random.RandomState(0).randint(0, 3, (3, 150)).astype("float32"),
    "int": np.random.RandomState(1).randint(0, 4, (4, 40)),
    "distinct": np.random.RandomState(2).permutation(60).reshape(3, 20).astype("float64"),
}


def _tie_cases():
    out = []
    for name, data in TIES.items():
        n = np.asarray(data).shape[-1]
        for k in sorted({1, 2, 3, n // 2, n}):
            for largest in (True, False):
                for srt in (True, False):
                    out.append((name, "topk", (k,), {"largest": largest, "sorted": srt}))
            out.append((name, "kthvalue", (k,), {}))
        out.append((name, "mode", (), {}))
        out.append((name, "median", (), {}))
        out.append((name, "nanmedian", (), {}))
        out.append((name, "sort", (), {"stable": True, "descending": True}))
    return out


TIE_CASES = _tie_cases()


def _same_values(got, want):
    np.testing.assert_array_equal(_np(got), want.numpy())


@pytest.mark.parametrize("case", range(len(TIE_CASES)))
def test_ties_pick_pytorchs_indices_on_the_cpu(device, case):
    name, op, args, kw = TIE_CASES[case]
    data = np.asarray(TIES[name])
    for dim, arr in ((1, data), (0, np.ascontiguousarray(data.T))):
        want = getattr(torch, op)(torch.tensor(arr), *args, dim=dim, **kw)
        got = getattr(mg, op)(mg.tensor(arr, device=device), *args, dim=dim, **kw)
        if device == "cpu" or kw.get("sorted", True):
            _same_values(got.values, want.values)
        else:  # NOTE: topk(sorted=False) leaves the order to the device's algorithm
            ordered = np.sort(_np(got.values), dim), np.sort(want.values.numpy(), dim)
            np.testing.assert_array_equal(*ordered)
        if device == "cpu":
            np.testing.assert_array_equal(_np(got.indices), want.indices.numpy())
        else:  # NOTE: GPUs keep their own order among equal values (PyTorch's CUDA does too)
            idx, vals = _np(got.indices), _np(got.values)
            if idx.ndim < arr.ndim:
                idx, vals = np.expand_dims(idx, dim), np.expand_dims(vals, dim)
            np.testing.assert_array_equal(np.take_along_axis(arr, idx, dim), vals)


def test_ties_in_large_inputs_keep_values_and_valid_indices():
    """Past the replay budget, the values are PyTorch's and the indices point at them."""
    data = np.random.RandomState(3).randint(0, 3, (40, 1000)).astype("float32")
    for op, args in (("topk", (5,)), ("kthvalue", (500,)), ("mode", ())):
        want = getattr(torch, op)(torch.tensor(data), *args, sorted=False) if op == "topk" else (
            getattr(torch, op)(torch.tensor(data), *args))  # fmt: skip
        got = getattr(mg, op)(mg.tensor(data), *args, **({"sorted": False} if op == "topk" else {}))
        if op == "topk":  # NOTE: unsorted order past the budget: compare as sets of values
            np.testing.assert_array_equal(
                np.sort(_np(got.values), 1), np.sort(want.values.numpy(), 1)
            )
        else:
            _same_values(got.values, want.values)
        idx = _np(got.indices).reshape(want.indices.shape)
        idx = idx if idx.ndim == 2 else idx[:, None]
        vals = _np(got.values).reshape(idx.shape)
        np.testing.assert_array_equal(np.take_along_axis(data, idx, 1), vals)


def test_tie_gradients_go_to_the_picked_entries(device):
    data = np.asarray(TIES["two values"], dtype="float32")
    grads = []
    for lib, d in ((torch, None), (mg, device)):
        x = _t(lib, d, data).requires_grad_()
        v1 = lib.topk(x, 3, sorted=False).values
        v2 = lib.kthvalue(x, 2, 1).values
        (v1 * _t(lib, d, [1.0, 2.0, 3.0])).sum().backward()
        v2.sum().backward()
        grads.append(_np(x.grad))
    if device == "cpu":
        np.testing.assert_array_equal(grads[1], grads[0])
    else:
        np.testing.assert_array_equal(np.sort(grads[1], 1), np.sort(grads[0], 1))


# ---------------------------------------------------------------------------- empty reductions


EMPTY_OPS = {
    "max": lambda lb, x, d: lb.max(x, *d),
    "min keepdim": lambda lb, x, d: lb.min(x, *d, keepdim=True) if d else lb.min(x),
    "argmax": lambda lb, x, d: lb.argmax(x, *d),
    "argmin keepdim": lambda lb, x, d: lb.argmin(x, *d, keepdim=True),
    "amax": lambda lb, x, d: lb.amax(x, *d),
    "amin": lambda lb, x, d: x.amin(*d),
    "aminmax": lambda lb, x, d: lb.aminmax(x, dim=d[0] if d else None),
    "logsumexp": lambda lb, x, d: lb.logsumexp(x, d),
    "logsumexp int": lambda lb, x, d: lb.logsumexp(x.long(), d),
    "prod": lambda lb, x, d: lb.prod(x, *d),
    "median": lambda lb, x, d: lb.median(x, *d),
    "nanmedian": lambda lb, x, d: lb.nanmedian(x, *d),
    "mode": lambda lb, x, d: lb.mode(x, *d),
    "kthvalue": lambda lb, x, d: lb.kthvalue(x, 1, *d),
    "std": lambda lb, x, d: lb.std(x, *d),
    "var_mean": lambda lb, x, d: lb.var_mean(x, *d),
    "logcumsumexp": lambda lb, x, d: lb.logcumsumexp(x, d[0] if d else 0),
    "cummax": lambda lb, x, d: lb.cummax(x, d[0] if d else 0),
    "vector_norm inf": lambda lb, x, d: lb.linalg.vector_norm(x, float("inf"), dim=d or None),
    "vector_norm -inf": lambda lb, x, d: lb.linalg.vector_norm(x, -float("inf"), dim=d or None),
    "quantile": lambda lb, x, d: lb.quantile(x, 0.5, *d),
    "int max": lambda lb, x, d: lb.max(x.long(), *d),
}


def _empty_cases():
    out = []
    for shape in ((0, 3), (3, 0), (0,), (2, 0, 3)):
        for d in [(i,) for i in range(len(shape))] + [(-1,), ()]:
            out += [(op, shape, d) for op in EMPTY_OPS]
    return out


EMPTY_CASES = _empty_cases()


def _outputs(r):
    return list(r) if isinstance(r, tuple) else [r]


@pytest.mark.parametrize("case", range(len(EMPTY_CASES)))
def test_reductions_over_empty_dims_as_pytorch(device, case):
    op, shape, d = EMPTY_CASES[case]
    fn = EMPTY_OPS[op]
    try:
        want = fn(torch, torch.ones(shape), d)
    except (IndexError, RuntimeError) as e:
        exc = IndexError if isinstance(e, IndexError) else RuntimeError
        with pytest.raises(exc):
            fn(mg, mg.ones(shape, device=device), d)
        return
    got = fn(mg, mg.ones(shape, device=device), d)
    for g, w in zip(_outputs(got), _outputs(want), strict=True):
        assert tuple(g.shape) == tuple(w.shape) and str(g.dtype)[9:] == str(w.dtype)[6:]
        np.testing.assert_array_equal(_np(g), w.numpy())


def test_empty_reduction_errors_name_the_dim():
    err = _both_raise(lambda: torch.max(torch.ones(3, 0), -1), lambda: mg.max(mg.ones(3, 0), -1),
                      IndexError)  # fmt: skip
    assert "max(): Expected reduction dim 1 to have non-zero size" in str(err)
    err = _both_raise(lambda: torch.ones(0).amax(), lambda: mg.ones(0).amax())
    assert "amax(): Expected reduction dim to be specified for input.numel() == 0" in str(err)
    err = _both_raise(lambda: torch.aminmax(torch.ones(0)), lambda: mg.aminmax(mg.ones(0)))
    assert "aminmax(): cannot compute aminmax over an empty dimension" in str(err)


# ---------------------------------------------------------------------------- 16-bit grad_fn


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_16_bit_products_with_a_number_are_mul_and_div_nodes(device, dt):
    names, grads = [], []
    for lib, d in ((torch, None), (mg, device)):
        x = _t(lib, d, [1.0, -2.0, 3.0], dt).requires_grad_()
        ys = [x * 0.5, 0.5 * x, x / 4, x * 3]
        names.append([y.grad_fn.name() for y in ys])
        sum(y.float().sum() for y in ys).backward()
        grads.append(_np(x.grad.float()))
        if lib is mg:  # NOTE: manygrad's node types are named as its float32 ones
            f32 = mg.ones(1, requires_grad=True)
            assert [type(y.grad_fn).__name__ for y in ys] == [
                type((f32 * 0.5).grad_fn).__name__] * 2 + [type((f32 / 4).grad_fn).__name__,
                                                           type((f32 * 3).grad_fn).__name__]  # fmt: skip
            assert "HalfScale" not in repr(ys[0].grad_fn)
    assert names[1] == names[0] == ["MulBackward0", "MulBackward0", "DivBackward0", "MulBackward0"]
    np.testing.assert_array_equal(grads[1], grads[0])


# ---------------------------------------------------------------------------- torch.fx


def _act_module(lib):
    F = lib.nn.functional

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lib.nn.Linear(3, 3)
            self.act, self.act2, self.pick = F.gelu, lib.relu, lib.softmax

        def forward(self, x):
            return self.pick(self.act2(self.act(self.lin(x))) - 1, dim=-1)

    return Net()


def test_fx_traces_functions_kept_as_module_attributes():
    mg.manual_seed(0)
    model = _act_module(mg)
    gm = mg.fx.symbolic_trace(model)
    want = torch.fx.symbolic_trace(_act_module(torch))
    ops = [n.op for n in gm.graph.nodes]
    assert ops == [n.op for n in want.graph.nodes]
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert targets[0] is mg.nn.functional.gelu and targets[1] is mg.relu
    assert targets[3] is mg.softmax
    x = mg.randn(2, 3)
    np.testing.assert_allclose(_np(gm(x)), _np(model(x)), rtol=1e-6)
    assert model.act is mg.nn.functional.gelu  # the attribute is restored after tracing
    assert "gelu" in gm.code and "relu" in gm.code


def _fusable(lib):
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)
            self.c2, self.b2 = nn.Conv1d(4, 4, 1), nn.BatchNorm1d(4)
            self.c3, self.b3 = nn.Conv3d(2, 2, 1), nn.BatchNorm3d(2)
            self.lin, self.b4 = nn.Linear(4, 5), nn.BatchNorm1d(5)
            self.lin2, self.b5 = nn.Linear(5, 5), nn.BatchNorm1d(5, track_running_stats=False)
            self.shared, self.b6 = nn.Linear(5, 5), nn.BatchNorm1d(5)

        def forward(self, x, v):
            y = self.b2(self.c2(self.b1(self.c1(x)).flatten(2))).mean(-1)
            z = self.b4(self.lin(y))
            s = self.shared(z)  # used twice: not folded
            return self.b5(self.lin2(z)), self.b6(s) + s, self.b3(self.c3(v))

    return Net()


def _copy_weights(src, dst):
    state = {k: torch.tensor(_np(v)) for k, v in src.state_dict().items()}
    dst.load_state_dict(state)


def test_fx_fuse_folds_batch_norms_as_pytorch():
    from torch.fx.experimental.optimization import fuse as torch_fuse

    from manygrad.fx.experimental.optimization import fuse

    mg.manual_seed(0)
    model = _fusable(mg)
    for bn in (model.b1, model.b2, model.b3, model.b4, model.b6):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
    tmodel = _fusable(torch)
    _copy_weights(model, tmodel)
    _both_raise(lambda: torch_fuse(tmodel), lambda: fuse(model), AssertionError)
    model.eval(), tmodel.eval()
    fused, tfused = fuse(model), torch_fuse(tmodel)
    assert [n for n, _ in fused.named_children()] == [n for n, _ in tfused.named_children()]
    assert [n.op for n in fused.graph.nodes] == [n.op for n in tfused.graph.nodes]
    assert model.b1 is not None and isinstance(model.b1, mg.nn.BatchNorm2d)  # a copy was fused
    rs = np.random.RandomState(0)
    x, v = rs.randn(2, 3, 5, 5).astype("float32"), rs.randn(2, 2, 3, 3, 3).astype("float32")
    got = fused(mg.tensor(x), mg.tensor(v))
    for g, m, w in zip(
        got, model(mg.tensor(x), mg.tensor(v)), tfused(torch.tensor(x), torch.tensor(v))
    ):
        np.testing.assert_allclose(_np(g), w.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(_np(g), _np(m), rtol=1e-4, atol=1e-5)
    inplace, tinplace = fuse(model, inplace=True), torch_fuse(tmodel, inplace=True)
    # NOTE: as PyTorch's: the traced copy's layers are replaced, the model keeps its own
    assert (model.c1.bias is None) is (tmodel.c1.bias is None) is True
    assert [n for n, _ in inplace.named_children()] == [n for n, _ in tinplace.named_children()]
    assert fuse(inplace, no_trace=True).graph is not inplace.graph


def test_fx_experimental_under_the_import_hook(tmp_path):
    p = tmp_path / "script.py"
    p.write_text(
        textwrap.dedent("""
        import torch
        import torch.fx
        from torch.fx.experimental.optimization import fuse, remove_dropout
        m = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3),
                                torch.nn.Dropout(0.5)).eval()
        f = remove_dropout(fuse(m))
        result = ([n for n, _ in f.named_children()], type(f).__name__,
                  type(f).__module__)
    """)
    )
    names, cls, module = compat.run_script(str(p), [])["result"]
    assert names == ["0"] and cls == "GraphModule" and module.startswith("manygrad.fx")
