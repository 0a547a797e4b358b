"""Fixes found by the ports of round s (tests/ports/scripts), each against PyTorch."""

import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("make", [lambda lib: lib.arange(3), lambda lib: lib.tensor(1.5)])
def test_index_of_a_tensor_that_is_no_single_integer_is_a_type_error(make):
    # PyTorch: TypeError, which code that falls back on a loop catches
    for lib in (torch, mg):
        with pytest.raises(TypeError, match="only integer tensors of a single element"):
            [1, 2, 3][make(lib)]
    x = mg.zeros(4, 5)
    with pytest.raises(TypeError, match="converted to an index"):
        x[:, : 2 + mg.arange(2)]
    assert [1, 2, 3][mg.tensor(2)] == 3 and [1, 2, 3][torch.tensor(2)] == 3
