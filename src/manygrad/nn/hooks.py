"""Module hooks beyond the forward ones: full backward hooks and backward pre-hooks (per
module and global), as PyTorch's.

A module with backward hooks sees its tensor inputs and outputs through identity nodes of
the graph: the outputs' node receives ``grad_output`` (backward pre-hooks may replace it),
the inputs' node receives ``grad_input`` and calls ``hook(module, grad_input, grad_output)``
(a tuple it returns replaces ``grad_input``).
"""

from __future__ import annotations

from collections import OrderedDict

from .. import autograd
from ..tensor import Tensor

# global hooks (nn.modules.module.register_module_*): id -> hook
forward_pre: OrderedDict = OrderedDict()
forward: OrderedDict = OrderedDict()
backward: OrderedDict = OrderedDict()
backward_pre: OrderedDict = OrderedDict()


def any_global() -> bool:
    return bool(forward_pre or forward or backward or backward_pre)


class _State:
    __slots__ = ("module", "hooks", "pre", "grad_output", "n_in")

    def __init__(self, module, hooks, pre):
        self.module, self.hooks, self.pre = module, hooks, pre
        self.grad_output = None
        self.n_in = 0


class _Identity(autograd.Function):
    """The module's tensors as they are; backward calls the module's hooks."""

    @staticmethod
    def forward(ctx, state, *ts):
        ctx.state = state
        return ts


class _Outputs(_Identity):
    @staticmethod
    def backward(ctx, *grads):
        st = ctx.state
        for h in st.pre:
            r = h(st.module, grads)
            if r is not None:
                grads = tuple(r) if isinstance(r, (tuple, list)) else (r,)
        st.grad_output = grads
        if st.n_in == 0:  # NOTE: no input needs a gradient: the hooks see grad_input=(None,)
            for h in st.hooks:
                h(st.module, (None,), grads)
        return (None,) + tuple(grads)


class _Inputs(_Identity):
    @staticmethod
    def backward(ctx, *grads):
        st = ctx.state
        for h in st.hooks:
            r = h(st.module, grads, st.grad_output)
            if r is not None:
                grads = tuple(r) if isinstance(r, (tuple, list)) else (r,)
        return (None,) + tuple(grads)


def _swap(obj, fn):
    """``obj`` with its tensors (top level, or in a tuple/list) passed through ``fn``."""
    if isinstance(obj, Tensor):
        return fn((obj,))[0]
    if isinstance(obj, (tuple, list)):
        idx = [i for i, v in enumerate(obj) if isinstance(v, Tensor)]
        if not idx:
            return obj
        new = fn(tuple(obj[i] for i in idx))
        out = list(obj)
        for i, t in zip(idx, new):
            out[i] = t
        return type(obj)(out) if not hasattr(obj, "_fields") else type(obj)(*out)
    return obj


def call(module, args, kwargs):
    """``module(*args, **kwargs)`` with its hooks and the global ones."""
    d = module.__dict__
    for hook, with_kwargs in list(forward_pre.values()) + list(d["_forward_pre_hooks"].values()):
        res = hook(module, args, kwargs) if with_kwargs else hook(module, args)
        if res is not None:
            if with_kwargs:
                args, kwargs = res
            else:
                args = res if isinstance(res, tuple) else (res,)
    full = list(backward.values()) + list(d.get("_backward_hooks", {}).values())
    pre = list(backward_pre.values()) + list(d.get("_backward_pre_hooks", {}).values())
    state = None
    if (full or pre) and autograd.is_grad_enabled():
        state = _State(module, full, pre)
        if full:
            live = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
            state.n_in = len(live)
            if live:
                args = _swap(args, lambda ts: _Inputs.apply(state, *ts))
    out = module._call_forward(args, kwargs)
    for hook, with_kwargs in list(forward.values()) + list(d["_forward_hooks"].values()):
        res = hook(module, args, kwargs, out) if with_kwargs else hook(module, args, out)
        if res is not None:
            out = res
    if state is not None:
        out = _swap(out, lambda ts: _Outputs.apply(state, *ts))
    return out
