"""A module call with hooks (PyTorch's ``_call_impl`` past its fast path): forward pre-hooks
and hooks (``with_kwargs``, ``always_call``), full backward hooks and backward pre-hooks,
per module and global, as PyTorch's.

A module with backward hooks sees its tensor inputs and outputs through identity nodes of
the graph: the outputs' node receives ``grad_output`` (backward pre-hooks may replace it),
the inputs' node receives ``grad_input`` and calls ``hook(module, grad_input, grad_output)``
(a tuple it returns replaces ``grad_input``).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

from .. import autograd
from ..autograd._userfn import _alias
from ..tensor import Tensor

# global hooks (nn.modules.module.register_module_*): id -> hook, and PyTorch's flag dicts
forward_pre: OrderedDict = OrderedDict()
forward: OrderedDict = OrderedDict()
forward_with_kwargs: OrderedDict = OrderedDict()
forward_always_called: OrderedDict = OrderedDict()
backward: OrderedDict = OrderedDict()
backward_pre: OrderedDict = OrderedDict()


def any_global() -> bool:
    return bool(forward_pre or forward or backward or backward_pre)


def _pack(idx, values, n) -> tuple:
    """``values`` at positions ``idx`` of an ``n``-tuple, None elsewhere (the non-tensors)."""
    out = [None] * n
    for i, v in zip(idx, values):
        out[i] = v
    return tuple(out)


class _State:
    __slots__ = ("module", "hooks", "pre", "grad_output", "n_in", "in_idx", "n_out", "out_idx")

    def __init__(self, module, hooks, pre):
        self.module, self.hooks, self.pre = module, hooks, pre
        self.grad_output = self.in_idx = self.out_idx = None
        self.n_in = self.n_out = 0

    def setup(self, obj, cls, inputs: bool):
        """``obj`` (the args tuple, or the output) with its tensors through ``cls``'s node."""
        seq = obj if isinstance(obj, (tuple, list)) else (obj,)
        idx = [i for i, v in enumerate(seq) if isinstance(v, Tensor)]
        live = any(seq[i].requires_grad for i in idx)
        if inputs:
            self.n_in, self.in_idx = len(seq), (idx if live else None)
        elif live:
            self.n_out, self.out_idx = len(seq), idx
        if not live:
            return obj
        new = cls.apply(self, *(seq[i] for i in idx))
        if seq is not obj:
            return new[0]
        out = list(obj)
        for i, t in zip(idx, new):
            out[i] = t
        return type(obj)(out) if not hasattr(obj, "_fields") else type(obj)(*out)


class _Identity(autograd.Function):
    """The module's tensors as they are; backward calls the module's hooks."""

    @staticmethod
    def forward(ctx, state, *ts):
        ctx.state = state
        if isinstance(ctx, _Outputs):  # NOTE: as PyTorch's, an unused output's grad is None (and
            ctx.set_materialize_grads(False)  # an input's that needs none is zeros)
        outs = tuple(_alias(t) for t in ts)
        ctx.mark_non_differentiable(*[o for o, t in zip(outs, ts) if not t.requires_grad])
        return outs


def _replaced(hooks, call, grads: tuple, who: str, what: str) -> tuple:
    """``grads`` after each hook in turn (``call(hook, grads)``); a non-None result of the
    same length replaces them."""
    for h in hooks:
        r = call(h, grads)
        if r is None:
            continue
        r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
        if len(r) != len(grads):
            raise RuntimeError(
                f"{who} returned an invalid number of {what}, got {len(r)}, but expected "
                f"{len(grads)}"
            )
        grads = r
    return grads


class _Outputs(_Identity):
    @staticmethod
    def backward(ctx, *grads):
        st = ctx.state
        go = _pack(st.out_idx, grads, st.n_out)
        go = _replaced(st.pre, lambda h, g: h(st.module, g), go, "Backward pre hook", "grad_output")
        st.grad_output = go
        if st.in_idx is None and st.hooks:  # NOTE: no input needs a gradient: call them now
            warnings.warn(
                "Full backward hook is firing when gradients are computed with respect to module "
                "outputs since no inputs require gradients",
                stacklevel=2,
            )
            for h in st.hooks:
                r = h(st.module, (None,) * st.n_in, go)
                if r is not None and not (isinstance(r, tuple) and all(g is None for g in r)):
                    raise RuntimeError(
                        "Backward hook for Modules where no input requires gradient should "
                        "always return None or None for all gradients."
                    )
            st.grad_output = None
        return (None,) + tuple(go[i] for i in st.out_idx)


