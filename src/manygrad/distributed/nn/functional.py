"""Collectives that carry gradients (``torch.distributed.nn.functional``).

Each one returns new tensors and records the collective in the autograd graph, so that a
loss computed from, say, every rank's embeddings sends each rank the gradient of its own
part. The backward of each is the collective that moves gradients the other way:

    all_gather  <-> reduce_scatter (SUM)     broadcast <-> reduce (SUM) to the source
    gather      <-> scatter                  all_to_all <-> all_to_all (sizes swapped)
    all_reduce  ->  all_reduce of the gradient with the same op

Every rank of the group must run the backward (it runs collectives).

Example:
    >>> import manygrad.distributed.nn as dist_nn
    >>> feats = dist_nn.all_gather(local_feats)     # a tuple, one tensor per rank
    >>> logits = local_feats @ mg.cat(feats).T      # gradients reach every rank's feats
"""

from __future__ import annotations

from ... import creation
from ...autograd import Function
from ...tensor import Tensor
from .. import alltoall as A
from .. import collectives as C
from ..handles import group
from ..names import ReduceOp
from ..process_group import get_rank, get_world_size

__all__ = [
    "ReduceOp",
    "all_gather",
    "all_reduce",
    "all_to_all",
    "all_to_all_single",
    "broadcast",
    "gather",
    "group",
    "reduce",
    "reduce_scatter",
    "scatter",
]


def _tensors(what: str, name: str, tensors) -> list:
    if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(
            f"{what}: `{name}` must be a list of tensors (one per rank of the group) on every "
            f"rank, got {type(tensors).__name__}"
        )
    return list(tensors)


def broadcast(tensor: Tensor, src: int, group=None) -> Tensor:
    """``tensor`` of rank ``src`` on every rank, as a new tensor; the gradients of all ranks
    are summed into ``src``'s input (the other ranks' inputs get zeros).

    Args:
        tensor: the data on ``src``; elsewhere, a tensor of the same shape and dtype.
        src: the global rank that sends.
        group: the process group (default: every rank).

    Example:
        >>> w = dist_nn.broadcast(w_local, src=0)
    """
    return _Broadcast.apply(src, group, tensor)


def gather(tensor: Tensor, dst: int = 0, group=None) -> tuple:
    """Every rank's ``tensor`` on rank ``dst`` (a tuple in group-rank order; zeros on the
    other ranks); backward scatters ``dst``'s gradients back to their ranks.

    Example:
        >>> parts = dist_nn.gather(x, dst=0)
    """
    return _Gather.apply(dst, group, tensor)


def scatter(tensors, src: int = 0, group=None) -> Tensor:
    """Entry r of ``tensors`` on rank ``src`` goes to group rank r; backward gathers the
    gradients into ``src``'s ``tensors``.

    Args:
        tensors: group-size tensors of one shape on every rank (only ``src``'s data is sent;
            the others give the shape and dtype).
        src: the global rank that sends (default 0).

    Example:
        >>> mine = dist_nn.scatter(list(x.chunk(world)), src=0)
    """
    return _Scatter.apply(src, group, *_tensors("scatter", "tensors", tensors))


def reduce(tensor: Tensor, dst: int, op=ReduceOp.SUM, group=None) -> Tensor:
    """``tensor`` combined over the ranks on rank ``dst`` (a copy of the input elsewhere);
    backward broadcasts ``dst``'s gradient to every rank.

    Example:
        >>> total = dist_nn.reduce(loss, dst=0)
    """
    return _Reduce.apply(dst, op, group, tensor)


def reduce_scatter(output: Tensor, input_list, op=ReduceOp.SUM, group=None) -> Tensor:
    """Entry r of ``input_list`` combined over the ranks, on group rank r (written into
    ``output`` and returned); backward all-gathers the gradient.

    Example:
        >>> mine = dist_nn.reduce_scatter(mg.empty(2), [a, b])
    """
    return _ReduceScatter.apply(op, group, output, *_tensors("reduce_scatter", "input_list",
                                                              input_list))  # fmt: skip


def all_gather(tensor: Tensor, group=None) -> tuple:
    """Every rank's ``tensor``, as a tuple in group-rank order; backward gives each rank the
    sum over ranks of the gradients of its own entry (a reduce-scatter).

    Example:
        >>> everyone = mg.cat(dist_nn.all_gather(emb))      # CLIP-style negatives
    """
    return _AllGather.apply(group, tensor)


def all_to_all(output_tensor_list, input_tensor_list, group=None) -> tuple:
    """Send ``input_tensor_list[j]`` to group rank j; returns what each rank sent here
    (also written into ``output_tensor_list``). Backward sends the gradients back.

    Example:
        >>> got = dist_nn.all_to_all([mg.empty(2) for _ in range(world)], pieces)
    """
    outs = _tensors("all_to_all", "output_tensor_list", output_tensor_list)
    ins = _tensors("all_to_all", "input_tensor_list", input_tensor_list)
    return _AllToAll.apply(group, outs, *ins)


