"""Datasets and samplers: PyTorch's semantics on small in-memory data."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.data import (
    BatchSampler,
    ConcatDataset,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    random_split,
)
from manygrad.errors import ShapeError


def test_tensor_dataset_rows():
    x, y = mg.tensor(np.arange(12).reshape(6, 2)), np.arange(6) * 10
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    a, b = ds[4]
    assert a.tolist() == [8, 9] and b == 40
    with pytest.raises(ShapeError, match="same length"):
        TensorDataset(mg.zeros(3), mg.zeros(4))


def test_subset_concat_and_add():
    a = TensorDataset(np.arange(5))
    b = TensorDataset(np.arange(5, 8))
    c = a + b
    assert isinstance(c, ConcatDataset) and len(c) == 8
    assert [c[i][0] for i in range(8)] == list(range(8))
    assert c[-1][0] == 7
    with pytest.raises(IndexError):
        c[8]
    s = Subset(c, [7, 0, 3])
    assert [s[i][0] for i in range(3)] == [7, 0, 3]


def test_random_split_lengths_and_fractions():
    ds = TensorDataset(np.arange(10))
    parts = random_split(ds, [7, 3], generator=0)
    got = sorted(p[i][0] for p in parts for i in range(len(p)))
    assert [len(p) for p in parts] == [7, 3] and got == list(range(10))
    again = random_split(ds, [7, 3], generator=0)
    assert parts[0].indices == again[0].indices
    assert [len(p) for p in random_split(ds, [0.5, 0.3, 0.2], generator=1)] == [5, 3, 2]
    with pytest.raises(ValueError, match="sum of lengths"):
        random_split(ds, [4, 4])


def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    r = RandomSampler(range(20), generator=3)
    first = list(r)
    assert sorted(first) == list(range(20)) and first == list(r)
    r.set_epoch(1)
    assert list(r) != first and sorted(list(r)) == list(range(20))
    rep = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=0))
    assert len(rep) == 50 and set(rep) <= {0, 1, 2}
    mg.manual_seed(5)
    a = list(RandomSampler(range(10)))
    mg.manual_seed(5)
    assert list(RandomSampler(range(10))) == a
    assert list(BatchSampler(range(5), 2, drop_last=False)) == [[0, 1], [2, 3], [4]]
    assert list(BatchSampler(range(5), 2, drop_last=True)) == [[0, 1], [2, 3]]
    assert len(BatchSampler(range(5), 2, drop_last=False)) == 3
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(5), 0, False)


@pytest.mark.parametrize("n, world, drop_last", [(10, 3, False), (10, 3, True), (9, 3, False)])
def test_distributed_sampler_partitions(n, world, drop_last):
    ds = range(n)
    parts = [list(DistributedSampler(ds, world, r, seed=1, drop_last=drop_last))
             for r in range(world)]  # fmt: skip
    lens = {len(p) for p in parts}
    assert len(lens) == 1 and lens.pop() == len(
        DistributedSampler(ds, world, 0, drop_last=drop_last)
    )
    flat = [i for p in parts for i in p]
    if drop_last:
        assert len(set(flat)) == len(flat) == (n // world) * world
    else:
        assert set(flat) == set(range(n)) and len(flat) == -(-n // world) * world


def test_distributed_sampler_epochs_and_errors():
    s = DistributedSampler(range(16), 2, 0, seed=0)
    e0 = list(s)
    s.set_epoch(1)
    assert list(s) != e0
    assert list(DistributedSampler(range(6), 2, 1, shuffle=False)) == [1, 3, 5]
    with pytest.raises(ValueError, match="invalid rank"):
        DistributedSampler(range(4), 2, 2)
    with pytest.raises(RuntimeError, match="num_replicas and rank"):
        DistributedSampler(range(4))


def test_distributed_sampler_reads_the_process_group(monkeypatch):
    import sys
    import types

    fake = types.SimpleNamespace(is_initialized=lambda: True, get_rank=lambda: 2,
                                 get_world_size=lambda: 3)  # fmt: skip
    monkeypatch.setitem(sys.modules, "manygrad.distributed", fake)
    monkeypatch.setattr(mg, "distributed", fake, raising=False)
    s = DistributedSampler(range(9), shuffle=False)
    assert (s.rank, s.num_replicas) == (2, 3) and list(s) == [2, 5, 8]
