"""manygrad.utils.data against torch.utils.data: loader arguments, workers, samplers and
datasets, the same program run on both."""

import collections
import multiprocessing as mp
import random
import warnings

import numpy as np
import pytest

import manygrad as mg
import manygrad.utils.data as M

torch = pytest.importorskip("torch")
T = torch.utils.data

LIBS = [(M, mg), (T, torch)]


def lib(mod):
    return mg if mod is M else torch


class Squares:
    """A map-style dataset that is neither a Dataset of torch nor of manygrad."""

    def __init__(self, n=6):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i * i


class Who:
    """Each sample says which worker loaded it, and what get_worker_info() said."""

    def __init__(self, mod_name, n=6):
        self.mod_name, self.n = mod_name, n
        self.tag = "main"

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        mod = M if self.mod_name == "mg" else T
        w = mod.get_worker_info()
        return (i, w.id, w.num_workers, w.seed, w.dataset is self, self.tag)


def tag_worker(wid):
    info = M.get_worker_info() or T.get_worker_info()
    info.dataset.tag = f"w{wid}"


class Failing:
    def __init__(self, exc=ValueError):
        self.exc = exc

    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise self.exc("sample 2 is broken")
        return i


def stream_class(mod, n=10, length=None, shard=True):
    class Stream(mod.IterableDataset):
        def __iter__(self):
            w = mod.get_worker_info()
            if w is None or not shard:
                return iter(range(n))
            return iter(range(w.id, n, w.num_workers))

    if length is not None:
        Stream.__len__ = lambda self: length
    return Stream()


def outcome(fn):
    """('ok', value) or ('err', exception class), for comparing the two libraries."""
    try:
        return ("ok", fn())
    except Exception as e:
        return ("err", type(e))


def same_outcome(fn_for):
    got, want = outcome(lambda: fn_for(M, mg)), outcome(lambda: fn_for(T, torch))
    assert got[0] == want[0], (got, want)
    if got[0] == "err":
        assert issubclass(got[1], want[1]), (got, want)
    return got, want


def as_lists(batches):
    return [b.tolist() if hasattr(b, "tolist") else b for b in batches]


# ---------------------------------------------------------------- loader arguments

ARGUMENT_CASES = {
    "batch_size=None with drop_last": dict(batch_size=None, drop_last=True),
    "shuffle with sampler": dict(shuffle=True, sampler=[0, 1]),
    "batch_sampler with batch_size": dict(batch_size=2, batch_sampler=[[0, 1]]),
    "batch_sampler with drop_last": dict(drop_last=True, batch_sampler=[[0, 1]]),
    "batch_sampler with shuffle": dict(shuffle=True, batch_sampler=[[0, 1]]),
    "batch_sampler with sampler": dict(sampler=[0], batch_sampler=[[0, 1]]),
    "batch_sampler with shuffle=False": dict(shuffle=False, batch_sampler=[[0, 1]]),
    "sampler with shuffle=False": dict(shuffle=False, sampler=[3, 1]),
    "batch_size=0": dict(batch_size=0),
    "batch_size=2.0": dict(batch_size=2.0),
    "num_workers=-1": dict(num_workers=-1),
    "timeout=-1": dict(timeout=-1),
    "prefetch_factor without workers": dict(prefetch_factor=2),
    "prefetch_factor=-1": dict(num_workers=2, prefetch_factor=-1),
    "persistent_workers without workers": dict(persistent_workers=True),
    "multiprocessing_context without workers": dict(multiprocessing_context="spawn"),
    "multiprocessing_context unknown": dict(num_workers=2, multiprocessing_context="bogus"),
    "multiprocessing_context of a bad type": dict(num_workers=2, multiprocessing_context=3),
}


@pytest.mark.parametrize("case", list(ARGUMENT_CASES))
def test_loader_arguments_are_checked_like_torch(case):
    kw = ARGUMENT_CASES[case]
    same_outcome(lambda mod, _: mod.DataLoader(Squares(), **kw) and None)


@pytest.mark.parametrize("kw", [dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])])
def test_iterable_dataset_refuses_an_order_like_torch(kw):
    got, _ = same_outcome(lambda mod, _: mod.DataLoader(stream_class(mod), **kw) and None)
    with pytest.raises(ValueError, match=f"expected unspecified {list(kw)[0]} option"):
        M.DataLoader(stream_class(M), **kw)