def all_to_all_single(output: Tensor, input: Tensor, output_split_sizes=None,  # noqa: A002
                      input_split_sizes=None, group=None) -> Tensor:  # fmt: skip
    """``dist.all_to_all_single`` with a gradient: dim 0 of ``input`` split by
    ``input_split_sizes`` goes to the ranks, the pieces received land in ``output`` (also
    returned). Backward runs it with the split sizes swapped.

    Example:
        >>> out = dist_nn.all_to_all_single(mg.empty(4), x)
    """
    return _AllToAllSingle.apply(group, output, output_split_sizes, input_split_sizes, input)


def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None) -> Tensor:
    """``tensor`` combined over the ranks, as a new tensor on every rank; backward
    all-reduces the gradient with the same ``op`` (SUM: every rank gets the total).

    Example:
        >>> total = dist_nn.all_reduce(x)
    """
    return _AllReduce.apply(op, group, tensor)


# ------------------------------------------------------------------ the autograd Functions
# NOTE: the forwards copy their input first: the collectives of mg.distributed work in place


class _Broadcast(Function):
    @staticmethod
    def forward(ctx, src, group, tensor):
        ctx.src, ctx.group = src, group
        out = tensor.clone()
        C.broadcast(out, src, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        gx = _Reduce.apply(ctx.src, ReduceOp.SUM, ctx.group, grad)
        if get_rank() != ctx.src:
            gx = creation.zeros_like(gx)
        return None, None, gx


class _Reduce(Function):
    @staticmethod
    def forward(ctx, dst, op, group, tensor):
        ctx.dst, ctx.group = dst, group
        out = tensor.clone()
        C.reduce(out, dst, op=op, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        return None, None, None, _Broadcast.apply(ctx.dst, ctx.group, grad)


class _Gather(Function):
    @staticmethod
    def forward(ctx, dst, group, tensor):
        ctx.dst, ctx.group = dst, group
        outs = [creation.zeros_like(tensor) for _ in range(get_world_size(group))]
        mine = get_rank() == dst
        C.gather(tensor.contiguous(), outs if mine else None, dst, group=group)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        return None, None, _Scatter.apply(ctx.dst, ctx.group, *grads)


class _Scatter(Function):
    @staticmethod
    def forward(ctx, src, group, *tensors):
        ctx.src, ctx.group = src, group
        first = tensors[0]
        for t in tensors[1:]:
            if t.shape != first.shape:
                raise ValueError(
                    f"scatter: the tensors must have one shape, got {tuple(first.shape)} and "
                    f"{tuple(t.shape)}"
                )
        out = creation.zeros_like(first)
        mine = get_rank() == src
        C.scatter(out, [t.contiguous() for t in tensors] if mine else None, src, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        return (None, None) + _Gather.apply(ctx.src, ctx.group, grad)


class _ReduceScatter(Function):
    @staticmethod
    def forward(ctx, op, group, output, *inputs):
        ctx.group = group
        out = output.contiguous()
        C.reduce_scatter(out, [t.contiguous() for t in inputs], op=op, group=group)
        if out is not output:
            output.copy_(out)
        return output

    @staticmethod
    def backward(ctx, grad):
        return (None, None, None) + _AllGather.apply(ctx.group, grad)


class _AllGather(Function):
    @staticmethod
    def forward(ctx, group, tensor):
        ctx.group = group
        outs = [creation.empty_like(tensor) for _ in range(get_world_size(group))]
        C.all_gather(outs, tensor.contiguous(), group=group)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        # NOTE: PyTorch sums an all_to_all of the gradients on backends without
        # reduce_scatter; MPI has one, and the sum is the same
        gx = creation.empty_like(grads[get_rank(ctx.group)])
        return None, _ReduceScatter.apply(ReduceOp.SUM, ctx.group, gx, *grads)


class _AllToAll(Function):
    @staticmethod
    def forward(ctx, group, out_list, *tensors):
        ctx.group = group
        ctx.shapes = [tuple(t.shape) for t in tensors]
        A.all_to_all(out_list, [t.contiguous() for t in tensors], group=group)
        return tuple(out_list)

    @staticmethod
    def backward(ctx, *grads):
        g0 = grads[0]
        outs = [creation.empty(s, dtype=g0.dtype, device=g0.device) for s in ctx.shapes]
        return (None, None) + _AllToAll.apply(ctx.group, outs, *grads)


class _AllToAllSingle(Function):
    @staticmethod
    def forward(ctx, group, output, output_split_sizes, input_split_sizes, input):  # noqa: A002
        ctx.group, ctx.shape = group, tuple(input.shape)
        # NOTE: backward sends the gradients the way the data came: the sizes swap roles
        ctx.sizes = (input_split_sizes, output_split_sizes)
        A.all_to_all_single(output, input, output_split_sizes, input_split_sizes, group=group)
        return output

    @staticmethod
    def backward(ctx, grad):
        out = creation.empty(ctx.shape, dtype=grad.dtype, device=grad.device)
        gx = _AllToAllSingle.apply(ctx.group, out, *ctx.sizes, grad.contiguous())
        return None, None, None, None, gx


class _AllReduce(Function):
    @staticmethod
    def forward(ctx, op, group, tensor):
        ctx.op, ctx.group = op, group
        out = tensor.clone().contiguous()
        C.all_reduce(out, op=op, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        return None, None, _AllReduce.apply(ctx.op, ctx.group, grad)
