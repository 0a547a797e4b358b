"""PyTorch parity, compared with PyTorch: error types of bool negation, integer powers,
integer division by zero and 0-d matmul; ``tensor @ ndarray``; max pooling over windows
holding NaN (values, indices, gradients); DataLoader ``in_order=False`` and the random
streams of worker threads (seeded as PyTorch seeds worker processes)."""

import random
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data._utils.worker import _generate_state

import manygrad as mg
from parity_helpers import _both_raise, _np

NAN = float("nan")


# ---------------------------------------------------------------------------- errors

_NEGATIONS = [
    lambda lb, t: -t,
    lambda lb, t: lb.neg(t),
    lambda lb, t: lb.negative(t),
    lambda lb, t: t.neg(),
    lambda lb, t: t.clone().neg_(),
    lambda lb, t: lb.neg(t, out=lb.empty(2, dtype=lb.bool)),
]


@pytest.mark.parametrize("op", range(len(_NEGATIONS)))
def test_bool_negation_is_a_runtime_error(device, op):
    f = _NEGATIONS[op]
    err = _both_raise(lambda: f(torch, torch.tensor([True, False])),
                      lambda: f(mg, mg.tensor([True, False], device=device)))  # fmt: skip
    assert "Negation" in str(err) and "logical_not" in str(err)
    # other dtypes negate as in PyTorch (uint8 wraps)
    for dt in ("uint8", "int32", "float32"):
        a = torch.tensor([1, 2], dtype=getattr(torch, dt))
        b = mg.tensor([1, 2], dtype=getattr(mg, dt), device=device)
        np.testing.assert_array_equal(_np(f(mg, b) if op < 5 else -b), _np(-a))


_POWERS = [
    lambda lb, t: t**-1,
    lambda lb, t: lb.pow(t, -2),
    lambda lb, t: t.clone().pow_(-1),
    lambda lb, t: t ** np.int64(-3),
]


@pytest.mark.parametrize("dtype", ["int64", "uint8", "int16", "bool"])
@pytest.mark.parametrize("op", range(len(_POWERS)))
def test_integer_to_negative_integer_power(device, dtype, op):
    vals = [1, 2, 0] if dtype == "bool" else [1, 2, 3]
    a = torch.tensor(vals, dtype=getattr(torch, dtype))
    b = mg.tensor(vals, dtype=getattr(mg, dtype), device=device)
    err = _both_raise(lambda: _POWERS[op](torch, a), lambda: _POWERS[op](mg, b))
    assert "negative integer powers" in str(err)


@pytest.mark.parametrize("dtype", ["int64", "uint8"])
def test_integer_powers_that_are_allowed(device, dtype):
    a = torch.tensor([1, 2, 3], dtype=getattr(torch, dtype))
    b = mg.tensor([1, 2, 3], dtype=getattr(mg, dtype), device=device)
    for f in (lambda t, lb: t**-2.0, lambda t, lb: t**0, lambda t, lb: t**2,
              lambda t, lb: lb.pow(t, lb.tensor([-2, 1, 0]).to(t.device)),
              lambda t, lb: 2 ** t.to(lb.int64)):  # fmt: skip
        want, got = f(a, torch), f(b, mg)
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6)


@pytest.mark.parametrize("shapes", [((), ()), ((), (3,)), ((3,), ()), ((2, 3), ())])
def test_matmul_of_a_0d_tensor(device, shapes):
    sa, sb = shapes
    _both_raise(lambda: torch.ones(sa) @ torch.ones(sb),
                lambda: mg.ones(sa, device=device) @ mg.ones(sb, device=device))  # fmt: skip
    _both_raise(lambda: torch.matmul(torch.ones(sa), torch.ones(sb)),
                lambda: mg.matmul(mg.ones(sa, device=device), mg.ones(sb, device=device)))  # fmt: skip