@pytest.mark.parametrize(
    "name", ["batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers"]
)
def test_loader_attributes_are_frozen_after_init_like_torch(name):
    got, want = same_outcome(lambda mod, _: setattr(mod.DataLoader(Squares()), name, None))
    assert got[0] == "err"
    M.DataLoader(Squares()).collate_fn = None  # others stay settable, as in PyTorch


def test_multiprocessing_context_name_becomes_a_context():
    ld = M.DataLoader(Squares(), num_workers=2, multiprocessing_context="spawn")
    want = T.DataLoader(Squares(), num_workers=2, multiprocessing_context="spawn")
    assert type(ld.multiprocessing_context) is type(want.multiprocessing_context)
    assert ld.worker_type == "process"  # a start method asks for process workers
    assert M.DataLoader(Squares(), num_workers=2).worker_type == "thread"


@pytest.mark.parametrize("nw", [0, 2])
@pytest.mark.parametrize("iterable", [False, True])
def test_collate_fn_applies_without_auto_batching(nw, iterable):
    def run(mod, _):
        ds = stream_class(mod, 4, shard=True) if iterable else Squares(4)
        ld = mod.DataLoader(ds, batch_size=None, num_workers=nw, collate_fn=lambda s: ("c", s))
        return sorted(ld)

    got, want = same_outcome(run)
    assert got == want


def test_pin_memory_without_an_accelerator_warns_like_torch():
    def warned(mod):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = as_lists(mod.DataLoader(Squares(), batch_size=3, pin_memory=True))
        return out, [str(x.message) for x in w if "pin_memory" in str(x.message)]

    if mg.cuda.is_available():
        pytest.skip("a GPU pins memory for real")
    (got, got_w), (want, want_w) = warned(M), warned(T)
    assert got == want and got_w == want_w


@pytest.mark.parametrize(
    "kw", [dict(batch_size=4), dict(batch_size=4, drop_last=True), dict(batch_size=None)]
)
def test_len_of_loader_and_its_iterator(kw):
    for ds in (Squares(10), None):
        for mod in (M, T):
            d = ds if ds is not None else stream_class(mod, 10, length=10)
            ld = mod.DataLoader(d, **kw)
            n = len(ld)
            if mod is M:
                n_mg = n
            else:
                assert n_mg == n
        if ds is not None:
            assert len(iter(M.DataLoader(ds, **kw))) == len(iter(T.DataLoader(ds, **kw)))


@pytest.mark.parametrize("nw", [0, 2])
def test_iterable_dataset_longer_than_its_len_warns_like_torch(nw):
    def run(mod, _):
        ld = mod.DataLoader(stream_class(mod, 6, length=4, shard=True), batch_size=None,
                            num_workers=nw)  # fmt: skip
        len(ld)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = sorted(int(x) for x in ld)
        return out, sum("was reported to be 4" in str(x.message) for x in w)

    got, want = same_outcome(run)
    assert got == want


def test_reiterating_and_generator_reproducibility():
    def orders(mod, tm, seed):
        ld = mod.DataLoader(Squares(8), batch_size=3, shuffle=True,
                            generator=tm.Generator().manual_seed(seed))  # fmt: skip
        return [as_lists(ld) for _ in range(3)]

    for mod, tm in LIBS:
        a, b, c = orders(mod, tm, 1), orders(mod, tm, 1), orders(mod, tm, 2)
        assert a == b and a != c
        assert a[0] != a[1]  # each epoch its own order
        assert all(sorted(sum(e, [])) == [i * i for i in range(8)] for e in a)
    seq = [as_lists(mod.DataLoader(Squares(7), batch_size=3)) for mod in (M, T)]
    assert seq[0] == seq[1]


# ---------------------------------------------------------------- workers


