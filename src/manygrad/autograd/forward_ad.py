"""``autograd.forward_ad``: PyTorch's forward-mode interface (``dual_level``, ``make_dual``,
``unpack_dual``).

A dual tensor carries a tangent. manygrad computes the tangent of a result when it is
unpacked, as the Jacobian-vector product ``J t`` by two reverse passes through the recorded
graph (the gradient of ``(Jᵀ u) · t`` with respect to a dummy ``u``): the same numbers as
forward mode, at the cost of reverse mode, and only through ops with second derivatives
(others raise an error naming the op).

Example:
    >>> with fwAD.dual_level():
    ...     x = fwAD.make_dual(primal, tangent)
    ...     y = (x * x).sin()
    ...     jvp = fwAD.unpack_dual(y).tangent   # cos(x²) · 2x · tangent
"""

from __future__ import annotations

from collections import namedtuple
from contextlib import contextmanager

from ..tensor import Tensor

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level",
           "make_dual", "unpack_dual"]  # fmt: skip

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])

_levels: list[dict] = []  # per open level: id(dual) -> (dual, tangent)


def enter_dual_level() -> int:
    """Open a level for dual tensors; returns its index."""
    _levels.append({})
    return len(_levels) - 1


def exit_dual_level(*, level: int | None = None) -> None:
    """Close the innermost level: its dual tensors lose their tangents."""
    if not _levels:
        raise RuntimeError("exit_dual_level: no dual level is open")
    if level is not None and level != len(_levels) - 1:
        raise RuntimeError(
            f"exit_dual_level: level {level} is not the innermost open level ({len(_levels) - 1})"
        )
    _levels.pop()


@contextmanager
def dual_level():
    """A block in which ``make_dual`` / ``unpack_dual`` work; tangents end with it."""
    level = enter_dual_level()
    try:
        yield level
    finally:
        exit_dual_level(level=level)


def _current(level, op: str) -> dict:
    if not _levels:
        raise RuntimeError(
            f"{op}: forward AD needs an open dual level; wrap the code in "
            "`with torch.autograd.forward_ad.dual_level():`"
        )
    return _levels[-1 if level is None else level]


def make_dual(tensor: Tensor, tangent: Tensor, *, level: int | None = None) -> Tensor:
    """A tensor with ``tensor``'s values carrying ``tangent`` (same shape)."""
    duals = _current(level, "make_dual")
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError("make_dual: expected tensors for both the primal and the tangent")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise ValueError(
            f"make_dual: the tangent's shape {tuple(tangent.shape)} must equal the primal's "
            f"{tuple(tensor.shape)}"
        )
    if not (tensor.is_floating_point() or tensor.is_complex()):
        raise ValueError(f"make_dual: expected a floating-point primal, got {tensor.dtype}")
    # NOTE: a view of the primal that records a graph, so results can be traced back to it
    dual = tensor.view_as(tensor) if tensor.requires_grad else tensor.detach().requires_grad_()
    duals[id(dual)] = (dual, tangent.detach())
    return dual


def unpack_dual(tensor: Tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)``: the tangent is ``J t`` of ``tensor`` with respect to the dual
    tensors it depends on, or None when it depends on none."""
    if not _levels:
        return UnpackedDualTensor(tensor, None)
    duals = _current(level, "unpack_dual")
    if not isinstance(tensor, Tensor):
        raise TypeError(f"unpack_dual: expected a Tensor, got {type(tensor).__name__}")
    hit = duals.get(id(tensor))
    if hit is not None and hit[0] is tensor:
        return UnpackedDualTensor(tensor.detach(), hit[1])
    if not tensor.requires_grad or not duals:
        return UnpackedDualTensor(tensor, None)
    from ..autograd import enable_grad
    from ..creation import zeros_like
    from ._engine import grad

    ins = [d for d, _ in duals.values()]
    tangents = [t for _, t in duals.values()]
    with enable_grad():
        u = zeros_like(tensor).requires_grad_(True)
        gs = grad([tensor], ins, [u], create_graph=True, allow_unused=True)
        dot = None
        for g, t in zip(gs, tangents):
            if g is not None:
                term = (g * t).sum()
                dot = term if dot is None else dot + term
        if dot is None:
            return UnpackedDualTensor(tensor.detach(), None)
        (jv,) = grad([dot], [u], allow_unused=True)
    if jv is None:
        jv = zeros_like(tensor)
    return UnpackedDualTensor(tensor.detach(), jv.detach())