_DIVISIONS = {
    "floordiv": lambda lb, a, b: a // b,
    "mod": lambda lb, a, b: a % b,
    "floor_divide": lambda lb, a, b: lb.floor_divide(a, b),
    "remainder": lambda lb, a, b: lb.remainder(a, b),
    "fmod": lambda lb, a, b: lb.fmod(a, b),
    "div_trunc": lambda lb, a, b: lb.div(a, b, rounding_mode="trunc"),
    "div_floor": lambda lb, a, b: lb.div(a, b, rounding_mode="floor"),
    "ifloordiv": lambda lb, a, b: a.clone().__ifloordiv__(b),
    "remainder_": lambda lb, a, b: a.clone().remainder_(b),
    "fmod_": lambda lb, a, b: a.clone().fmod_(b),
    "div_trunc_": lambda lb, a, b: a.clone().div_(b, rounding_mode="trunc"),
}


@pytest.mark.parametrize("dtype", ["int64", "int8", "uint8"])
@pytest.mark.parametrize("name", sorted(_DIVISIONS))
def test_integer_division_by_zero(device, name, dtype):
    f = _DIVISIONS[name]
    tdt, mdt = getattr(torch, dtype), getattr(mg, dtype)
    a_t, a_m = torch.tensor([7, 5, 9], dtype=tdt), mg.tensor([7, 5, 9], dtype=mdt, device=device)
    divisors = [
        (0, 0),
        (False, False),
        (torch.tensor([2, 0, 3], dtype=tdt), mg.tensor([2, 0, 3], dtype=mdt, device=device)),
    ]
    for dt_, dm_ in divisors:
        if device == "cpu":
            err = _both_raise(lambda d=dt_: f(torch, a_t, d), lambda d=dm_: f(mg, a_m, d))
            assert isinstance(err, ZeroDivisionError) and "ZeroDivisionError" in str(err)
        else:
            # NOTE: as PyTorch's CUDA kernels: no check, so no host sync
            syncs = mg.backend.fake_stats.syncs
            with warnings.catch_warnings():  # NumPy's warnings of what the GPU computes
                warnings.simplefilter("ignore", RuntimeWarning)
                f(mg, a_m, dm_)
            if device.startswith("fakegpu"):
                assert mg.backend.fake_stats.syncs == syncs
    # nonzero divisors, a scalar dividend, and an empty dividend give PyTorch's values
    b_t, b_m = torch.tensor([2, 3, 4], dtype=tdt), mg.tensor([2, 3, 4], dtype=mdt, device=device)
    for x_t, y_t, x_m, y_m in ((a_t, b_t, a_m, b_m), (a_t, 4, a_m, 4),
                               (a_t[:0], 0, a_m[:0], 0)):  # fmt: skip
        np.testing.assert_array_equal(_np(f(mg, x_m, y_m)), _np(f(torch, x_t, y_t)))
    if device == "cpu" and name in ("floordiv", "mod", "floor_divide", "remainder", "div_trunc"):
        _both_raise(lambda: f(torch, 5, torch.tensor([0, 1], dtype=tdt)),
                    lambda: f(mg, 5, mg.tensor([0, 1], dtype=mdt)))  # fmt: skip


@pytest.mark.parametrize("name", ["floordiv", "mod", "fmod", "div_trunc", "div_floor"])
def test_integer_ops_refuse_bool_operands(device, name):
    f = _DIVISIONS[name]
    _both_raise(lambda: f(torch, torch.tensor([True, False]), torch.tensor([True, True])),
                lambda: f(mg, mg.tensor([True, False], device=device),
                          mg.tensor([True, True], device=device)),
                NotImplementedError)  # fmt: skip
    # a bool and an int scalar promote to int64, as in PyTorch
    np.testing.assert_array_equal(_np(f(mg, mg.tensor([True, False], device=device), 2)),
                                  _np(f(torch, torch.tensor([True, False]), 2)))  # fmt: skip