@pytest.mark.parametrize("ctx", [None, "fork"])
def test_worker_info_seeds_and_init_fn_match_torch(ctx):
    if ctx == "fork" and "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork here")

    def run(mod, tm, seed):
        name = "mg" if mod is M else "torch"
        ld = mod.DataLoader(Who(name), batch_size=None, num_workers=2, worker_init_fn=tag_worker,
                            generator=tm.Generator().manual_seed(seed),
                            multiprocessing_context=ctx)  # fmt: skip
        return [sorted(tuple(x) for x in ld) for _ in range(2)]

    got, want = run(M, mg, 5), run(T, torch, 5)
    for rows, ref in zip(got, want):
        # index, worker id, num_workers, dataset is the worker's own, tag set by init_fn
        assert [r[:3] + r[4:] for r in rows] == [r[:3] + r[4:] for r in ref]
        assert {r[3] - r[1] for r in rows} == {rows[0][3]}  # seed = base_seed + id
    assert got == run(M, mg, 5)  # the seeds follow the generator
    assert got[0][0][3] != got[1][0][3]  # a new base seed for each iter(loader)
    assert run(M, mg, 6)[0][0][3] != got[0][0][3]


def _draws(_):
    return (M.get_worker_info().id, random.random(), float(np.random.rand()),
            float(mg.rand(()).item()))  # fmt: skip


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork here")
def test_process_workers_seed_every_rng_from_the_generator():
    def run(seed):
        ld = M.DataLoader(Squares(4), batch_size=None, num_workers=2, collate_fn=_draws,
                          multiprocessing_context="fork",
                          generator=mg.Generator().manual_seed(seed))  # fmt: skip
        return sorted(ld)

    a = run(3)
    assert a == run(3) and a != run(4)
    assert a[0][1:] != a[2][1:]  # the two workers draw different numbers


@pytest.mark.parametrize("kind", ["thread", "process"])
@pytest.mark.parametrize("exc", [ValueError, KeyError])
def test_worker_error_is_reraised_like_torch(kind, exc):
    ctx = "fork" if kind == "process" and "fork" in mp.get_all_start_methods() else None
    ld = M.DataLoader(Failing(exc), num_workers=2, worker_type=kind, multiprocessing_context=ctx)
    with pytest.raises(exc) as got:
        list(ld)
    with pytest.raises(exc) as want:
        list(T.DataLoader(Failing(exc), num_workers=2))
    head = f"Caught {exc.__name__} in DataLoader worker process 0."
    assert str(want.value).startswith(head) or repr(want.value).startswith(head)
    text = str(got.value)
    assert text.startswith(head) and "Original Traceback" in text
    assert "sample 2 is broken" in text and "__getitem__" in text and "index 2" in text
    with pytest.raises(exc):  # the loader still works: a new iteration starts afresh
        list(ld)
    assert as_lists(M.DataLoader(Failing(), num_workers=2, sampler=[0, 1, 3])) == [[0], [1], [3]]


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_iterable_dataset_sharded_by_worker_matches_torch(kind):
    ctx = "fork" if kind == "process" and "fork" in mp.get_all_start_methods() else None
    got = as_lists(M.DataLoader(stream_class(M, 11), batch_size=2, num_workers=2,
                                worker_type=kind, multiprocessing_context=ctx))  # fmt: skip
    want = as_lists(T.DataLoader(stream_class(T, 11), batch_size=2, num_workers=2))
    assert got == want
    dup = as_lists(M.DataLoader(stream_class(M, 3, shard=False), num_workers=2))
    assert sorted(dup) == [[0], [0], [1], [1], [2], [2]]


def test_persistent_workers_and_timeout():
    ld = M.DataLoader(Who("mg", 4), batch_size=None, num_workers=2, persistent_workers=True)
    first, second = sorted(tuple(x) for x in ld), sorted(tuple(x) for x in ld)
    assert first == second  # the same workers (and seeds) serve both epochs
    ld.shutdown()
    assert M.DataLoader(Squares(), num_workers=2, timeout=5).timeout == 5


# ---------------------------------------------------------------- samplers

DIST_CASES = [
    (10, 3, True, False, 0, 0),
    (10, 3, True, True, 0, 0),
    (10, 3, False, False, 0, 0),
    (10, 3, False, True, 0, 0),
    (11, 4, True, False, 2, 7),
    (7, 2, True, True, 5, 1),
    (2, 4, True, False, 0, 0),
    (100, 8, True, False, 3, 123456789),
]


