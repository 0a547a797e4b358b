"""Moving host batches to the device: pinned staging buffers and a copy stream.

``stage(batch)`` starts the copy of a batch and returns at once; ``ready(staged)`` makes
the compute stream wait for that copy (on the GPU, not the host) and returns Tensors.
The DataLoader stages batch ``i + 1`` while the step on batch ``i`` runs, so the copy
overlaps compute. On CUDA the copy runs on its own CuPy stream from page-locked buffers;
``FakeStreamOps`` plays the same protocol on the ``fakegpu`` device and counts each step,
so tests cover the code path without a GPU.

NOTE: the CUDA half (``CudaStreamOps``: ``cupy.cuda.Stream``, events, ``ndarray.set`` from
page-locked buffers) is written against CuPy's documented API but has not yet run on a
GPU: the development machine has none. Only the fake-GPU half is exercised by the tests.
"""

from __future__ import annotations

import numpy as np

from manygrad import backend

from .collate import map_arrays


class HostStager:
    """Device ``cpu``: batches stay where they are (optionally copied to pinned memory)."""

    def __init__(self, pin_memory: bool = False):
        self.pin = pin_memory and backend.cuda_available()
        self.copies = 0

    def stage(self, batch):
        if not self.pin:
            return batch

        def pin(a):
            if type(a) is not np.ndarray:
                return a
            buf = backend.pinned_empty(a.shape, a.dtype)
            np.copyto(buf, a)
            return buf

        return map_arrays(pin, batch)

    def ready(self, staged):
        from manygrad.tensor import Tensor

        return map_arrays(lambda a: Tensor._wrap(a), staged)


class CudaStreamOps:
    """The CUDA half of the protocol: CuPy stream, events, pinned buffers."""

    def __init__(self, dev: backend.Device):
        self.cp = backend.cuda_module()
        self.dev = dev
        with self.cp.cuda.Device(dev.index):
            self.stream = self.cp.cuda.Stream(non_blocking=True)

    def pinned(self, shape, dtype):
        return backend.pinned_empty(shape, dtype)

    def host_wait(self, event) -> None:
        if event is not None:
            event.synchronize()

    def wait_compute(self) -> None:
        # NOTE: device blocks freed by earlier steps may still be read by queued kernels;
        # ordering the copy after the compute stream's work queued so far keeps reuse safe.
        with self.cp.cuda.Device(self.dev.index):
            self.stream.wait_event(self.cp.cuda.get_current_stream().record())

    def copy_async(self, host: np.ndarray):
        with self.cp.cuda.Device(self.dev.index):
            out = self.cp.empty(host.shape, host.dtype)  # from the compute stream's pool
            out.set(host, stream=self.stream)
        return out

    def record(self):
        with self.cp.cuda.Device(self.dev.index):
            return self.stream.record()

    def compute_wait(self, event) -> None:
        with self.cp.cuda.Device(self.dev.index):
            self.cp.cuda.get_current_stream().wait_event(event)


class FakeStreamOps:
    """The same protocol on the ``fakegpu`` device: copies are synchronous and counted."""

    def __init__(self, dev: backend.Device):
        self.dev = dev
        self.stats = {"pinned": 0, "copies": 0, "records": 0, "waits": 0, "host_waits": 0}
        self._events = 0

    def pinned(self, shape, dtype):
        self.stats["pinned"] += 1
        return backend.pinned_empty(shape, dtype)

    def host_wait(self, event) -> None:
        if event is not None:
            self.stats["host_waits"] += 1

    def wait_compute(self) -> None:
        pass

    def copy_async(self, host: np.ndarray):
        self.stats["copies"] += 1
        return backend.to_device(host.copy(), self.dev)  # counts fake_stats.h2d

    def record(self):
        self.stats["records"] += 1
        self._events += 1
        return self._events

    def compute_wait(self, event) -> None:
        self.stats["waits"] += 1


class _Slot:
    __slots__ = ("buffers", "event")

    def __init__(self):
        self.buffers: list = []
        self.event = None


class StreamStager:
    """Stage batches through a ring of pinned host buffers onto ``dev`` with ``ops``.

    ``depth`` slots let ``depth - 1`` copies be in flight while a new batch is packed.
    """

    def __init__(self, dev: backend.Device, ops, depth: int = 3):
        self.dev = dev
        self.ops = ops
        self.slots = [_Slot() for _ in range(depth)]
        self.count = 0

    def _buffer(self, slot: _Slot, k: int, a: np.ndarray) -> np.ndarray:
        if k < len(slot.buffers):
            b = slot.buffers[k]
            if b.shape == a.shape and b.dtype == a.dtype:
                return b
            slot.buffers[k] = b = self.ops.pinned(a.shape, a.dtype)
            return b
        b = self.ops.pinned(a.shape, a.dtype)
        slot.buffers.append(b)
        return b

    def stage(self, batch):
        slot = self.slots[self.count % len(self.slots)]
        self.count += 1
        self.ops.host_wait(slot.event)  # the copy that last read these buffers is done
        self.ops.wait_compute()
        k = 0

        def copy(a):
            nonlocal k
            if type(a) is not np.ndarray:  # already a device array (collated on a device)
                return backend.to_device(a, self.dev)
            buf = self._buffer(slot, k, a)
            k += 1
            np.copyto(buf, a)
            return self.ops.copy_async(buf)

        out = map_arrays(copy, batch)
        slot.event = self.ops.record()
        return out, slot.event

    def ready(self, staged):
        from manygrad.tensor import Tensor

        out, event = staged
        self.ops.compute_wait(event)
        return map_arrays(lambda a: Tensor._wrap(a, self.dev), out)


def make_stager(device, pin_memory: bool):
    """The stager for a loader's ``device`` (None or cpu: host only)."""
    dev = backend.device(device) if device is not None else backend.CPU
    if dev.type == "cpu":
        return HostStager(pin_memory)
    if dev.type == "fakegpu":
        return StreamStager(dev, FakeStreamOps(dev))
    backend.check_device(dev)
    return StreamStager(dev, CudaStreamOps(dev))
