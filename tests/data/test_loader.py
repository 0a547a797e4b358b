"""DataLoader: batching, order and randomness for any worker count, errors, shutdown."""

import gc
import threading
import time
import warnings

import numpy as np
import pytest
from _helpers import Augmented, Failing, Slow, Squares, Stream, WhoLoads, init_marker

import manygrad as mg
from manygrad.data import DataLoader, SkippedSamplesWarning, TensorDataset, default_collate
from manygrad.errors import DTypeError, ShapeError

WORKERS = [(0, "thread"), (1, "thread"), (3, "thread"), (2, "process")]


def _ids(loader):
    return [b[1].tolist() for b in loader]


def _data_threads():
    return [t for t in threading.enumerate() if t.name.startswith("manygrad-data")]


def _wait_gone(pred, limit=10.0):
    end = time.monotonic() + limit
    while pred() and time.monotonic() < end:
        time.sleep(0.05)
    return not pred()


def test_default_collate_structures():
    batch = [{"x": np.zeros((2, 2), np.float32), "y": 1, "w": 0.5, "name": "a", "ok": True},
             {"x": np.ones((2, 2), np.float32), "y": 2, "w": 1.5, "name": "b", "ok": False}]  # fmt: skip
    out = default_collate(batch)
    assert out["x"].shape == (2, 2, 2) and out["x"].dtype == np.float32
    assert out["y"].dtype == np.int64 and out["y"].tolist() == [1, 2]
    assert out["w"].dtype == np.float64 and out["name"] == ["a", "b"]
    assert out["ok"].dtype == np.bool_
    t = default_collate([(mg.tensor([1.0, 2.0]), 3), (mg.tensor([4.0, 5.0]), 6)])
    assert isinstance(t, list) and t[0].tolist() == [[1, 2], [4, 5]]


def test_collate_errors_are_clear():
    with pytest.raises(ShapeError, match=r"different shapes.*\(3,\).*\(4,\).*Resize"):
        default_collate([np.zeros(3), np.zeros(4)])
    with pytest.raises(DTypeError, match=r"float128.*astype"):
        default_collate([np.zeros(3, np.longdouble)] * 2)
    with pytest.raises(DTypeError, match="object"):
        default_collate([object(), object()])


