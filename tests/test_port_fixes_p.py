"""Fixes found while porting round "p" of the PyTorch programs (tests/ports/scripts)."""

import numpy as np
import pytest
import torch

import manygrad as mg


def _both(fn):
    """Run ``fn(lib)`` with PyTorch and with manygrad; return both results as arrays."""
    want, have = fn(torch), fn(mg)
    return np.asarray(want.tolist()), np.asarray(have.tolist())


@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_"])
@pytest.mark.parametrize(
    "other",
    [
        lambda lib: lib.tensor(0.1234567891234, dtype=lib.float64),  # 0-d float64: stays f32
        lambda lib: lib.tensor(16777217),  # 0-d int64: converted to float32 first
    ],
)
def test_inplace_on_float32_with_0d_tensor_computes_in_float32(op, other):
    def run(lib):
        x = lib.from_numpy(np.random.default_rng(0).standard_normal(4096).astype(np.float32))
        getattr(x, op)(other(lib))
        assert x.dtype == lib.float32
        return x

    want, have = _both(run)
    np.testing.assert_array_equal(have, want)


@pytest.mark.parametrize(
    "step",
    [
        lambda lib, x: x.sub_(3),
        lambda lib, x: x.add_(-7),
        lambda lib, x: x.sub_(lib.ones(5, dtype=lib.uint8)),
        lambda lib, x: x.add_(lib.ones(5, dtype=lib.uint8), alpha=-3),
        lambda lib, x: x.mul_(lib.tensor(100)),
    ],
)
def test_inplace_unsigned_wraps_around(step):
    def run(lib):
        x = lib.arange(5, dtype=lib.uint8)
        step(lib, x)
        assert x.dtype == lib.uint8
        return x

    want, have = _both(run)
    np.testing.assert_array_equal(have, want)


def test_inplace_float16_by_python_number_scales_in_float32():
    def run(lib):
        x = lib.arange(8, dtype=lib.float16)
        x.mul_(0.1)
        return x

    want, have = _both(run)
    np.testing.assert_array_equal(have, want)


@pytest.mark.parametrize(
    "bad,result",
    [
        (lambda lib: lib.tensor([1, 2]).add_(1.5), "float32"),
        (lambda lib: lib.tensor([1, 2]).div_(2), "float32"),
        (lambda lib: lib.tensor([1, 2]).add_(lib.tensor([1.5])), "float32"),
        (lambda lib: lib.tensor([1, 2]).mul_(lib.tensor(1.5, dtype=lib.float64)), "float64"),
    ],
)
def test_inplace_refusal_names_pytorchs_result_type(bad, result):
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        bad(torch)
    with pytest.raises(RuntimeError, match=f"result type {result} can't be cast .* int64"):
        bad(mg)
