"""WeightedRandomSampler, ChainDataset and StackDataset behave as PyTorch's."""

import numpy as np
import pytest

import manygrad as mg


class Stream(mg.data.IterableDataset):
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


def test_weighted_sampler_frequencies_and_seeding():
    w = [0.0, 1.0, 3.0]
    s = mg.data.WeightedRandomSampler(w, 6000, generator=0)
    idx = list(s)
    assert len(s) == len(idx) == 6000 and all(isinstance(i, int) for i in idx)
    freq = np.bincount(idx, minlength=3) / 6000
    np.testing.assert_allclose(freq, [0.0, 0.25, 0.75], atol=0.03)
    a = list(mg.data.WeightedRandomSampler(mg.tensor(w), 20, generator=3))
    b = list(mg.data.WeightedRandomSampler(w, 20, generator=3))
    assert a == b
    no_rep = list(mg.data.WeightedRandomSampler([1, 1, 1, 0], 3, replacement=False))
    assert sorted(no_rep) == [0, 1, 2]
    g = mg.Generator().manual_seed(5)
    c = list(mg.data.WeightedRandomSampler(w, 10, generator=g))
    g.manual_seed(5)
    assert list(mg.data.WeightedRandomSampler(w, 10, generator=g)) == c


def test_weighted_sampler_in_a_loader():
    ds = mg.data.TensorDataset(mg.arange(4).float())
    s = mg.data.WeightedRandomSampler([0, 0, 1, 0], 5)
    (batch,) = next(iter(mg.data.DataLoader(ds, batch_size=5, sampler=s)))
    assert batch.tolist() == [2.0] * 5


def test_weighted_sampler_bad_input():
    with pytest.raises(ValueError, match="num_samples"):
        mg.data.WeightedRandomSampler([1.0], 0)
    with pytest.raises(ValueError, match="replacement"):
        mg.data.WeightedRandomSampler([1.0], 1, replacement=1)
    with pytest.raises(ValueError, match="without replacement"):
        mg.data.WeightedRandomSampler([1.0, 0.0], 3, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        mg.data.WeightedRandomSampler([1.0, -1.0], 2)


def test_chain_and_stack_datasets():
    ch = mg.data.ChainDataset([Stream([1, 2]), Stream([3])])
    assert list(ch) == [1, 2, 3] and len(ch) == 3
    assert [b.tolist() for b in mg.data.DataLoader(ch, batch_size=2)] == [[1, 2], [3]]
    with pytest.raises(TypeError, match="IterableDataset"):
        list(mg.data.ChainDataset([[1, 2]]))
    st = mg.data.StackDataset([1, 2, 3], ["a", "b", "c"])
    assert st[1] == (2, "b") and len(st) == 3
    kd = mg.data.StackDataset(x=[1, 2], y=[3, 4])
    assert kd[0] == {"x": 1, "y": 3}
    with pytest.raises(ValueError, match="lengths"):
        mg.data.StackDataset([1], [1, 2])
