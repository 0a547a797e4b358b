"""Errors that PyTorch raises as RuntimeError are RuntimeErrors here too (and keep the
TypeError they were before): in-place results that can't be cast, the mean of integers,
subtraction of bools."""

import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

CASES = {
    "exp_ of int64": lambda lib: lib.ones(2, dtype=lib.int64).exp_(),
    "add_ of a float into int64": lambda lib: lib.ones(2, dtype=lib.int64).add_(lib.ones(2) * 0.5),
    "mean of int64": lambda lib: lib.arange(3).mean(),
    "bool - bool": lambda lib: lib.tensor([True]) - lib.tensor([False]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_runtime_error_as_pytorch(name):
    with pytest.raises(RuntimeError):
        CASES[name](torch)
    with pytest.raises(RuntimeError) as e:
        CASES[name](mg)
    assert isinstance(e.value, TypeError)  # NOTE: what manygrad raised before
