"""The fake GPU refuses what CuPy 14 lacks, so GPU-only failures show up on CPU machines."""

from contextlib import nullcontext

import ml_dtypes
import numpy as np
import pytest

import manygrad as mg
from manygrad import backend

fx = backend.fake_xp


@pytest.mark.parametrize(
    "path", ["insert", "geomspace", "errstate", "linalg.vector_norm", "linalg.multi_dot"]
)
def test_module_functions_cupy_lacks_are_refused(path):
    mod = fx
    *parents, name = path.split(".")
    for p in parents:
        mod = getattr(mod, p)
    with pytest.raises(AttributeError, match="does not exist in CuPy"):
        getattr(mod, name)
    assert hasattr(np if not parents else np.linalg, name)  # NumPy has it: the fake refuses


def test_numpy_functions_cupy_lacks_refuse_device_arrays():
    a = fx.arange(4.0)
    with pytest.raises(TypeError, match="no implementation found"):
        np.insert(a, 1, 0.0)
    assert type(np.concatenate([a, a])) is backend.FakeArray  # ones CuPy has still work


def test_array_methods_and_keywords_cupy_lacks_are_refused():
    a = fx.ones((2, 3))
    with pytest.raises(AttributeError, match="does not exist in CuPy"):
        a.resize((3, 2))
    with pytest.raises(TypeError, match="correction"):
        a.var(axis=0, correction=1)
    with pytest.raises(TypeError, match="where"):
        a.sum(where=a > 0)
    assert float(a.var(axis=0, ddof=1).sum()) == 0.0
    b = a
    b @= fx.ones((3, 3))  # CuPy has no in-place matmul: Python rebinds b to a new array
    assert b is not a and float(a.sum()) == 6.0


def test_ufunc_keywords_and_at_cupy_lacks_are_refused():
    a = fx.ones(3)
    with pytest.raises(TypeError, match="where"):
        np.add(a, a, where=a > 0)
    with pytest.raises(TypeError, match="index_add"):
        np.add.at(a, fx.asarray(np.array([0, 0])), 1.0)
    out = fx.empty(3)
    np.add(a, a, out=out)  # out= and dtype= CuPy's ufuncs have
    assert float(out.sum()) == 6.0


def test_device_scalars_are_not_python_indices():
    n = fx.asarray(np.array(3)).sum()
    with pytest.raises(TypeError):
        range(n)  # cupy.ndarray has no __index__: use int(n), a counted sync


@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.float16, np.int32, np.int64, np.int8, np.uint8,
              np.bool_, ml_dtypes.bfloat16],
)  # fmt: skip
def test_index_add_covers_dtypes_without_atomic_add(dtype):
    idx = np.array([0, 2, 2, 4, 2])
    vals = np.array([1, 2, 3, 4, 100]).astype(dtype)
    want = np.zeros(5, dtype)
    np.add.at(want, idx, vals)
    got = fx.zeros(5, dtype)
    backend.index_add(got, fx.asarray(idx), fx.asarray(vals))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.get().astype(np.float64), want.astype(np.float64))
    atomic = np.dtype(dtype) in backend.ATOMIC_ADD_DTYPES
    with nullcontext() if atomic else pytest.raises(TypeError, match="atomicAdd"):
        backend.fake_scatter_add(fx.zeros(5, dtype), fx.asarray(idx), fx.asarray(vals))


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
def test_randperm_is_a_permutation_on_each_device(device):
    p = mg.randperm(50, device=device)
    assert p.dtype == mg.int64 and str(p.device) == device
    assert sorted(p.tolist()) == list(range(50))
    assert p.tolist() != list(range(50))