@pytest.mark.parametrize("n, replicas, shuffle, drop_last, epoch, seed", DIST_CASES)
def test_distributed_sampler_gives_torchs_indices(n, replicas, shuffle, drop_last, epoch, seed):
    def shards(mod):
        out = []
        for rank in range(replicas):
            s = mod.DistributedSampler(range(n), num_replicas=replicas, rank=rank,
                                       shuffle=shuffle, seed=seed, drop_last=drop_last)  # fmt: skip
            s.set_epoch(epoch)
            out.append((list(s), len(s), s.num_samples, s.total_size))
        return out

    assert shards(M) == shards(T)


def test_distributed_sampler_errors_like_torch():
    same_outcome(lambda mod, _: mod.DistributedSampler(range(4)))
    same_outcome(lambda mod, _: mod.DistributedSampler(range(4), num_replicas=2, rank=2))
    same_outcome(lambda mod, _: mod.DistributedSampler(range(4), num_replicas=2, rank=-1))


SAMPLER_CASES = {
    "RandomSampler of an empty dataset": lambda m, t: m.RandomSampler([]),
    "RandomSampler replacement=1": lambda m, t: m.RandomSampler(range(3), replacement=1),
    "RandomSampler num_samples=0": lambda m, t: m.RandomSampler(range(3), num_samples=0),
    "RandomSampler lengths": lambda m, t: (
        len(m.RandomSampler(range(4), num_samples=9)),
        sorted(collections.Counter(m.RandomSampler(range(4), num_samples=9)).values()),
        len(list(m.RandomSampler(range(4), True, 7))),
    ),
    "SubsetRandomSampler": lambda m, t: (sorted(m.SubsetRandomSampler([5, 3, 9])), 3),
    "SequentialSampler": lambda m, t: list(m.SequentialSampler(range(4))),
    "BatchSampler": lambda m, t: [
        (list(m.BatchSampler(range(7), 3, d)), len(m.BatchSampler(range(7), 3, d)))
        for d in (False, True)
    ],
    "BatchSampler batch_size=True": lambda m, t: m.BatchSampler(range(3), True, False),
    "BatchSampler drop_last=1": lambda m, t: m.BatchSampler(range(3), 2, 1),
    "WRS 2-d weights": lambda m, t: m.WeightedRandomSampler([[1.0, 1.0]], 2),
    "WRS num_samples=0": lambda m, t: m.WeightedRandomSampler([1.0], 0),
    "WRS replacement=1": lambda m, t: m.WeightedRandomSampler([1.0], 1, replacement=1),
    "WRS text weights": lambda m, t: m.WeightedRandomSampler("ab", 2),
    "WRS nan weights": lambda m, t: list(m.WeightedRandomSampler([1.0, float("nan")], 2)),
    "WRS inf weights": lambda m, t: list(m.WeightedRandomSampler([1.0, float("inf")], 2)),
    "WRS zero weights": lambda m, t: list(m.WeightedRandomSampler([0.0, 0.0], 2)),
    "WRS more than len without replacement": lambda m, t: list(
        m.WeightedRandomSampler([1.0, 1.0], 3, replacement=False)
    ),
    "WRS zero weights come last without replacement": lambda m, t: [
        sorted(list(m.WeightedRandomSampler([1.0, 0.0, 2.0, 0.0], 4, False))[:2]) for _ in range(5)
    ],
    "WRS weights attribute": lambda m, t: (
        type(m.WeightedRandomSampler([1, 2], 2).weights).__name__,
        str(m.WeightedRandomSampler([1, 2], 2).weights.dtype).split(".")[-1],
        m.WeightedRandomSampler([1, 2], 2).weights.tolist(),
    ),
}


@pytest.mark.parametrize("case", list(SAMPLER_CASES))
def test_samplers_behave_like_torch(case):
    got, want = same_outcome(SAMPLER_CASES[case])
    if got[0] == "ok":
        assert got == want


def test_samplers_with_a_generator_reproduce_and_advance():
    for mod, tm in LIBS:
        for make in (
            lambda g, mod=mod: mod.RandomSampler(range(20), generator=g),
            lambda g, mod=mod: mod.SubsetRandomSampler(list(range(20)), generator=g),
            lambda g, mod=mod: mod.WeightedRandomSampler([1.0] * 20, 20, generator=g),
        ):
            s1, s2 = make(tm.Generator().manual_seed(0)), make(tm.Generator().manual_seed(0))
            a = list(s1)
            assert a == list(s2) and list(s1) != a  # same seed, same order; then it moves on


