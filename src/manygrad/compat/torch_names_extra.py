"""More of PyTorch's top-level names that library code reaches for: the symbolic-size
classes (for ``isinstance`` checks), the deterministic debug mode, the ATen-level pooling,
grid-sampling and weight-norm helpers, and ``embedding_renorm_``.

Re-exported as ``manygrad.<name>``.

Example:
    >>> out, idx = mg.max_pool1d_with_indices(x, 3)
    >>> mg.norm_except_dim(w, 2, 0)       # weight norm's per-output-channel norm
"""

from __future__ import annotations

from ..tensor import Tensor


def _F():  # noqa: N802
    from ..nn import functional

    return functional


# ---------------------------------------------------------------------------- symbolic sizes


class SymInt:
    """PyTorch's symbolic integer (a size traced by the compiler). manygrad's sizes are
    always concrete ints, so nothing is ever an instance: ``isinstance(n, mg.SymInt)`` is
    False, as it is in PyTorch's eager mode."""

    def __init__(self, *args, **kwargs):
        raise TypeError("SymInt: manygrad's sizes are plain ints; use int(n)")


class SymFloat:
    """PyTorch's symbolic float; never instantiated by manygrad (see ``SymInt``)."""

    def __init__(self, *args, **kwargs):
        raise TypeError("SymFloat: manygrad's sizes are plain numbers; use float(x)")


class SymBool:
    """PyTorch's symbolic bool; never instantiated by manygrad (see ``SymInt``)."""

    def __init__(self, *args, **kwargs):
        raise TypeError("SymBool: manygrad's conditions are plain bools; use bool(b)")


# ---------------------------------------------------------------------------- determinism

_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2}


def set_deterministic_debug_mode(debug_mode) -> None:
    """0 / "default": no checks; 1 / "warn": warn on nondeterministic ops; 2 / "error":
    refuse them: ``use_deterministic_algorithms`` with ``warn_only`` as the mode says."""
    from .. import use_deterministic_algorithms

    if isinstance(debug_mode, str):
        if debug_mode not in _DEBUG_MODES:
            raise RuntimeError(
                f"invalid value of debug_mode, expected one of `default`, `warn`, `error`, "
                f"but got {debug_mode}"
            )
        debug_mode = _DEBUG_MODES[debug_mode]
    elif not isinstance(debug_mode, int):
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode).__name__}")
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(
            f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}"
        )
    if debug_mode == 0:
        use_deterministic_algorithms(False)
    else:
        use_deterministic_algorithms(True, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    """0 (off), 1 (warn) or 2 (error): see ``set_deterministic_debug_mode``."""
    from .. import (
        are_deterministic_algorithms_enabled,
        is_deterministic_algorithms_warn_only_enabled,
    )

    if not are_deterministic_algorithms_enabled():
        return 0
    return 1 if is_deterministic_algorithms_warn_only_enabled() else 2


# ---------------------------------------------------------------------------- ATen-level ops


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=(), padding=0, dilation=1,  # noqa: A002
                            ceil_mode: bool = False):  # fmt: skip
    """``(values, indices)`` of 1-d max pooling (``stride`` empty: the kernel size)."""
    stride = None if stride in ((), [], None) else stride
    return _F().max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode,
                           return_indices=True)  # fmt: skip


_INTERP = {0: "bilinear", 1: "nearest", 2: "bicubic"}
_PADDING = {0: "zeros", 1: "border", 2: "reflection"}


def grid_sampler(input: Tensor, grid: Tensor, interpolation_mode: int, padding_mode: int,  # noqa: A002
                 align_corners: bool) -> Tensor:  # fmt: skip
    """``F.grid_sample`` with the modes as ATen's integers: interpolation 0 bilinear, 1
    nearest, 2 bicubic; padding 0 zeros, 1 border, 2 reflection."""
    if interpolation_mode not in _INTERP or padding_mode not in _PADDING:
        raise ValueError(
            f"grid_sampler: interpolation_mode must be 0, 1 or 2 and padding_mode 0, 1 or 2, "
            f"got {interpolation_mode} and {padding_mode}"
        )
    return _F().grid_sample(input, grid, _INTERP[interpolation_mode], _PADDING[padding_mode],
                            align_corners)  # fmt: skip


def grid_sampler_2d(input: Tensor, grid: Tensor, interpolation_mode: int, padding_mode: int,  # noqa: A002
                    align_corners: bool) -> Tensor:  # fmt: skip
    """``grid_sampler`` for a 4-d input."""
    if input.ndim != 4:
        raise ValueError(f"grid_sampler_2d: expected a 4-d input, got {input.ndim}-d")
    return grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners)


def grid_sampler_3d(input: Tensor, grid: Tensor, interpolation_mode: int, padding_mode: int,  # noqa: A002
                    align_corners: bool) -> Tensor:  # fmt: skip
    """``grid_sampler`` for a 5-d input."""
    if input.ndim != 5:
        raise ValueError(f"grid_sampler_3d: expected a 5-d input, got {input.ndim}-d")
    return grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners)


def affine_grid_generator(theta: Tensor, size, align_corners: bool) -> Tensor:
    """``F.affine_grid(theta, size, align_corners)``."""
    return _F().affine_grid(theta, list(size), align_corners)


def norm_except_dim(v: Tensor, pow=2, dim: int = 0) -> Tensor:  # noqa: A002
    """The ``pow``-norm over every dim but ``dim``, kept as size-1 dims (``dim=-1``: the
    norm of all of ``v``, 0-d): what weight normalization divides by."""
    if dim == -1:
        return v.norm(pow)
    dims = [d for d in range(v.ndim) if d != dim % v.ndim]
    return v.norm(pow, dim=dims, keepdim=True)


def embedding_renorm_(input: Tensor, indices: Tensor, max_norm: float, norm_type: float) -> Tensor:  # noqa: A002
    """Scale, in place and outside autograd, the rows of ``input`` (an embedding table) that
    ``indices`` name whose ``norm_type``-norm exceeds ``max_norm`` down to ``max_norm`` (what
    ``Embedding(max_norm=...)`` does on lookup); returns ``input``."""
    from ..autograd import no_grad

    with no_grad():
        rows = indices.flatten().unique()
        picked = input[rows]
        norms = picked.norm(norm_type, dim=1, keepdim=True)
        # NOTE: PyTorch's factor, max_norm / (norm + 1e-7), only where the norm exceeds it
        scale = (max_norm / (norms + 1e-7)).where(norms > max_norm, 1.0)
        input[rows] = picked * scale
    return input


__all__ = [
    "SymBool",
    "SymFloat",
    "SymInt",
    "affine_grid_generator",
    "embedding_renorm_",
    "get_deterministic_debug_mode",
    "grid_sampler",
    "grid_sampler_2d",
    "grid_sampler_3d",
    "max_pool1d_with_indices",
    "norm_except_dim",
    "set_deterministic_debug_mode",
]
