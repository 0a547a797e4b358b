"""``mg.cond`` and ``mg.while_loop``: PyTorch's control-flow operators (``torch.cond``,
``torch.while_loop``, also in ``torch._higher_order_ops``) with their eager semantics.

In eager mode they run Python control flow: ``cond`` calls the branch that ``pred`` picks,
``while_loop`` calls ``body_fn`` while ``cond_fn`` holds. Gradients flow through the branch
and the iterations that ran, to the operands and to tensors the functions close over.
PyTorch traces the functions and refuses branches that mutate their inputs or return them
(or views of them); the same checks are made here on what runs.

Example:
    >>> y = mg.cond(x.sum() > 0, lambda x: x.sin(), lambda x: x.cos(), (x,))
    >>> i, s = mg.while_loop(lambda i, s: i < 3, lambda i, s: (i + 1, s * 2), (mg.tensor(0), x))
"""

from __future__ import annotations

from . import dtypes as D
from ._func_forward import _flatten, _unflatten
from .errors import ManygradError
from .tensor import Tensor

__all__ = ["cond", "while_loop"]


class ControlFlowError(ManygradError, RuntimeError):
    """A ``cond`` / ``while_loop`` call breaks the rules of PyTorch's control-flow ops."""


def _root(t: Tensor) -> Tensor:
    return t._base if t._base is not None else t


def _check_pure(op: str, fn_name: str, inputs: list, versions: list, outputs: list) -> None:
    """Refuse in-place changes of the inputs and outputs that alias them, as PyTorch's
    tracing of the function does."""
    for k, (t, v) in enumerate(zip(inputs, versions)):
        if isinstance(t, Tensor) and t._version != v:
            raise ControlFlowError(
                f"{op}: {fn_name} changed its input {k} in place; higher-order ops do not "
                "support input mutation: compute on a copy (x.clone()) instead"
            )
    roots = {id(_root(t)) for t in inputs if isinstance(t, Tensor)}
    for k, o in enumerate(outputs):
        if isinstance(o, Tensor) and id(_root(o)) in roots:
            raise ControlFlowError(
                f"{op}: output {k} of {fn_name} is one of its inputs or a view of one; "
                "higher-order ops do not support aliasing: return x.clone() instead of x"
            )


def _versions(leaves: list) -> list:
    return [t._version if isinstance(t, Tensor) else None for t in leaves]