# ---------------------------------------------------------------- datasets and collate

NT = collections.namedtuple("NT", "a b")

DATASET_CASES = {
    "ConcatDataset": lambda m, t: (
        m.ConcatDataset([range(3), range(10, 12)]).cumulative_sizes,
        [m.ConcatDataset([range(3), range(10, 12)])[i] for i in (-1, -5, 3, 0)],
    ),
    "ConcatDataset index past the start": lambda m, t: m.ConcatDataset([range(3)])[-4],
    "ConcatDataset index past the end": lambda m, t: m.ConcatDataset([range(3)])[3],
    "Subset": lambda m, t: (len(m.Subset(range(10), [1, 5])), m.Subset(range(10), [1, 5])[-1]),
    "Subset __getitems__": lambda m, t: m.Subset(list(range(10)), [1, 5, 7]).__getitems__([0, 2]),
    "random_split fractions": lambda m, t: [
        len(s) for s in m.random_split(range(10), [0.33, 0.33, 0.34])
    ],
    "random_split sizes": lambda m, t: [len(s) for s in m.random_split(range(7), [0.5, 0.5])],
    "random_split wrong sum": lambda m, t: m.random_split(range(10), [3, 3]),
    "random_split bad fraction": lambda m, t: m.random_split(range(10), [0.5, 0.6]),
    "random_split seeded": lambda m, t: [
        sorted(a.indices) == sorted(b.indices)
        for a, b in zip(
            m.random_split(range(10), [5, 5], generator=t.Generator().manual_seed(1)),
            m.random_split(range(10), [5, 5], generator=t.Generator().manual_seed(1)),
        )
    ],
    "StackDataset": lambda m, t: (
        m.StackDataset(range(3), range(10, 13))[1],
        m.StackDataset(a=range(3), b=range(3))[2],
        m.StackDataset(range(3), range(10, 13)).__getitems__([0, 2]),
    ),
    "StackDataset of unequal lengths": lambda m, t: m.StackDataset(range(3), range(2)),
    "TensorDataset": lambda m, t: [
        x.tolist() for x in m.TensorDataset(t.arange(4), t.arange(4) * 2)[1]
    ],
}


@pytest.mark.parametrize("case", list(DATASET_CASES))
def test_datasets_behave_like_torch(case):
    got, want = same_outcome(DATASET_CASES[case])
    assert got == want or got[0] == "err"


def test_chain_dataset_and_iterable_add_like_torch():
    def run(mod, _):
        class Part(mod.IterableDataset):
            def __init__(self, r):
                self.r = r

            def __iter__(self):
                return iter(self.r)

            def __len__(self):
                return len(self.r)

        a, b = Part(range(2)), Part(range(5, 7))
        both = a + b
        return (type(both).__name__, list(both), len(both), list(a.__add__(b) + a),
                list(mod.ChainDataset([a, b])))  # fmt: skip

    got, want = same_outcome(run)
    assert got == want


def picture(x):
    if isinstance(x, (torch.Tensor, mg.Tensor)):
        return ("tensor", str(x.dtype).split(".")[-1], x.tolist())
    if isinstance(x, dict):
        return (type(x).__name__, {k: picture(v) for k, v in x.items()})
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [picture(v) for v in x])
    return (type(x).__name__, x.tolist() if isinstance(x, np.ndarray) else x)


COLLATE_CASES = [
    [{"a": {"b": np.ones(2), "c": 1}, "s": "x"}, {"a": {"b": np.zeros(2), "c": 2}, "s": "y"}],
    [NT(np.float32(1), {"k": b"x"}), NT(np.float32(2), {"k": b"y"})],
    [(np.arange(3, dtype=np.int16), "s", True), (np.arange(3, dtype=np.int16), "t", False)],
    [collections.OrderedDict(a=1.5), collections.OrderedDict(a=2.5)],
]


@pytest.mark.parametrize("batch", COLLATE_CASES)
def test_default_collate_and_convert_like_torch(batch):
    assert picture(M.default_collate(batch)) == picture(T.default_collate(batch))
    assert picture(M.default_convert(batch[0])) == picture(T.default_convert(batch[0]))
    loaded = [picture(next(iter(mod.DataLoader(batch, batch_size=2)))) for mod in (M, T)]
    assert loaded[0] == loaded[1]
