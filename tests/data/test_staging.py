"""The CUDA staging protocol, driven against a recording stand-in for CuPy.

No GPU here: this checks the order of stream operations the loader issues (copy stream
waits for compute, async copies from pinned buffers, an event per batch that the compute
stream waits on), not that CuPy runs them.
"""

import numpy as np

import manygrad as mg
from manygrad.data import staging


class _Recorder:
    def __init__(self):
        self.log = []


def _fake_cupy(rec):
    class Event:
        def __init__(self, name):
            self.name = name

        def synchronize(self):
            rec.log.append(("host_wait", self.name))

    class Stream:
        count = 0

        def __init__(self, non_blocking=False, name=None):
            Stream.count += 1
            self.name = name or f"stream{Stream.count}"
            self.events = 0

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def record(self):
            self.events += 1
            ev = Event(f"{self.name}.ev{self.events}")
            rec.log.append(("record", ev.name))
            return ev

        def wait_event(self, ev):
            rec.log.append(("wait", self.name, ev.name))

    compute = Stream(name="compute")

    class Device:
        def __init__(self, idx):
            self.idx = idx

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    class DevArray:
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, dtype

        def set(self, host, stream=None):
            rec.log.append(("copy", host.shape, stream.name, bool(host.flags.c_contiguous)))
            self.value = host.copy()

    class Cuda:
        pass

    cuda = Cuda()
    cuda.Stream, cuda.Device = Stream, Device
    cuda.get_current_stream = lambda: compute

    class Cupy:
        pass

    cp = Cupy()
    cp.cuda = cuda
    cp.empty = lambda shape, dtype: DevArray(shape, dtype)
    cp.ndarray = DevArray
    return cp


def test_cuda_stream_protocol(monkeypatch):
    rec = _Recorder()
    cp = _fake_cupy(rec)
    pinned = []

    def pinned_empty(shape, dtype):
        pinned.append(shape)
        return np.empty(shape, dtype)

    monkeypatch.setattr(staging.backend, "cuda_module", lambda: cp)
    monkeypatch.setattr(staging.backend, "pinned_empty", pinned_empty)
    is_array = staging.backend.is_array
    monkeypatch.setattr(
        staging.backend, "is_array", lambda a: isinstance(a, cp.ndarray) or is_array(a)
    )
    dev = mg.device("cuda:0")
    st = staging.StreamStager(dev, staging.CudaStreamOps(dev), depth=2)
    copy_stream = st.ops.stream.name
    batches = [(np.full((2, 3), k, np.float32), np.arange(2) + k) for k in range(3)]
    staged = [st.stage(b) for b in batches]
    assert pinned == [(2, 3), (2,), (2, 3), (2,)]  # two slots, reused by the third batch
    x, y = st.ready(staged[2])
    assert x._device == dev and np.array_equal(x._data.value, batches[2][0])
    log = rec.log
    first = log[:5]
    assert first[0] == ("record", "compute.ev1")  # the copy waits for queued compute work
    assert first[1] == ("wait", copy_stream, "compute.ev1")
    assert first[2] == ("copy", (2, 3), copy_stream, True)  # async, on the copy stream
    assert first[3] == ("copy", (2,), copy_stream, True)
    assert first[4] == ("record", f"{copy_stream}.ev1")
    assert ("host_wait", f"{copy_stream}.ev1") in log  # slot 0 reused only after its copy
    assert log.index(("host_wait", f"{copy_stream}.ev1")) < log.index(
        ("record", f"{copy_stream}.ev3"))  # fmt: skip
    assert log[-1] == ("wait", "compute", f"{copy_stream}.ev3")  # compute waits on the GPU
    assert not any(e[0] == "host_wait" and "ev3" in e[1] for e in log)  # no host sync