def cond(pred, true_fn, false_fn, operands=()):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``.

    Args:
        pred: a Python bool/number, or a one-element tensor (read on the host).
        true_fn, false_fn: functions of the operands returning tensors (or ints), nested in
            tuples/lists/dicts; they must not change the operands or return them.
        operands: a tuple or list of tensors (possibly nested in tuples/lists/dicts).

    Example:
        >>> mg.cond(x.sum() > 0, lambda x: x.sin(), lambda x: x.cos(), (x,))
    """
    if isinstance(pred, (bool, int, float)):
        # NOTE: as PyTorch: a Python constant just picks the branch, with no checks
        return true_fn(*operands) if pred else false_fn(*operands)
    if not isinstance(pred, Tensor):
        raise ControlFlowError(f"Expected pred to be bool or tensor, but got {pred}.")
    if pred.numel() != 1:
        raise ControlFlowError(
            f"Expected pred to be bool or single-element tensor, but got {pred}."
        )
    if not callable(true_fn) or not callable(false_fn):
        raise ControlFlowError("Expect both branches to be callable.")
    leaves, _ = _flatten(operands)
    if not isinstance(operands, (tuple, list)) or not all(isinstance(t, Tensor) for t in leaves):
        raise ControlFlowError(
            "Expect operands to be a tuple of possibly nested dict/list/tuple that only "
            f"consists of tensor leaves, but got {operands}."
        )
    taken, name = (true_fn, "true_fn") if bool(pred) else (false_fn, "false_fn")  # NOTE: a sync
    versions = _versions(leaves)
    out = taken(*operands)
    outs, _ = _flatten(out)
    for o in outs:
        if not isinstance(o, Tensor) and (isinstance(o, bool) or not isinstance(o, int)):
            raise ControlFlowError(
                f"cond: {name} must return tensors or ints (nested in tuples, lists or dicts), "
                f"got {type(o).__name__}"
            )
    _check_pure("cond", name, leaves, versions, outs)
    return out


def _check_pred(pred) -> bool:
    if isinstance(pred, bool):
        return pred
    if isinstance(pred, Tensor) and pred.ndim == 0 and pred.dtype is D.bool_:
        return bool(pred)  # NOTE: a host sync per iteration, as in PyTorch's eager loop
    raise ControlFlowError(
        f"cond_fn must return a boolean scalar tensor or a boolean but got {pred}"
    )


def _check_body(before: list, after: list) -> None:
    if len(after) != len(before):
        raise ControlFlowError(
            "Expected body_fn_output and carried_inputs to have same number of outputs but "
            f"got {len(after)} outputs for {len(before)} carried inputs"
        )
    for k, (a, b) in enumerate(zip(after, before)):
        if isinstance(a, Tensor) != isinstance(b, Tensor):
            raise ControlFlowError(
                "Expected body_fn_output and carried_inputs to have same metadata but found: "
                f"pair[{k}] is a {type(a).__name__} for a carried {type(b).__name__}"
            )
        if not isinstance(a, Tensor):
            if not isinstance(a, int):
                raise ControlFlowError(f"while_loop: body_fn returned a {type(a).__name__}")
            continue
        for what in ("shape", "dtype", "device"):
            if getattr(a, what) != getattr(b, what):
                raise ControlFlowError(
                    "Expected body_fn_output and carried_inputs to have same metadata but "
                    f"found: pair[{k}] differ in '{what}: {getattr(a, what)} vs "
                    f"{getattr(b, what)}'"
                )


def while_loop(cond_fn, body_fn, carried_inputs):
    """``while cond_fn(*vals): vals = body_fn(*vals)``, starting from ``carried_inputs``.

    Args:
        cond_fn: returns a bool or a 0-d bool tensor (read on the host each iteration).
        body_fn: returns new values of the same structure, shapes and dtypes; it must not
            change its inputs in place or return them unchanged.
        carried_inputs: a tuple or list of tensors and ints (possibly nested).

    Returns:
        The final values (copies of ``carried_inputs`` when the loop runs no iteration).

    Example:
        >>> i, s = mg.while_loop(lambda i, s: i < 3, lambda i, s: (i + 1, s * 2),
        ...                      (mg.tensor(0), mg.ones(2)))
    """
    if not callable(cond_fn) or not callable(body_fn):
        raise ControlFlowError("Expect cond_fn and body_fn to be callable.")
    if not isinstance(carried_inputs, (tuple, list)):
        raise ControlFlowError(
            f"carried_inputs must be a tuple or list but got {type(carried_inputs)}"
        )
    leaves, spec = _flatten(carried_inputs)
    if not all(isinstance(t, (Tensor, int)) for t in leaves):
        raise ControlFlowError(
            "Expect carried_inputs to be a tuple of possibly nested dict/list/tuple that only "
            f"consists of tensor or int leaves, but got {carried_inputs}."
        )
    if not _check_pred(cond_fn(*carried_inputs)):
        copies = [t.clone() if isinstance(t, Tensor) else t for t in leaves]
        return _unflatten(copies, spec)
    vals = carried_inputs
    while True:
        versions = _versions(leaves)
        out = body_fn(*vals)
        if not isinstance(out, (tuple, list)):
            raise ControlFlowError(
                f"while_loop: body_fn should return a tuple (or list) but got {type(out)}"
            )
        new_leaves, _ = _flatten(out)
        _check_body(leaves, new_leaves)
        _check_pure("while_loop", "body_fn", leaves, versions, new_leaves)
        vals, leaves = out, new_leaves
        if not _check_pred(cond_fn(*vals)):
            return vals
