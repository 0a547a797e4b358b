"""PyTorch's Python-side checks: ``torch._check`` and its siblings, which custom operators'
fake implementations and library code call to state their assumptions, and ``torch._assert``.

Each raises its error type (``_check``: RuntimeError, ``_check_index``: IndexError,
``_check_value``: ValueError, ``_check_type``: TypeError, ``_check_not_implemented``:
NotImplementedError) when ``cond`` is False, with the string of ``message()`` (a callable, so
that the message costs nothing when the check passes) or PyTorch's default text.

Example:
    >>> mg._check(x.shape == y.shape, lambda: f"shapes differ: {x.shape} vs {y.shape}")
"""

from __future__ import annotations

import builtins

__all__ = ["_assert", "_check", "_check_index", "_check_is_size", "_check_not_implemented",
           "_check_tensor_all", "_check_tensor_all_with", "_check_type", "_check_value",
           "_check_with"]  # fmt: skip

_DEFAULT = (
    "Expected cond to be True, but got False. (Could this error message be improved? If "
    "so, please report an enhancement request to PyTorch.)"
)


def _check_with(error_type, cond, message=None) -> None:
    """Raise ``error_type(message())`` unless ``cond`` (a Python bool) is True."""
    from ..tensor import Tensor

    if isinstance(cond, Tensor):
        raise TypeError(
            "cond must be a bool, but got a Tensor. For tensor conditions, use "
            "torch._check_tensor_all() to assert that all elements are true."
        )
    if not isinstance(cond, builtins.bool):
        raise TypeError(f"cond must be a bool, but got {type(cond)}")
    if cond:
        return
    if not issubclass(error_type, Exception) or issubclass(error_type, Warning):
        raise AssertionError(
            f"error_type must be a subclass of Exception but not Warning, got {error_type}"
        )
    if message is None:
        raise error_type(_DEFAULT)
    if not callable(message):
        raise TypeError("message must be a callable")
    raise error_type(str(message()))


def _check(cond, message=None) -> None:
    """``TORCH_CHECK``: a RuntimeError unless ``cond``."""
    _check_with(RuntimeError, cond, message)


def _check_index(cond, message=None) -> None:
    """``TORCH_CHECK_INDEX``: an IndexError unless ``cond``."""
    _check_with(IndexError, cond, message)


def _check_value(cond, message=None) -> None:
    """``TORCH_CHECK_VALUE``: a ValueError unless ``cond``."""
    _check_with(ValueError, cond, message)


def _check_type(cond, message=None) -> None:
    """``TORCH_CHECK_TYPE``: a TypeError unless ``cond``."""
    _check_with(TypeError, cond, message)


def _check_not_implemented(cond, message=None) -> None:
    """``TORCH_CHECK_NOT_IMPLEMENTED``: a NotImplementedError unless ``cond``."""
    _check_with(NotImplementedError, cond, message)


def _check_is_size(i, message=None, *, max=None) -> None:  # noqa: A002 - PyTorch's name
    """``i >= 0`` (and ``i <= max`` when given), as ``_check``. PyTorch deprecates it."""
    import warnings

    warnings.warn(
        "_check_is_size will be removed in a future PyTorch release along with "
        "guard_size_oblivious.     Use _check(i >= 0) instead.",
        FutureWarning,
        stacklevel=2,
    )
    _check(i >= 0, message)
    if max is not None:
        _check(i <= max, message)


def _check_tensor_all_with(error_type, cond, message=None) -> None:
    """Raise ``error_type`` unless every element of the bool tensor ``cond`` is True."""
    from .. import dtypes
    from ..tensor import Tensor

    if not isinstance(cond, Tensor):
        raise TypeError(f"cond must be a tensor, but got {type(cond)}")
    if cond.dtype != dtypes.bool_:
        raise TypeError(f"cond tensor must have dtype torch.bool, but got {cond.dtype}")
    _check_with(error_type, builtins.bool(cond.all().item()), message)


def _check_tensor_all(cond, message=None) -> None:
    """``TORCH_CHECK_TENSOR_ALL``: a RuntimeError unless all of ``cond`` is True."""
    _check_tensor_all_with(RuntimeError, cond, message)


def _assert(condition, message) -> None:
    """``assert condition, message`` that survives ``python -O``."""
    if not condition:
        raise AssertionError(message)