def test_batches_are_tensors_with_pytorch_dtypes():
    batches = list(DataLoader(Squares(10), batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    x, y = batches[1]
    assert isinstance(x, mg.Tensor) and x.dtype == mg.float32 and y.dtype == mg.int64
    assert y.tolist() == [16, 25, 36, 49] and x.numpy()[:, 0].tolist() == [4, 5, 6, 7]
    assert len(DataLoader(Squares(10), batch_size=4, drop_last=True)) == 2
    assert [b[1].tolist() for b in DataLoader(Squares(10), batch_size=4, drop_last=True)] == [
        [0, 1, 4, 9], [16, 25, 36, 49]]  # fmt: skip
    single = list(DataLoader(Squares(3), batch_size=None))
    assert single[2][1] == 4 and single[2][0].shape == (3,)


def test_tensor_dataset_fast_path_and_custom_collate():
    ds = TensorDataset(mg.tensor(np.arange(20.0).reshape(10, 2)), np.arange(10))
    (x, y), *_ = DataLoader(ds, batch_size=3, shuffle=True, seed=0)
    assert np.array_equal(x.numpy()[:, 0] / 2, y.numpy())
    out = list(DataLoader(Squares(4), batch_size=2, collate_fn=lambda s: len(s)))
    assert out == [2, 2]


@pytest.mark.parametrize("nw, kind", WORKERS)
def test_order_same_for_any_worker_count(nw, kind):
    ref = _ids(DataLoader(Squares(23), batch_size=4, shuffle=True, seed=7))
    got = _ids(DataLoader(Squares(23), batch_size=4, shuffle=True, seed=7, num_workers=nw,
                          worker_type=kind))  # fmt: skip
    assert got == ref
    assert sorted(i for b in got for i in b) == sorted(i * i for i in range(23))


def test_shuffle_changes_per_epoch_and_with_seed():
    ld = DataLoader(Squares(30), batch_size=30, shuffle=True, seed=1)
    e0, e1 = _ids(ld), _ids(ld)
    assert e0 != e1
    ld2 = DataLoader(Squares(30), batch_size=30, shuffle=True, seed=1)
    assert _ids(ld2) == e0
    ld2.set_epoch(0)
    assert _ids(ld2) == e0
    assert _ids(DataLoader(Squares(30), batch_size=30, shuffle=True, seed=2)) != e0


@pytest.mark.parametrize("nw, kind", WORKERS)
def test_per_sample_randomness_same_for_any_worker_count(nw, kind):
    def run(n, k):
        ld = DataLoader(Augmented(), batch_size=5, shuffle=True, seed=3, num_workers=n,
                        worker_type=k)  # fmt: skip
        return [(x.numpy().tolist(), i.tolist()) for x, i in ld]

    ref = run(0, "thread")
    assert run(nw, kind) == ref
    vals = [v for b, _ in ref for v in b]
    assert len(set(vals)) == len(vals)  # each sample its own stream


def test_worker_info_and_init_fn():
    rows = [
        r
        for b in DataLoader(WhoLoads(), batch_size=4, num_workers=2)
        for r in zip(*[t.tolist() for t in b])
    ]
    wids = {int(r[1]) for r in rows}
    assert wids == {0, 1}
    assert [int(r[0]) for r in rows] == list(range(16))
    with pytest.raises(RuntimeError, match="worker_init_fn refused worker 1"):
        list(DataLoader(Squares(8), batch_size=2, num_workers=2, worker_init_fn=init_marker))


@pytest.mark.parametrize("nw, kind", [(0, "thread"), (2, "thread"), (2, "process")])
def test_iterable_dataset(nw, kind):
    ld = DataLoader(Stream(23), batch_size=4, num_workers=nw, worker_type=kind)
    got = [i for b in ld for i in b.tolist()]
    assert sorted(got) == list(range(23))
    if nw == 2:  # batches alternate between the two workers' streams
        first = [b.tolist() for b in DataLoader(Stream(23), batch_size=4, num_workers=2)][:2]
        assert first == [[0, 2, 4, 6], [1, 3, 5, 7]]
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream(), shuffle=True)


@pytest.mark.parametrize("nw, kind", [(1, "thread"), (2, "process")])
def test_worker_error_carries_traceback_and_index(nw, kind):
    ld = DataLoader(Failing(), batch_size=4, num_workers=nw, worker_type=kind)
    with pytest.raises(ValueError) as info:
        list(ld)
    msg = str(info.value)
    assert "sample 5 is broken on purpose" in msg and "sample index 5" in msg
    assert "Traceback" in msg and "_helpers.py" in msg and "__getitem__" in msg
    assert _wait_gone(lambda: _data_threads())


def test_error_without_workers_names_index():
    with pytest.raises(ValueError, match="broken on purpose") as info:
        list(DataLoader(Failing(), batch_size=4))
    assert "sample index 5" in "".join(getattr(info.value, "__notes__", []))


@pytest.mark.parametrize("nw, kind", [(0, "thread"), (2, "thread"), (2, "process")])
def test_on_error_skip_reports_at_epoch_end(nw, kind):
    ld = DataLoader(Failing(bad=(2, 9)), batch_size=4, num_workers=nw, worker_type=kind,
                    on_error="skip")  # fmt: skip
    with pytest.warns(SkippedSamplesWarning, match=r"skipped 2 sample.*index 2.*index 9"):
        got = [b.tolist() for b in ld]
    assert got == [[0, 1, 3], [4, 5, 6, 7], [8, 10, 11]]
    assert [i for i, _ in ld.skipped] == [2, 9]


def test_early_break_and_gc_stop_thread_workers():
    ld = DataLoader(Slow(), batch_size=2, num_workers=2)
    for k, _ in enumerate(ld):
        if k == 2:
            break
    gc.collect()
    assert _wait_gone(lambda: _data_threads())
    it = iter(DataLoader(Slow(), batch_size=2, num_workers=2))
    next(it)
    assert _data_threads()
    del it
    gc.collect()
    assert _wait_gone(lambda: _data_threads())


def test_keyboard_interrupt_stops_process_workers():
    ld = DataLoader(Slow(delay=0.005), batch_size=2, num_workers=2, worker_type="process")
    it = iter(ld)
    procs = list(it.pool.workers)
    assert all(p.is_alive() for p in procs)
    with pytest.raises(KeyboardInterrupt):
        for k, _ in enumerate(it):
            if k == 1:
                raise KeyboardInterrupt
    it.close()
    assert _wait_gone(lambda: any(p.is_alive() for p in procs))


def test_process_error_leaves_no_process():
    ld = DataLoader(Failing(n=40, bad=(30,)), batch_size=2, num_workers=2, worker_type="process")
    it = iter(ld)
    procs = list(it.pool.workers)
    with pytest.raises(ValueError, match="broken on purpose"):
        list(it)
    assert _wait_gone(lambda: any(p.is_alive() for p in procs))


def test_persistent_workers_survive_epochs():
    ld = DataLoader(WhoLoads(), batch_size=4, num_workers=2, persistent_workers=True)
    tid1 = {int(t) for b in ld for t in b[3].tolist()}
    tid2 = {int(t) for b in ld for t in b[3].tolist()}
    assert tid1 == tid2 and len(_data_threads()) == 2
    ld.shutdown()
    assert _wait_gone(lambda: _data_threads())


def test_timeout():
    ld = DataLoader(Slow(n=4, delay=1.0), batch_size=1, num_workers=1, timeout=0.1)
    with pytest.raises(RuntimeError, match="timed out"):
        next(iter(ld))


def test_bad_arguments():
    with pytest.raises(ValueError, match="worker_type"):
        DataLoader(Squares(), worker_type="fiber")
    with pytest.raises(ValueError, match="on_error"):
        DataLoader(Squares(), on_error="ignore")
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(Squares(), sampler=[0, 1], shuffle=True)


@pytest.mark.parametrize("nw", [0, 2])
def test_fakegpu_staging_path(nw):
    mg.backend.fake_stats.reset()
    ld = DataLoader(Squares(10), batch_size=4, device="fakegpu", num_workers=nw, seed=0)
    out = list(ld)
    assert all(type(x._data).__name__ == "FakeArray" and x.device == "fakegpu" for x, _ in out)
    assert [y.tolist() for _, y in out] == [[0, 1, 4, 9], [16, 25, 36, 49], [64, 81]]
    assert out[1][0].tolist() == [[4.0] * 3, [5.0] * 3, [6.0] * 3, [7.0] * 3]
    st = ld.stager.ops.stats
    assert st["copies"] == 6 == mg.backend.fake_stats.h2d  # 2 arrays per batch
    assert st["records"] == 3 and st["waits"] == 3  # one event per batch, waited on once
    assert st["pinned"] == 6  # a ring of 3 slots: buffers allocated once per slot
    list(ld)
    assert ld.stager.ops.stats["pinned"] == 6  # the same pinned buffers serve every epoch


def test_cpu_loader_keeps_numpy_memory_on_host():
    x, y = next(iter(DataLoader(Squares(4), batch_size=4, device="cpu")))
    assert x.device == "cpu" and isinstance(x._data, np.ndarray)


def test_no_warning_on_clean_epoch():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(DataLoader(Squares(4), batch_size=2, on_error="skip"))


def test_persistent_workers_drop_an_abandoned_epoch():
    ld = DataLoader(Squares(40), batch_size=2, num_workers=2, persistent_workers=True)
    it = iter(ld)
    next(it)  # abandon the epoch with batches still in flight
    assert _ids(ld) == [[i * i for i in range(k, k + 2)] for k in range(0, 40, 2)]
    assert all(k >= ld._pool.min_tid for k in ld._pool.buffer)
    ld.shutdown()


def test_gc_of_an_iterator_stops_process_workers():
    it = iter(DataLoader(Slow(delay=0.005), batch_size=2, num_workers=2, worker_type="process"))
    next(it)
    procs = list(it.pool.workers)
    del it
    gc.collect()
    assert _wait_gone(lambda: any(p.is_alive() for p in procs))


def test_unpicklable_collate_with_processes_is_explained():
    ld = DataLoader(Squares(4), batch_size=2, num_workers=1, worker_type="process",
                    collate_fn=lambda s: s)  # fmt: skip
    with pytest.raises(TypeError, match="picklable.*no lambdas"):
        list(ld)


def test_compat_default_collate_gives_tensors_and_lists_like_torch():
    torch = pytest.importorskip("torch")
    samples = [(1, 2.0, np.ones(2, np.float32)), (3, 4.0, np.zeros(2, np.float32))]
    got = mg.utils.data.default_collate(samples)
    want = torch.utils.data.default_collate([(a, b, torch.from_numpy(c)) for a, b, c in samples])
    assert isinstance(got, list) and isinstance(want, list)
    for g, w in zip(got, want):
        assert isinstance(g, mg.Tensor) and g.dtype.name == str(w.dtype)[6:]
        assert g.tolist() == w.tolist()
    ds = mg.utils.data.TensorDataset(mg.arange(4.0), mg.arange(4))
    assert isinstance(next(iter(mg.utils.data.DataLoader(ds, batch_size=2))), list)
