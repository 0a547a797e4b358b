"""The default DDP communication hooks (``torch.distributed.algorithms.ddp_comm_hooks.
default_hooks``): plain averaging, and averaging in float16 or bfloat16 to halve the bytes
sent.

A hook is called as ``hook(state, bucket)``; ``state`` is the process group to average over
(None: the default group) and ``bucket`` a ``GradBucket``. Each hook divides by the group
size *before* the sum (so float16 sums do not overflow) and returns a ``Future`` whose value
is the averaged bucket.

Example:
    >>> ddp.register_comm_hook(process_group, fp16_compress_hook)
"""

from .... import dtypes
from ....futures import Future
from ....tensor import Tensor
from ... import collectives
from ...grad_bucket import GradBucket
from ...handles import group as _group

__all__ = [
    "allreduce_hook",
    "bf16_compress_hook",
    "bf16_compress_wrapper",
    "fp16_compress_hook",
    "fp16_compress_wrapper",
]


def _group_of(process_group):
    g = process_group if process_group is not None else _group.WORLD
    if g is None:
        raise ValueError(
            "DDP communication hook: the default process group is not initialised; call "
            "dist.init_process_group() first"
        )
    return g


def _average(process_group, tensor: Tensor):
    """Divide ``tensor`` by the group size, start its sum over the group, return the future."""
    g = _group_of(process_group)
    tensor.div_(g.size())
    work = collectives.all_reduce(tensor, group=g, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


def allreduce_hook(process_group, bucket: GradBucket) -> Future[Tensor]:
    """Average the bucket over ``process_group`` with one all-reduce: the same gradients as
    DDP without a hook.

    Example:
        >>> ddp.register_comm_hook(None, allreduce_hook)
    """
    return _average(process_group, bucket.buffer())


def _compressed(dtype, process_group, bucket) -> Future[Tensor]:
    g = _group_of(process_group)
    buffer = bucket.buffer()
    small = buffer.to(dtype).div_(g.size())

    def decompress(fut):
        buffer.copy_(fut.value()[0])  # NOTE: in place, into the bucket: no second buffer
        return buffer

    work = collectives.all_reduce(small, group=g, async_op=True)
    return work.get_future().then(decompress)


def fp16_compress_hook(process_group, bucket: GradBucket) -> Future[Tensor]:
    """Average the bucket sent as float16 (cast, divided by the group size, all-reduced,
    cast back into the bucket): half the bytes of ``allreduce_hook``.

    Example:
        >>> ddp.register_comm_hook(None, fp16_compress_hook)
    """
    return _compressed(dtypes.float16, process_group, bucket)


def bf16_compress_hook(process_group, bucket: GradBucket) -> Future[Tensor]:
    """As ``fp16_compress_hook``, in bfloat16 (float32's range, 8 bits of mantissa).

    Example:
        >>> ddp.register_comm_hook(None, bf16_compress_hook)
    """
    return _compressed(dtypes.bfloat16, process_group, bucket)


def _wrap(dtype_name: str, hook):
    def wrapped(hook_state, bucket: GradBucket) -> Future[Tensor]:
        bucket.set_buffer(bucket.buffer().to(getattr(dtypes, dtype_name)))
        fut = hook(hook_state, bucket)

        def decompress(fut):
            small = bucket.buffer()
            small.copy_(fut.value())
            return small

        return fut.then(decompress)

    return wrapped


def fp16_compress_wrapper(hook):
    """``hook`` run on a float16 copy of the bucket; its result is cast back by DDP.
    ``fp16_compress_wrapper(allreduce_hook)`` is ``fp16_compress_hook``.

    Example:
        >>> ddp.register_comm_hook(None, fp16_compress_wrapper(allreduce_hook))
    """
    wrapped = _wrap("float16", hook)
    wrapped.__name__ = wrapped.__qualname__ = "fp16_compress_wrapper_hook"
    return wrapped


def bf16_compress_wrapper(hook):
    """``hook`` run on a bfloat16 copy of the bucket; its result is cast back by DDP."""
    wrapped = _wrap("bfloat16", hook)
    wrapped.__name__ = wrapped.__qualname__ = "bf16_compress_wrapper_hook"
    return wrapped
