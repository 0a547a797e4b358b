"""dtypes and PyTorch's type promotion, checked against PyTorch itself."""

import itertools

import numpy as np
import pytest

import manygrad as mg

NAMES = ["float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64",
         "uint8", "bool"]  # fmt: skip


def _mk(lib, name, zero_dim=False):
    dt = getattr(lib, name)
    shape = () if zero_dim else (2,)
    return lib.ones(shape, dtype=dt)


@pytest.mark.parametrize("zero_dim", [False, True])
def test_tensor_tensor_promotion_matches_torch(zero_dim):
    torch = pytest.importorskip("torch")
    for a, b in itertools.product(NAMES, NAMES):
        want = (_mk(torch, a) + _mk(torch, b, zero_dim)).dtype
        got = (_mk(mg, a) + _mk(mg, b, zero_dim)).dtype
        assert str(want).replace("torch.", "") == got.name, (a, b, zero_dim)


@pytest.mark.parametrize("scalar", [2, 2.5, True])
def test_tensor_scalar_promotion_matches_torch(scalar):
    torch = pytest.importorskip("torch")
    for a in NAMES:
        want = (_mk(torch, a) * scalar).dtype
        got = (_mk(mg, a) * scalar).dtype
        assert str(want).replace("torch.", "") == got.name, (a, scalar)


def test_defaults_and_inference():
    assert mg.tensor([1.0, 2.0]).dtype is mg.float32
    assert mg.tensor([1, 2]).dtype is mg.int64
    assert mg.tensor([True]).dtype is mg.bool
    assert mg.tensor(np.zeros(3)).dtype is mg.float64  # arrays keep their dtype
    assert mg.zeros(2).dtype is mg.float32 and mg.arange(3).dtype is mg.int64
    assert mg.arange(0.0, 1.0, 0.5).dtype is mg.float32
    assert mg.full((2,), 7).dtype is mg.int64
    assert repr(mg.float16) == "manygrad.float16"


def test_conversions_and_bfloat16():
    x = mg.tensor([1.5, -2.25, 3.0])
    assert x.half().dtype is mg.float16 and x.bfloat16().dtype is mg.bfloat16
    assert x.double().dtype is mg.float64 and x.long().tolist() == [1, -2, 3]
    assert x.bfloat16().float().tolist() == [1.5, -2.25, 3.0]
    assert x.to(mg.int32).dtype is mg.int32 and x.to("float16").dtype is mg.float16
    y = x.bfloat16().requires_grad_()
    (y * y).sum().backward()
    assert y.grad.dtype is mg.bfloat16


def test_unsupported_dtype_lists_supported():
    with pytest.raises(TypeError, match="supported: float32"):
        mg.tensor(np.zeros(2, dtype=np.float128))
    with pytest.raises(TypeError, match="unknown dtype 'float8'"):
        mg.zeros(2, dtype="float8")


def test_bfloat16_ops_stay_bfloat16():
    """NumPy's bfloat16 loops promote with Python floats to float32; ops must not."""
    x = mg.randn(4, 3).bfloat16().requires_grad_()
    for y in [x * 0.5, mg.gelu(x), mg.sigmoid(x), mg.softmax(x, dim=1), 2.0 - x, x / 3.0]:
        assert y.dtype is mg.bfloat16
    mg.gelu(x).sum().backward()
    assert x.grad.dtype is mg.bfloat16
    assert x.float().dtype is mg.float32
    assert x.sum(dtype=mg.float32).dtype is mg.float32


@pytest.mark.parametrize("make", [
    lambda: np.float64(1.5), lambda: [np.float64(1.5)], lambda: [np.float64(1.5), 2.0],
    lambda: [1.5, np.float64(2)], lambda: [np.int32(1)], lambda: np.int32(1),
    lambda: np.bool_(True), lambda: [np.float32(1), 2.0], lambda: [np.int32(1), 2],
    lambda: [[np.uint8(3)]], lambda: np.float16(2), lambda: [1, 2], lambda: [1.5],
    lambda: [np.complex128(1j)], lambda: [1j],
])  # fmt: skip
def test_numpy_scalars_in_data_keep_their_dtype_as_in_torch(make):
    torch = pytest.importorskip("torch")
    assert mg.tensor(make()).dtype.name == str(torch.tensor(make()).dtype)[6:]


@pytest.mark.parametrize("op", [
    lambda lib: lib.tensor([True]).add_(1),
    lambda lib: lib.tensor([1, 2]).add_(1.5),
    lambda lib: lib.ones(2).mul_(lib.tensor([1j, 1j])),
    lambda lib: lib.rand(2, dtype=lib.int64),
])  # fmt: skip
def test_results_that_cannot_be_cast_back_are_refused_as_in_torch(op):
    torch = pytest.importorskip("torch")
    with pytest.raises((RuntimeError, NotImplementedError)):
        op(torch)
    with pytest.raises((TypeError, RuntimeError)):
        op(mg)
