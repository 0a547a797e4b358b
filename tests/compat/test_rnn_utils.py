"""nn.utils.rnn: padding and packing match PyTorch, values and gradients."""

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad.nn.utils import rnn


def _pair(shape, seed):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence(batch_first, side):
    pairs = [_pair((n, 3), i) for i, n in enumerate([2, 5, 1])]
    out = rnn.pad_sequence([p[0] for p in pairs], batch_first, -1.0, side)
    ref = torch.nn.utils.rnn.pad_sequence([p[1] for p in pairs], batch_first, -1.0, side)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy())
    w = np.arange(ref.numel(), dtype=np.float32).reshape(ref.shape)
    (out * mg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for m, t in pairs:
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [[4, 3, 1], [2, 4, 3]])
def test_pack_and_pad_roundtrip(batch_first, lengths):
    shape = (3, 4, 2) if batch_first else (4, 3, 2)
    m, t = _pair(shape, 7)
    sorted_ = lengths == sorted(lengths, reverse=True)
    pm = rnn.pack_padded_sequence(m, lengths, batch_first, enforce_sorted=sorted_)
    pt = torch.nn.utils.rnn.pack_padded_sequence(t, lengths, batch_first, enforce_sorted=sorted_)
    np.testing.assert_allclose(pm.data.detach().numpy(), pt.data.detach().numpy())
    assert pm.batch_sizes.tolist() == pt.batch_sizes.tolist()
    if not sorted_:
        assert pm.sorted_indices.tolist() == pt.sorted_indices.tolist()
        assert pm.unsorted_indices.tolist() == pt.unsorted_indices.tolist()
    om, lm = rnn.pad_packed_sequence(pm, batch_first, padding_value=0.5, total_length=5)
    ot, lt = torch.nn.utils.rnn.pad_packed_sequence(pt, batch_first, 0.5, total_length=5)
    np.testing.assert_allclose(om.detach().numpy(), ot.detach().numpy())
    assert lm.tolist() == lt.tolist()
    (om * om).sum().backward()
    (ot * ot).sum().backward()
    np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-6)


def test_pack_sequence_and_unpack():
    pairs = [_pair((n, 2), i) for i, n in enumerate([3, 1, 2])]
    pm = rnn.pack_sequence([p[0] for p in pairs], enforce_sorted=False)
    pt = torch.nn.utils.rnn.pack_sequence([p[1] for p in pairs], enforce_sorted=False)
    np.testing.assert_allclose(pm.data.detach().numpy(), pt.data.detach().numpy())
    for a, b in zip(rnn.unpack_sequence(pm), torch.nn.utils.rnn.unpack_sequence(pt)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy())


def test_bad_input_errors():
    x = mg.zeros(4, 3, 2)
    with pytest.raises(RuntimeError, match="enforce_sorted=False"):
        rnn.pack_padded_sequence(x, [1, 3, 2])
    with pytest.raises(ValueError, match="lengths must lie"):
        rnn.pack_padded_sequence(x, [5, 3, 2])
    with pytest.raises(ValueError, match="trailing shape"):
        rnn.pad_sequence([mg.zeros(2, 3), mg.zeros(2, 4)])
    assert isinstance(rnn.pack_sequence([mg.zeros(2, 1)]), rnn.PackedSequence)
