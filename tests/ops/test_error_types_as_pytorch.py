"""Errors that PyTorch raises as RuntimeError are RuntimeErrors here too (and keep the
TypeError they were before): in-place results that can't be cast, the mean of integers,
subtraction of bools."""

import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

CASES = {
    "exp_ of int64": lambda L: L.ones(2, dtype=L.int64).exp_(),
    "add_ of a float into int64": lambda L: L.ones(2, dtype=L.int64).add_(L.ones(2) * 0.5),
    "mean of int64": lambda L: L.arange(3).mean(),
    "bool - bool": lambda L: L.tensor([True]) - L.tensor([False]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_runtime_error_as_pytorch(name):
    with pytest.raises(RuntimeError):
        CASES[name](torch)
    with pytest.raises(RuntimeError) as e:
        CASES[name](mg)
    assert isinstance(e.value, TypeError)  # NOTE: what manygrad raised before
