"""manygrad.utils.data against torch.utils.data: the same program on both, same results."""

import collections
import warnings

import numpy as np
import pytest

import manygrad as mg
import manygrad.utils.data as M

torch = pytest.importorskip("torch")
T = torch.utils.data

P = collections.namedtuple("P", "x y")


class LS(list):
    pass


def plain(x):
    """A comparable picture of a batch: containers by type, tensors as (dtype, values)."""
    if isinstance(x, (torch.Tensor, mg.Tensor)):
        return ("tensor", str(x.dtype).split(".")[-1], tuple(x.shape), x.tolist())
    if isinstance(x, np.ndarray):
        return ("ndarray", str(x.dtype), x.tolist())
    if isinstance(x, dict):
        return (type(x).__name__, [(k, plain(v)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [plain(v) for v in x])
    return x


def both(fn):
    """``fn(data_module, torch_like_module)`` on PyTorch and on manygrad."""
    return fn(T, torch), fn(M, mg)


def same(fn):
    want, got = both(fn)
    assert plain(got) == plain(want)


def same_error(fn, exc):
    with pytest.raises(exc):
        fn(T, torch)
    with pytest.raises(exc):
        fn(M, mg)


class Seq:
    def __init__(self, f, n=5):
        self.f, self.n = f, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.f(i)


def stream(m, n=5):
    class Stream(m.IterableDataset):
        def __iter__(self):
            return iter(range(n))

        def __len__(self):
            return n

    return Stream()


COLLATE = [
    [collections.OrderedDict(a=1, b=2.0), collections.OrderedDict(a=3, b=4.0)],
    [collections.defaultdict(int, a=1), collections.defaultdict(int, a=2)],
    [LS([1, 2]), LS([3, 4])],
    [(1, "a"), (2, "b")],
    [(np.zeros(2, np.float32), b"x"), (np.ones(2, np.float32), b"y")],
    [{"a": [(1, 2.0)]}, {"a": [(3, 4.0)]}],
    [P(1, [2.0]), P(3, [4.0])],
    [np.float32(1), np.float32(2)],
    [np.array(1.0), np.array(2.0)],
    [True, False],
]


@pytest.mark.parametrize("batch", COLLATE, ids=range(len(COLLATE)))
def test_default_collate_keeps_container_types_like_torch(batch):
    same(lambda m, lib: m.default_collate(batch))
    same(lambda m, lib: m.dataloader.default_collate(batch))


CONVERT = [
    np.arange(3),
    np.float32(2),
    (np.arange(2), 1),
    {"a": np.arange(2), "s": "x"},
    P(np.arange(2), 1),
    np.array(["a", "b"]),
]


@pytest.mark.parametrize("data", CONVERT, ids=range(len(CONVERT)))
def test_default_convert_gives_tensors_like_torch(data):
    same(lambda m, lib: m.default_convert(data))
    same(lambda m, lib: m.dataloader.default_convert(data))


def test_default_collate_of_tensors_keeps_the_graph():
    def run(m, lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        m.default_collate([x, x * 3]).sum().backward()
        return x.grad

    same(run)


def test_collate_fn_map_extends_default_collate():
    from manygrad.utils.data._utils.collate import collate, default_collate_fn_map

    class Box:
        def __init__(self, v):
            self.v = v

    def boxes(batch, *, collate_fn_map=None):
        return [b.v for b in batch]

    batch = [{"x": np.full(2, i, np.float32), "b": Box(i)} for i in range(3)]
    got = collate(batch, collate_fn_map={**default_collate_fn_map, Box: boxes})
    want = T._utils.collate.collate(
        batch, collate_fn_map={**T._utils.collate.default_collate_fn_map, Box: boxes}
    )
    assert plain(got) == plain(want)
    same_error(lambda m, lib: m.default_collate([Box(1), Box(2)]), TypeError)
    same_error(lambda m, lib: m.default_collate([np.array(["a"]), np.array(["b"])]), TypeError)
    same_error(lambda m, lib: m.default_collate([[1, 2], [3]]), RuntimeError)


SAMPLES = {
    "tuple": lambda i: (np.full(2, i, np.float32), i),
    "np scalar": lambda i: np.float32(i),
    "np strings": lambda i: np.array([str(i)]),
    "ordered dict": lambda i: collections.OrderedDict(a=i, s=str(i)),
    "tuple with str": lambda i: (i, str(i)),
}


@pytest.mark.parametrize("batch_size", [2, None])
@pytest.mark.parametrize("nw", [0, 2])
@pytest.mark.parametrize("kind", list(SAMPLES))
def test_loader_batches_match_torch(kind, nw, batch_size):
    if kind == "np strings" and batch_size is not None:
        same_error(lambda m, lib: list(m.DataLoader(Seq(SAMPLES[kind]), batch_size=2)), TypeError)
        return
    want = list(T.DataLoader(Seq(SAMPLES[kind]), batch_size=batch_size))
    got = list(M.DataLoader(Seq(SAMPLES[kind]), batch_size=batch_size, num_workers=nw))
    assert plain(got) == plain(want)


@pytest.mark.parametrize("nw", [0, 2])
def test_iterable_drop_last_drops_the_short_batch(nw):
    want = sorted(b.tolist() for b in T.DataLoader(stream(T), batch_size=2, drop_last=True))
    got = [
        b.tolist() for b in M.DataLoader(stream(M), batch_size=2, drop_last=True, num_workers=nw)
    ]
    per_worker = max(nw, 1)  # every worker streams the whole dataset, as in PyTorch
    assert sorted(got) == sorted(want * per_worker)


def test_iterable_datasets_add_to_a_chain():
    same(lambda m, lib: list(stream(m) + stream(m, 2)))
    same(lambda m, lib: len(stream(m) + stream(m, 2)))


def test_len_of_a_sampler_without_len_is_a_type_error():
    def run(m, lib):
        class NoLen(m.Sampler):
            def __iter__(self):
                return iter(range(3))

        return len(m.DataLoader(range(3), sampler=NoLen()))

    same_error(run, TypeError)


def test_sampler_arguments_are_checked_like_torch():
    same_error(lambda m, lib: m.RandomSampler(range(3), replacement=1), TypeError)
    same_error(lambda m, lib: m.BatchSampler(range(3), 2, drop_last=1), ValueError)
    same_error(lambda m, lib: m.random_split(range(10), [1.5, -0.5]), ValueError)
    same_error(lambda m, lib: m.DataLoader(range(3), num_workers=1, prefetch_factor=-1), ValueError)


def test_random_split_warns_about_an_empty_split():
    def run(m, lib):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            sizes = [len(s) for s in m.random_split(range(3), [0.0, 1.0])]
        return sizes, ["is 0" in str(x.message) for x in w]

    same(run)


def test_subset_passes_list_indices_and_reads_batches():
    same(lambda m, lib: m.Subset(m.TensorDataset(lib.arange(10) * 2), [9, 3, 1])[[0, 2]])
    same(
        lambda m, lib: m.Subset(m.TensorDataset(lib.arange(10) * 2), [9, 3, 1]).__getitems__([0, 2])
    )
    same(lambda m, lib: type(m.Subset(range(5), range(2)).indices).__name__)

    def getitems(m, lib, nw=0):
        class Batched(m.Dataset):
            def __len__(self):
                return 6

            def __getitem__(self, i):
                return i

            def __getitems__(self, idx):
                return [100 + i for i in idx]

        loader = m.DataLoader(Batched(), batch_size=4, num_workers=nw)
        sub = m.DataLoader(m.Subset(Batched(), [5, 0, 2]), batch_size=2)
        return [b.tolist() for b in loader], [b.tolist() for b in sub]

    want = getitems(T, torch)
    assert plain(getitems(M, mg)) == plain(want)
    assert plain(getitems(M, mg, nw=2)) == plain(want)


def test_stack_dataset_getitems():
    same(lambda m, lib: m.StackDataset(range(5), range(10, 15)).__getitems__([1, 3]))
    same(lambda m, lib: m.StackDataset(a=range(5), b=range(10, 15)).__getitems__([1, 3]))


def test_loader_takes_torchs_keywords_and_has_its_attributes():
    def attrs(m, lib):
        d = m.DataLoader(range(4), batch_size=2, pin_memory_device="", in_order=False)
        s = m.DataLoader(range(4), shuffle=True)
        w = m.DataLoader(range(4), num_workers=1)
        return [
            [b.tolist() for b in d],
            d.generator,
            d.prefetch_factor,
            w.prefetch_factor,
            d.in_order,
            d.pin_memory_device,
            s.sampler.generator is None,
        ]

    same(attrs)


def test_manual_seed_before_an_epoch_fixes_its_shuffle():
    def run(m, lib):
        d = m.DataLoader(range(20), shuffle=True, batch_size=20)
        lib.manual_seed(5)
        a = [b.tolist() for b in d]
        lib.manual_seed(5)
        b = [b.tolist() for b in d]
        c = [b.tolist() for b in d]
        return a == b, a != c

    same(run)
