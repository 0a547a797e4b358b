"""Which dtypes the normalisations and the losses take together, as PyTorch's CPU kernels
do: the checks that refuse the other combinations, with messages that name the tensors and
the cast that fixes the call."""

from __future__ import annotations

from .. import dtypes as D
from ..errors import DTypeError

_HALF = ("bfloat16", "float16")


def check_norm_params(op: str, x, named) -> None:
    """Refuse parameters whose dtypes a normalisation does not take with input ``x``.

    NOTE: PyTorch 2.13's rule (layer_norm, group_norm, batch_norm, instance_norm; forward
    and backward): the parameters given (weight, bias, and batch_norm's running_mean and
    running_var) all have the input's dtype, or, for a bfloat16/float16 input, all are
    float32 (mixed precision: computed in float32, returned in the input's dtype). Anything
    else raises: a float64 weight for a float32 input, float32 parameters for a float64
    input, a float32 weight with a bfloat16 bias. rms_norm and instance_norm's running
    statistics are not checked: PyTorch takes any float dtype there.

    Args:
        op: the op's name, for the message.
        x: the input tensor.
        named: (name, tensor or None) pairs.
    """
    given = [(n, p) for n, p in named if p is not None]
    xdt = x.dtype
    if all(p.dtype is xdt for _, p in given):
        return
    allowed = (xdt, D.float32) if xdt.name in _HALF else (xdt,)
    ref, want = None, xdt
    if given[0][1].dtype in allowed:  # the first parameter sets the dtype the rest must share
        ref, want = given[0][0], given[0][1].dtype
    off = [(n, p) for n, p in given if p.dtype is not want]
    if not off:  # float32 parameters with a 16-bit input
        return
    name, bad = off[0]
    half = " (or all float32, for a bfloat16/float16 input)" if xdt.name in _HALF else ""
    also = f" and {ref} has dtype {want.name}" if ref is not None and want is not xdt else ""
    names = ", ".join(n for n, _ in named)
    raise DTypeError(
        f"{op}: the input has dtype {xdt.name}{also} but {name} has dtype {bad.dtype.name}; "
        f"{names} must all have the input's dtype{half}: cast with {name}.to(mg.{want.name})"
    )


def check_class_targets(op: str, x, target) -> None:
    """Refuse class-index targets of a dtype PyTorch does not take.

    NOTE: PyTorch 2.13 (cross_entropy and nll_loss with class indices): int64 targets, or
    uint8 ones for an input of shape (C,) or (N, C); int32, int16, int8, bool and floats
    raise, and so does uint8 for an input with spatial dims (N, C, d1, ...).
    """
    tdt = target.dtype
    if tdt is D.int64 or (tdt is D.uint8 and x.ndim <= 2):
        return
    where = " for an input with spatial dims (N, C, d1, ...)" if tdt is D.uint8 else ""
    raise DTypeError(
        f"{op}: class-index targets must be int64 (or uint8 for an input of shape (C,) or "
        f"(N, C)), got {tdt.name}{where}; convert them with target.long()"
    )


def check_int64(op: str, what: str, t) -> None:
    """Refuse ``t`` (``what``) unless it is int64.

    NOTE: PyTorch 2.13's multi_margin_loss and multilabel_margin_loss take int64 targets
    only (not even uint8, which cross_entropy takes).
    """
    if t.dtype is not D.int64:
        raise DTypeError(
            f"{op}: {what} must be int64, got {t.dtype.name}; convert with {what}.long()"
        )


def check_same_as_input(op: str, x, what: str, t, fix: str = "") -> None:
    """Refuse ``t`` (``what``, e.g. "weight") unless it has the input's dtype; None passes.

    NOTE: PyTorch 2.13 takes the class weights of cross_entropy/nll_loss (class indices)
    and multi_margin_loss, and binary_cross_entropy's target, only in the input's dtype:
    a float64 weight for a float32 input raises, as does a float32 one for bfloat16.
    """
    if t is None or t.dtype is x.dtype:
        return
    raise DTypeError(
        f"{op}: {what} has dtype {t.dtype.name} but the input has dtype {x.dtype.name}; they "
        f"must be the same dtype: cast with {what}.to(mg.{x.dtype.name}){fix}"
    )


def check_not_integer(op: str, *named) -> None:
    """Refuse integer and bool tensors among ``named`` ((name, tensor) pairs).

    NOTE: PyTorch 2.13's kl_div takes no integer or bool input or target ("Integral inputs
    not supported"); binary_cross_entropy_with_logits takes no such target.
    """
    for name, t in named:
        if not (t.is_floating_point() or t.is_complex()):
            raise DTypeError(
                f"{op}: {name} has dtype {t.dtype.name}, but integer and bool tensors are "
                f"not supported here; cast with {name}.float()"
            )
