"""``make_graphed_callables``: a module's forward and backward as two CUDA graphs."""

from __future__ import annotations

from .. import autograd
from ..autograd import Function
from ..tensor import Tensor
from . import graphs, streams


def make_graphed_callables(
    callables, sample_args, num_warmup_iters: int = 3, allow_unused_input: bool = False, pool=None
):
    """Capture each callable's forward and backward into CUDA graphs (PyTorch's function).

    Each callable (a module or a function of tensors returning one tensor) is warmed up
    ``num_warmup_iters`` times on a side stream with ``sample_args``, then its forward and
    its backward are captured into two graphs sharing one pool. The returned callable copies
    its inputs into the static ones, replays the forward graph, and its backward replays the
    backward graph. Modules come back with ``forward`` replaced. Inputs must keep the sample
    shapes, dtypes and ``requires_grad``; the module's ``training`` must not change.

    Args:
        callables: a module or function, or a tuple of them.
        sample_args: a tuple of tensors per callable (a tuple of such tuples for several).
        num_warmup_iters: eager runs before capture (default 3).
        allow_unused_input: allow inputs that the output does not depend on (default False).
        pool: a graph memory pool to use (default: a new one shared by all the graphs).

    Example:
        >>> model = mg.cuda.make_graphed_callables(model, (x,))
        >>> loss = model(x2).sum(); loss.backward()
    """
    single = not isinstance(callables, tuple)
    if single:
        callables, sample_args = (callables,), (sample_args,)
    pool = graphs.graph_pool_handle() if pool is None else pool
    out = tuple(
        _graph_one(fn, tuple(args), num_warmup_iters, allow_unused_input, pool)
        for fn, args in zip(callables, sample_args)
    )
    return out[0] if single else out


def _graph_one(fn, static_in, warmup, allow_unused, pool):
    from ..nn import Module

    if not all(isinstance(t, Tensor) for t in static_in):
        raise TypeError("make_graphed_callables: sample_args must be tuples of Tensors")
    params = tuple(p for p in fn.parameters() if p.requires_grad) if isinstance(fn, Module) else ()
    call = fn.forward if isinstance(fn, Module) else fn
    diff = [t for t in static_in if t.requires_grad] + list(params)
    side = streams.Stream()
    side.wait_stream(streams.current_stream())
    with streams.stream(side):
        for _ in range(warmup):
            y = call(*static_in)
            if diff and y.requires_grad:
                autograd.grad(y, diff, grad_outputs=y.detach() * 0 + 1, allow_unused=allow_unused)
    streams.current_stream().wait_stream(side)
    fwd, bwd = graphs.CUDAGraph(), graphs.CUDAGraph()
    with graphs.graph(fwd, pool=pool):
        static_out = call(*static_in)
    if not isinstance(static_out, Tensor):
        raise TypeError("make_graphed_callables: the callable must return one Tensor")
    static_gout = static_out.detach() * 0  # NOTE: eager, outside both captures
    static_grads: tuple = ()
    if diff and static_out.requires_grad:
        with graphs.graph(bwd, pool=pool):
            static_grads = autograd.grad(
                static_out, diff, grad_outputs=static_gout, allow_unused=allow_unused
            )
    n_in = len(static_in)
    needs = [t.requires_grad for t in static_in]

    class Graphed(Function):
        def forward(self, *raw):
            for st, a in zip(static_in, raw[:n_in]):
                if st._data is not a:
                    st._data[...] = a
            fwd.replay()
            return static_out._data

        def backward(self, g):
            static_gout._data[...] = g
            bwd.replay()
            grads = iter(static_grads)
            res = [next(grads) if need else None for need in needs]
            res += [next(grads) for _ in params]
            return tuple(None if r is None else r._data.copy() for r in res)

    def graphed(*args):
        if len(args) != n_in:
            raise TypeError(f"graphed callable: expected {n_in} inputs, got {len(args)}")
        for a, st in zip(args, static_in):
            if not isinstance(a, Tensor) or a.shape != st.shape or a.dtype != st.dtype:
                raise ValueError(
                    "graphed callable: inputs must have the sample_args' shapes and dtypes "
                    f"({tuple(st.shape)}, {st.dtype}); capture again for other shapes"
                )
        return Graphed.apply(*args, *params)

    if isinstance(fn, Module):
        fn.forward = graphed
        return fn
    return graphed