class _Inputs(_Identity):
    @staticmethod
    def backward(ctx, *grads):
        st = ctx.state
        if st.grad_output is None:  # NOTE: the gradient did not come through the outputs
            return (None,) + grads
        gi = _pack(st.in_idx, grads, st.n_in)
        gi = _replaced(st.hooks, lambda h, g: h(st.module, g, st.grad_output), gi,
                       "Backward hook", "grad_input")  # fmt: skip
        st.grad_output = None
        return (None,) + tuple(gi[i] for i in st.in_idx)


def _always_called(module, hid, hook, args, kwargs, result, with_kwargs):
    """An ``always_call`` forward hook after ``forward`` raised; its own error is a warning."""
    try:
        res = hook(module, args, kwargs, result) if with_kwargs else hook(module, args, result)
        return result if res is None else res
    except Exception as e:
        warnings.warn(
            "module forward hook with ``always_call=True`` raised an exception that was "
            f"silenced as another error was raised in forward: {e}",
            stacklevel=3,
        )
        return result


def call(module, args, kwargs):
    """``module(*args, **kwargs)`` with its hooks and the global ones (PyTorch's
    ``_call_impl``): forward pre-hooks, backward hook nodes, forward, forward hooks; when
    something raises, the ``always_call`` forward hooks that did not run yet still do."""
    d = module.__dict__
    result = None
    called = set()

    def inner():
        nonlocal args, kwargs, result
        pre_kw = d.get("_forward_pre_hooks_with_kwargs", {})
        for hid, hook in (*forward_pre.items(), *d["_forward_pre_hooks"].items()):
            if hid in pre_kw:
                res = hook(module, args, kwargs)
                if res is not None:
                    if not (isinstance(res, tuple) and len(res) == 2):
                        raise RuntimeError(
                            "forward pre-hook must return None or a tuple of (new_args, "
                            f"new_kwargs), but got {res}."
                        )
                    args, kwargs = res
            else:
                res = hook(module, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        full = [*backward.values(), *d.get("_backward_hooks", {}).values()]
        pre = [*backward_pre.values(), *d.get("_backward_pre_hooks", {}).values()]
        state = None
        if (full or pre) and autograd.is_grad_enabled():
            state = _State(module, full, pre)
            args = state.setup(args, _Inputs, True)
        result = module._call_forward(args, kwargs)
        kw = d.get("_forward_hooks_with_kwargs", {})
        always = d.get("_forward_hooks_always_called", {})
        for hid, hook in (*forward.items(), *d["_forward_hooks"].items()):
            if hid in always or hid in forward_always_called:
                called.add(hid)
            if hid in kw or hid in forward_with_kwargs:
                res = hook(module, args, kwargs, result)
            else:
                res = hook(module, args, result)
            if res is not None:
                result = res
        if state is not None:
            if not isinstance(result, (Tensor, tuple, list)):
                warnings.warn(
                    "For backward hooks to be called, module output should be a Tensor or a "
                    f"tuple of Tensors but received {type(result)}",
                    stacklevel=3,
                )
            result = state.setup(result, _Outputs, False)
        return result

    try:
        return inner()
    except Exception:
        kw = d.get("_forward_hooks_with_kwargs", {})
        always = d.get("_forward_hooks_always_called", {})
        for hid, hook in forward.items():
            if hid in forward_always_called and hid not in called:
                result = _always_called(module, hid, hook, args, kwargs, result,
                                        hid in forward_with_kwargs)  # fmt: skip
        for hid, hook in d["_forward_hooks"].items():
            if hid in always and hid not in called:
                result = _always_called(module, hid, hook, args, kwargs, result, hid in kw)
        raise
