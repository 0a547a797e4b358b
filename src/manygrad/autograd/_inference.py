"""PyTorch's refusals of inference tensors (made under ``inference_mode``) outside the block:
an op of the graph may not save one for backward, an in-place op may not change one, and
one may not start requiring grad (the mark and the error texts: ``_inference_mark``). A
tensor made under ``no_grad`` has none of these limits.

Example:
    >>> with mg.inference_mode():
    ...     a = mg.ones(3)
    >>> w = mg.ones(3, requires_grad=True)
    >>> a + w  # fine: add keeps neither input
    >>> a * w  # RuntimeError: the product keeps ``a`` for the gradient of ``w``
"""

from __future__ import annotations

from .. import backend
from .._inference_mark import INFERENCE_META, InferenceMark, inplace_error
from ..errors import AutogradError
from ..tensor import _NEW_META, Tensor

_FIX = (
    "To work around this, you can make a clone to get a normal tensor and use it in autograd, "
    "or use `no_grad()` instead of `inference_mode()`"
)


def _kept(node):
    """The arrays ``node`` keeps for its backward (alone, or in a tuple or list)."""
    for v in node.__dict__.values():
        if isinstance(v, (tuple, list)):
            yield from (x for x in v if backend.is_array(x))
        elif backend.is_array(v):
            yield v


def _same_memory(v, arr) -> bool:
    if v is arr:
        return True
    return type(v) is type(arr) and v.size > 0 and arr.size > 0 and backend.shares_memory(v, arr)


def check_saved(node, args, raw) -> None:
    """Refuse a graph node that keeps (the memory of) an inference tensor among its inputs;
    called only when an input is one."""
    kept = list(_kept(node))
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and a._meta.__class__ is InferenceMark:
            if any(_same_memory(v, raw[i]) for v in kept):
                raise AutogradError(
                    f"{type(node).op_name.lower()}: Inference tensors cannot be saved for "
                    f"backward (input {i}, shape {tuple(a.shape)}, was made under "
                    "inference_mode). Please do not use Tensors created in inference mode in "
                    f"computation tracked by autograd. {_FIX}."
                )


def check_user_saved(ctx) -> None:
    """Refuse ``ctx.save_for_backward`` of an inference tensor in a recorded Function."""
    for s in ctx.__dict__["_to_save"]:
        if s is not None and len(s) == 2 and s[0]._meta.__class__ is InferenceMark:
            raise AutogradError(
                f"{type(ctx).__name__}: Inference tensors cannot be saved for backward "
                f"(save_for_backward got one of shape {tuple(s[0].shape)}). {_FIX}."
            )


def check_inplace(t: Tensor, name: str) -> None:
    """Refuse an in-place change of ``t`` when it is an inference tensor and no
    ``inference_mode`` block is open (in-place ops that only restride, resizes, init)."""
    if t._meta is INFERENCE_META and _NEW_META[0] is None:
        raise inplace_error(name)