def test_more_dtype_refusals_are_not_implemented_errors(device):
    cases = [
        lambda lb, d: lb.abs(lb.tensor([True, False], device=d)),
        lambda lb, d: lb.tensor([True], device=d).abs_(),
        lambda lb, d: lb.gcd(lb.ones(2, device=d), lb.ones(2, device=d)),
        lambda lb, d: lb.lcm(lb.tensor([True], device=d), lb.tensor([True], device=d)),
        lambda lb, d: lb.ones(2, device=d) & lb.ones(2, device=d),
        lambda lb, d: lb.bitwise_or(lb.ones(2, device=d), 1),
        lambda lb, d: lb.ones(2, device=d) << 1,
        lambda lb, d: lb.tensor([1, 2], device=d) & 1.5,
        lambda lb, d: lb.bitwise_not(lb.ones(2, device=d)),
    ]
    for f in cases:
        _both_raise(lambda f=f: f(torch, "cpu"), lambda f=f: f(mg, device), NotImplementedError)
    # ``~`` of a float tensor stays a TypeError, as PyTorch's
    _both_raise(lambda: ~torch.ones(2), lambda: ~mg.ones(2, device=device), TypeError)


@pytest.mark.parametrize(
    "sa, sb, ta, tb",
    [((2, 3), (3, 4), "float32", "float64"), ((3,), (3,), "float32", "float32"),
     ((2, 3), (3,), "int64", "float32"), ((2, 2), (2, 2), "bool", "bool"),
     ((4, 2, 3), (3, 2), "float16", "float16"), ((2, 2), (2, 2), "complex64", "float64")],
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")  # PyTorch's
def test_tensor_matmul_numpy_array(sa, sb, ta, tb):
    """PyTorch leaves ``tensor @ array`` to NumPy: a CPU tensor of NumPy's result dtype."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=sa) * 3).astype(ta)
    a = (rng.normal(size=sb) * 3).astype(tb)
    want = torch.from_numpy(x) @ a
    got = mg.from_numpy(x) @ a
    assert isinstance(got, mg.Tensor) and got.device.type == "cpu" and not got.requires_grad
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(_np(got), _np(want), rtol=1e-3)


def test_matmul_numpy_errors(device):
    arr = np.ones((2, 2))
    # array @ tensor, tensor @ list and torch.matmul(tensor, array) are TypeErrors
    for f in (lambda lb, t: arr @ t, lambda lb, t: t @ [[1.0, 2.0], [3.0, 4.0]],
              lambda lb, t: [[1.0, 2.0]] @ t, lambda lb, t: lb.matmul(t, arr)):  # fmt: skip
        _both_raise(lambda f=f: f(torch, torch.ones(2, 2)),
                    lambda f=f: f(mg, mg.ones(2, 2, device=device)), TypeError)  # fmt: skip
    # NumPy's shape errors, and a tensor that requires grad refuses NumPy
    _both_raise(lambda: torch.ones(2, 3) @ arr, lambda: mg.ones(2, 3) @ arr, ValueError)
    _both_raise(lambda: torch.ones(2, 2, requires_grad=True) @ arr,
                lambda: mg.ones(2, 2, requires_grad=True) @ arr)  # fmt: skip
    if device != "cpu":  # a GPU tensor is refused, as PyTorch's CUDA tensors (TypeError)
        with pytest.raises(TypeError):
            mg.ones(2, 2, device=device) @ arr


# ---------------------------------------------------------------------------- NaN in max pooling


def _nan_input(shape, seed, frac=0.2):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=shape) * 2).astype(np.float32)  # NOTE: many ties
    x[rng.random(shape) < frac] = np.nan
    return x


_POOLS = [
    ("max_pool1d", (2, 3, 11), dict(kernel_size=3, stride=1)),
    ("max_pool1d", (2, 3, 11), dict(kernel_size=2)),
    ("max_pool1d", (1, 2, 12), dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)),
    ("max_pool1d", (1, 2, 12), dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    ("max_pool2d", (2, 2, 7, 8), dict(kernel_size=3, stride=1)),
    ("max_pool2d", (2, 2, 8, 8), dict(kernel_size=2)),
    ("max_pool2d", (1, 3, 9, 7), dict(kernel_size=(3, 2), stride=2, padding=1, dilation=(1, 2))),
    ("max_pool2d", (1, 2, 7, 7), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("max_pool3d", (1, 2, 5, 6, 6), dict(kernel_size=2, stride=1)),
    ("max_pool3d", (2, 1, 6, 5, 7), dict(kernel_size=(3, 2, 3), stride=2, padding=1)),
    ("adaptive_max_pool1d", (2, 3, 11), dict(output_size=4)),
    ("adaptive_max_pool2d", (2, 2, 7, 9), dict(output_size=(3, 4))),
    ("adaptive_max_pool3d", (1, 2, 5, 6, 7), dict(output_size=(2, 3, 3))),
]


@pytest.mark.parametrize("case", range(len(_POOLS)))
@pytest.mark.parametrize("frac", [0.0, 0.2, 0.6])
def test_max_pool_with_nan_matches_torch(device, case, frac):
    """A window holding NaN gives NaN, the index of its last NaN (PyTorch's kernels let
    every NaN replace the running maximum), and the gradient goes there."""
    name, shape, kw = _POOLS[case]
    x = _nan_input(shape, case, frac)
    xt = torch.tensor(x, requires_grad=True)
    xm = mg.tensor(x, device=device, requires_grad=True)
    yt, it = getattr(torch.nn.functional, name)(xt, return_indices=True, **kw)
    ym, im = getattr(mg.nn.functional, name)(xm, return_indices=True, **kw)
    g = np.random.default_rng(1).normal(size=tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(g))
    ym.backward(mg.tensor(g, device=device))
    np.testing.assert_array_equal(_np(ym), _np(yt))  # NaN where PyTorch has NaN
    np.testing.assert_array_equal(_np(im), _np(it))
    np.testing.assert_allclose(_np(xm.grad), _np(xt.grad), rtol=1e-6, atol=1e-6)
    # without indices: the same values and gradients
    xm2 = mg.tensor(x, device=device, requires_grad=True)
    y2 = getattr(mg.nn.functional, name)(xm2, **kw)
    y2.backward(mg.tensor(g, device=device))
    np.testing.assert_array_equal(_np(y2), _np(yt))
    np.testing.assert_allclose(_np(xm2.grad), _np(xt.grad), rtol=1e-6, atol=1e-6)


def test_max_pool_nan_double_backward(device):
    """The gradient taken with create_graph routes through the same (last-NaN) indices."""
    x = _nan_input((1, 2, 6, 6), 3, 0.3).astype(np.float64)
    rng = np.random.default_rng(4)
    w, c = rng.normal(size=(1, 2, 4, 4)), rng.normal(size=x.shape)
    outs = []
    for lb, d in ((torch, "cpu"), (mg, device)):
        xx = lb.tensor(x, requires_grad=True, device=d)
        ww = lb.tensor(w, requires_grad=True, device=d)
        y = lb.nn.functional.max_pool2d(xx, 3, 1)
        (gx,) = lb.autograd.grad(y, xx, grad_outputs=ww, create_graph=True)
        (gx * lb.tensor(c, device=d)).sum().backward()
        outs.append((_np(gx), _np(ww.grad)))
    np.testing.assert_allclose(outs[1][0], outs[0][0])
    np.testing.assert_allclose(outs[1][1], outs[0][1])


def test_max_pool_module_and_integer_input(device):
    x = _nan_input((1, 1, 6, 6), 5, 0.3)
    yt = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    ym = mg.nn.MaxPool2d(2, return_indices=True)(mg.tensor(x, device=device))
    np.testing.assert_array_equal(_np(ym[0]), _np(yt[0]))
    np.testing.assert_array_equal(_np(ym[1]), _np(yt[1]))
    xi = np.nan_to_num(x).astype(np.int64)  # integers: the first maximum, as before
    yt = torch.nn.functional.max_pool2d(torch.tensor(xi), 3, 1, return_indices=True)
    ym = mg.nn.functional.max_pool2d(mg.tensor(xi, device=device), 3, 1, return_indices=True)
    np.testing.assert_array_equal(_np(ym[1]), _np(yt[1]))


# ---------------------------------------------------------------------------- DataLoader


class Draws:
    """Each sample: its index, the worker's id and seed, and draws from ``random``,
    ``numpy.random``, the library's RNG and its ``initial_seed()``."""

    def __init__(self, lib: str, n: int = 12, sleep: bool = False):
        self.lib, self.n, self.sleep = lib, n, sleep

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        lb = torch if self.lib == "torch" else mg
        if self.sleep:  # NOTE: worker 1 runs ahead of worker 0, then falls behind
            time.sleep(0.002 * ((i * 7) % 5))
        info = lb.utils.data.get_worker_info()
        return (i, info.id, info.seed, random.random(), float(np.random.rand()),
                float(lb.rand(()).item()), lb.initial_seed())  # fmt: skip


class Quiet(Draws):
    def __getitem__(self, i):
        return i


def _rows(lib, ds, **kw):
    lb = torch if lib == "torch" else mg
    lb.manual_seed(7)
    rows = []
    for b in lb.utils.data.DataLoader(ds, batch_size=2, num_workers=2, **kw):
        rows += list(zip(*[x.tolist() for x in b])) if isinstance(b, list) else b.tolist()
    return rows, lb.rand(3).tolist()


def _check_worker_streams(rows, lb):
    """Every worker's draws are those of generators seeded as PyTorch seeds worker
    processes: ``random`` and the library with ``base_seed + id``, NumPy with
    PyTorch's ``_generate_state(base_seed, id)``."""
    streams = {}
    for _i, wid, seed, r, n, t, initial in rows:
        base = seed - wid
        st = streams.setdefault(wid, (random.Random(seed),
                                      np.random.RandomState(_generate_state(base, wid)),
                                      lb.Generator().manual_seed(seed)))  # fmt: skip
        assert r == st[0].random() and n == st[1].rand() and initial == seed
        assert t == pytest.approx(lb.rand((), generator=st[2]).item(), abs=1e-7)
    assert sorted(streams) == [0, 1]


def test_thread_workers_have_their_own_rng_seeded_as_pytorch():
    rows_t, _ = _rows("torch", Draws("torch"))
    _check_worker_streams(rows_t, torch)  # the rule, as PyTorch's process workers follow it
    rows_m, after = _rows("mg", Draws("mg"))
    _check_worker_streams(rows_m, mg)
    assert [r[:2] for r in rows_m] == [r[:2] for r in rows_t]  # the same worker per sample
    # independent of the threads' timing, and the main thread's generator is untouched
    # (one draw for the base seed, as in PyTorch)
    rows_slow, after_slow = _rows("mg", Draws("mg", sleep=True))
    assert rows_slow == rows_m and after_slow == after
    assert _rows("mg", Quiet("mg"))[1] == after
    assert _rows("torch", Quiet("torch"))[1] == _rows("torch", Draws("torch"))[1]
    # the modules' own functions are back once the workers are gone
    assert random.random.__self__ is random._inst
    assert np.random.rand.__self__ is np.random.mtrand._rand


def test_process_workers_draw_as_thread_workers():
    rows_p, after_p = _rows("mg", Draws("mg", n=6), worker_type="process")
    rows_t, after_t = _rows("mg", Draws("mg", n=6))
    assert rows_p == rows_t and after_p == after_t


class NumpyDraw(Draws):
    def __getitem__(self, i):
        lb = torch if self.lib == "torch" else mg
        return (i, lb.utils.data.get_worker_info().seed, float(np.random.rand()))


def _init_torch(worker_id):
    np.random.seed(torch.initial_seed() % 2**32)


def _init_mg(worker_id):
    np.random.seed(mg.initial_seed() % 2**32)


def test_worker_init_fn_seeding_numpy_per_worker():
    for lib, init in (("torch", _init_torch), ("mg", _init_mg)):
        rows, _ = _rows(lib, NumpyDraw(lib, n=8), worker_init_fn=init)
        streams = {}
        for _i, seed, n in rows:
            st = streams.setdefault(seed, np.random.RandomState(seed % 2**32))
            assert n == st.rand()
        assert len(streams) == 2


class Blocking:
    """Index 0 waits until ``release`` is set (or ``index_done`` names another index)."""

    def __init__(self, n=10):
        self.n = n
        self.release = threading.Event()
        self.loaded: list = []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == 0:
            self.release.wait(20)
        self.loaded.append(i)
        if i == 3:
            self.release.set() if getattr(self, "free_on_3", False) else None
        return i


@pytest.mark.parametrize("workers", [2, 3])
def test_in_order_false_yields_batches_as_they_complete(workers):
    ds = Blocking(12)
    loader = mg.utils.data.DataLoader(ds, batch_size=2, num_workers=workers, in_order=False)
    got = []
    for b in loader:
        got.append(b.tolist())
        ds.release.set()  # batch 0 could not come first: its worker waited for this
    assert got[0] != [0, 1]
    assert sorted(x for b in got for x in b) == list(range(12))  # each batch exactly once
    want = [b.tolist() for b in torch.utils.data.DataLoader(range(12), batch_size=2)]
    assert sorted(got) == sorted(want)


def test_in_order_true_keeps_the_order_when_a_batch_is_slow():
    ds = Blocking(12)
    ds.free_on_3 = True  # batch 0 is done only after batch 1 (index 3), on another worker
    got = [b.tolist() for b in mg.utils.data.DataLoader(ds, batch_size=2, num_workers=2)]
    want = [b.tolist() for b in torch.utils.data.DataLoader(range(12), batch_size=2,
                                                            num_workers=2)]  # fmt: skip
    assert got == want and ds.loaded.index(3) < ds.loaded.index(0)


class Shards(torch.utils.data.IterableDataset):
    """Each worker yields its share of ``range(n)`` (PyTorch's documented sharding)."""

    def __init__(self, lib: str, n: int):
        self.lib, self.n = lib, n

    def __iter__(self):
        lb = torch if self.lib == "torch" else mg
        info = lb.utils.data.get_worker_info()
        return iter(range(info.id, self.n, info.num_workers))


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize("in_order", [True, False])
def test_iterable_dataset_with_workers_and_in_order(in_order):
    def run(lb, lib):
        ds = Shards(lib, 13) if lib == "torch" else _mg_shards(13)
        dl = lb.utils.data.DataLoader(ds, batch_size=2, num_workers=3, in_order=in_order)
        return [b.tolist() for b in dl]

    want, got = run(torch, "torch"), run(mg, "mg")
    if in_order:
        assert got == want
    assert sorted(got) == sorted(want)


def _mg_shards(n):
    class MgShards(mg.utils.data.IterableDataset):
        def __iter__(self):
            info = mg.utils.data.get_worker_info()
            return iter(range(info.id, n, info.num_workers))

    return MgShards()


class WhichWorker:
    def __init__(self, lib):
        self.lib = lib

    def __len__(self):
        return 6

    def __getitem__(self, i):
        lb = torch if self.lib == "torch" else mg
        return lb.utils.data.get_worker_info().id


def test_persistent_workers_start_each_epoch_at_worker_0():
    def run(lb, lib):
        dl = lb.utils.data.DataLoader(WhichWorker(lib), batch_size=2, num_workers=2,
                                     persistent_workers=True)  # fmt: skip
        return [[b.tolist() for b in dl] for _ in range(2)]

    assert run(mg, "mg") == run(torch, "torch")
