"""PyTorch parity: small gaps found by running common PyTorch programs."""

import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_is_contiguous_in_a_layout_of_another_rank_is_false(lib):
    t = torch if lib == "torch" else mg
    a = t.ones(3, 4)
    assert a.is_contiguous(memory_format=t.channels_last) is False
    assert a.is_contiguous(memory_format=t.channels_last_3d) is False
    assert t.ones(2, 3, 4, 5).is_contiguous(memory_format=t.channels_last_3d) is False
    assert (
        t.ones(2, 3, 4, 5)
        .contiguous(memory_format=t.channels_last)
        .is_contiguous(memory_format=t.channels_last)
    )
    with pytest.raises(RuntimeError, match="rank 4"):
        a.contiguous(memory_format=t.channels_last)
    with pytest.raises(RuntimeError, match="rank 4"):
        a.to(memory_format=t.channels_last)
