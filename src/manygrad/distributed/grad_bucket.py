"""``GradBucket``: what a DDP communication hook receives (PyTorch's ``dist.GradBucket``),
and the check of a hook's signature that ``register_comm_hook`` makes."""

from __future__ import annotations

import inspect

from ..tensor import Tensor


class GradBucket:
    """One bucket of ``DistributedDataParallel`` gradients: a flat 1-D buffer holding the
    gradients of some parameters, one after the other.

    ``DistributedDataParallel.register_comm_hook(state, hook)`` calls
    ``hook(state, bucket)`` once per bucket and backward pass; the hook reduces
    ``bucket.buffer()`` across the ranks and returns a ``Future`` whose value is the reduced
    buffer (a tensor with the same number of elements). Gradients are not divided by the
    number of ranks before the hook: averaging is the hook's job.

    Example:
        >>> def hook(state, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        ...     buf = bucket.buffer().div_(dist.get_world_size())
        ...     work = dist.all_reduce(buf, async_op=True)
        ...     return work.get_future().then(lambda fut: fut.value()[0])
    """

    def __init__(self, index: int, count: int, buffer: Tensor, params: list, offsets: list):
        self._index, self._count = index, count
        self._buffer = buffer
        self._params = params
        self._offsets = offsets

    def index(self) -> int:
        """The bucket's index; bucket 0 holds the last parameters (those whose gradients are
        ready first in backward)."""
        return self._index

    def is_last(self) -> bool:
        """True for the last bucket of the backward pass."""
        return self._index == self._count - 1

    def buffer(self) -> Tensor:
        """The flat gradients (shares memory with DDP's bucket: in-place changes are seen)."""
        return self._buffer

    def set_buffer(self, buffer: Tensor) -> None:
        """Replace the buffer (e.g. by a float16 copy, as ``fp16_compress_wrapper`` does)."""
        if not isinstance(buffer, Tensor):
            raise TypeError(
                f"GradBucket.set_buffer: expected a Tensor, got {type(buffer).__name__}"
            )
        if buffer.numel() != self._buffer.numel():
            raise ValueError(
                f"GradBucket.set_buffer: the bucket holds {self._buffer.numel()} elements, the "
                f"new buffer {buffer.numel()}"
            )
        self._buffer = buffer

    def gradients(self) -> list[Tensor]:
        """One tensor per parameter, shaped like it: views into ``buffer()``."""
        flat = self._buffer._data.reshape(-1)
        out = []
        for p, o in zip(self._params, self._offsets):
            n = p._data.size
            out.append(Tensor._wrap(flat[o : o + n].reshape(p._data.shape), self._buffer._device))
        return out

    def parameters(self) -> list[Tensor]:
        """The model's parameters whose gradients the bucket holds, in buffer order."""
        return list(self._params)

    def __repr__(self) -> str:
        return f"GradBucket(index={self._index}, parameters={len(self._params)})"


def check_comm_hook(hook) -> None:
    """Check ``hook`` as PyTorch's ``register_comm_hook`` does: callable, a parameter named
    ``bucket``, and annotations (if any) ``dist.GradBucket`` and
    ``torch.futures.Future[torch.Tensor]``."""
    from ..futures import Future  # NOTE: here: manygrad.futures imports this package

    if not callable(hook):
        raise TypeError("Communication hook must be callable.")
    sig = inspect.signature(hook)
    if "bucket" not in sig.parameters:
        raise KeyError(
            "bucket: a communication hook is called as hook(state, bucket); name its "
            "second parameter `bucket`"
        )
    ann = sig.parameters["bucket"].annotation
    if ann is not inspect.Parameter.empty and ann is not GradBucket:
        raise ValueError("Communication hook: bucket annotation should be dist.GradBucket.")
    ret = sig.return_annotation
    if ret is not inspect.Signature.empty and ret != Future[Tensor]:
        raise ValueError(
            "Communication hook: return annotation should be torch.futures.Future[torch.Tensor]."
        )