def test_batched_bfloat16_matmul_goes_through_float32():
    a = fx.ones((2, 3, 4), ml_dtypes.bfloat16)
    b = fx.ones((2, 4, 5), ml_dtypes.bfloat16)
    with pytest.raises(TypeError, match="bfloat16"):
        fx.matmul(a, b)  # CuPy 14 fails here
    assert backend.matmul(a, b).dtype == np.float32
    x = mg.ones(2, 3, 4, device="fakegpu", dtype=mg.bfloat16, requires_grad=True)
    w = mg.ones(2, 4, 5, device="fakegpu", dtype=mg.bfloat16, requires_grad=True)
    y = mg.matmul(x, w)
    y.sum().backward()
    assert y.dtype == mg.bfloat16 and float(y[0, 0, 0]) == 4.0
    assert x.grad.dtype == mg.bfloat16 and float(x.grad[0, 0, 0]) == 5.0


def _xp_calls():
    """(file:line, name, keyword names) of every ``xp.<name>(...)`` call in the package."""
    import ast
    import pathlib

    root = pathlib.Path(mg.__file__).parent
    makers = {"array_module", "xp_of", "cuda_module"}
    for path in sorted(root.rglob("*.py")):
        if path.name in ("backend.py", "fakegpu.py"):
            continue
        tree = ast.parse(path.read_text())
        names = {"xp"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                f = node.value.func
                if getattr(f, "attr", getattr(f, "id", None)) in makers:
                    names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            parts, v = [], node.func
            while isinstance(v, ast.Attribute):
                parts.append(v.attr)
                v = v.value
            is_xp = isinstance(v, ast.Name) and v.id in names
            is_xp = is_xp or (isinstance(v, ast.Call) and getattr(v.func, "attr", None) in makers)
            if is_xp:
                where = f"{path.relative_to(root)}:{node.lineno}"
                yield where, ".".join(reversed(parts)), [k.arg for k in node.keywords if k.arg]


def test_every_xp_call_exists_in_cupy_with_its_keywords():
    import inspect

    cupy = pytest.importorskip("cupy")  # imports without a GPU
    bad = []
    for where, name, kws in _xp_calls():
        obj = cupy
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if obj is None:
            bad.append(f"{where}: cupy has no {name}")
            continue
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue  # ufuncs and compiled functions: keywords checked by the fake GPU
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue
        bad += [f"{where}: cupy.{name} takes no {k}=" for k in kws if k not in params]
    assert not bad, "\n".join(bad)


def test_ops_on_a_second_gpu_run_with_that_gpu_current(monkeypatch):
    # CuPy launches kernels on the current GPU and refuses arrays of another: every op,
    # backward step, in-place update and random draw enters its tensors' GPU first.
    cuda1 = backend.Device("cuda", 1)
    depth, entered = [0], []

    class Scope:
        def __init__(self, d):
            self.d = d

        def __enter__(self):
            depth[0] += 1
            entered.append(str(self.d))

        def __exit__(self, *exc):
            depth[0] -= 1

    real_scope, real_of = backend.device_scope, backend.device_of
    monkeypatch.setattr(
        backend, "device_scope", lambda d: Scope(d) if d.type == "cuda" else real_scope(d)
    )
    monkeypatch.setattr(
        backend, "device_of", lambda a: cuda1 if type(a) is backend.FakeArray else real_of(a)
    )

    def on_gpu1(t):
        t._device = cuda1  # a fakegpu array posing as one on cuda:1
        return t

    x = on_gpu1(mg.randn(3, 4, device="fakegpu")).requires_grad_()
    w = on_gpu1(mg.randn(4, 2, device="fakegpu")).requires_grad_()
    y = mg.matmul(x, w).tanh()[:, 0].sum()
    assert entered and set(entered) == {"cuda:1"} and depth[0] == 0
    entered.clear()
    y.backward()
    assert entered and depth[0] == 0 and x.grad is not None
    for update in (lambda: x.grad.mul_(0.5), lambda: x.grad.__setitem__(0, 0.0)):
        entered.clear()
        update()
        assert entered == ["cuda:1"] and depth[0] == 0
