"""Normalisation layers: ``BatchNorm1d/2d``, ``LayerNorm``, ``GroupNorm``, ``RMSNorm``."""

from __future__ import annotations

import numbers

from .. import creation
from .. import dtypes as D
from .. import ops as F
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter


def _affine_params(m: Module, shape: tuple, affine: bool, bias: bool, kw: dict) -> None:
    """Register a norm layer's ``weight`` (ones) and ``bias`` (zeros), or None for each."""
    m.register_parameter("weight", Parameter(creation.ones(*shape, **kw)) if affine else None)
    m.register_parameter(
        "bias", Parameter(creation.zeros(*shape, **kw)) if affine and bias else None
    )


def _reset_affine(m: Module) -> None:
    if m.weight is not None:
        init.ones_(m.weight)
    if m.bias is not None:
        init.zeros_(m.bias)


class _BatchNorm(Module):
    _version = 2
    _dims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        kw = {"device": device, "dtype": dtype}
        _affine_params(self, (num_features,), affine, bias, kw)
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, **kw))
            self.register_buffer("running_var", creation.ones(num_features, **kw))
            self.register_buffer("num_batches_tracked",
                                 creation.zeros((), dtype=D.int64, device=device))  # fmt: skip
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() not in self._dims:
            want = " or ".join(f"{d}D" for d in self._dims)
            raise ValueError(
                f"{type(self).__name__}: expected {want} input, got {input.dim()}D input of "
                f"shape {tuple(input.shape)}"
            )

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked._data += 1
            if self.momentum is None:  # cumulative average
                # NOTE: momentum=None reads the counter on the host (a sync), as PyTorch does
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if keep else None,
            self.running_var if keep else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing,
                              unexpected, errors) -> None:  # fmt: skip
        # NOTE: state dicts from before num_batches_tracked existed (version < 2, or no
        # metadata) load with a count of 0, as in PyTorch
        key = prefix + "num_batches_tracked"
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and self.track_running_stats \
                and key not in state_dict:  # fmt: skip
            state_dict[key] = self.num_batches_tracked
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing,
                                      unexpected, errors)  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Ioffe & Szegedy (2015) batch normalisation over (N, C) or (N, C, L) inputs.

    Args:
        num_features: C.
        eps: added to the variance (default 1e-5).
        momentum: running-statistics update factor (default 0.1; None: cumulative mean).
        affine: learn weight and bias (default True).
        track_running_stats: keep running_mean/running_var for eval (default True).

    Example:
        >>> mg.nn.BatchNorm1d(8)(mg.randn(4, 8)).shape
        manygrad.Size([4, 8])
    """

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Ioffe & Szegedy (2015) batch normalisation over (N, C, H, W) inputs.

    Args: as ``BatchNorm1d``.

    Example:
        >>> bn = mg.nn.BatchNorm2d(3); bn(mg.randn(2, 3, 4, 4)); bn.eval()
    """

    _dims = (4,)


def _shape_tuple(normalized_shape) -> tuple:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(normalized_shape)


class LayerNorm(Module):
    """Ba et al. (2016) layer normalisation over the last dims ``normalized_shape``.

    Args:
        normalized_shape: the trailing shape to normalise over (int or tuple).
        eps: added to the variance (default 1e-5).
        elementwise_affine: learn weight (ones) and bias (zeros) (default True).
        bias: learn the bias too (default True).

    Example:
        >>> mg.nn.LayerNorm(8)(mg.randn(2, 5, 8)).shape
        manygrad.Size([2, 5, 8])
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_params(self, self.normalized_shape, elementwise_affine, bias,
                       {"device": device, "dtype": dtype})  # fmt: skip

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Wu & He (2018) group normalisation: channels split into ``num_groups`` groups.

    Args:
        num_groups: number of groups (must divide num_channels).
        num_channels: C of the (N, C, *) input.
        eps: added to the variance (default 1e-5).
        affine: learn per-channel weight and bias (default True).

    Example:
        >>> mg.nn.GroupNorm(2, 8)(mg.randn(3, 8, 4, 4)).shape
        manygrad.Size([3, 8, 4, 4])
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *,
                 bias: bool = True) -> None:  # fmt: skip
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                f"({num_groups})"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine_params(self, (num_channels,), affine, bias, {"device": device, "dtype": dtype})

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class RMSNorm(Module):
    """Zhang & Sennrich (2019) root-mean-square normalisation over the last dims.

    Args:
        normalized_shape: the trailing shape to normalise over (int or tuple).
        eps: added to the mean square (default None: the dtype's machine epsilon).
        elementwise_affine: learn a weight (ones) (default True).

    Example:
        >>> mg.nn.RMSNorm(8)(mg.randn(2, 8)).shape
        manygrad.Size([2, 8])
    """

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(creation.ones(*self.normalized_shape, device=device,
                                                  dtype=dtype))  # fmt: skip
        else:
            self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input: Tensor) -> Tensor:
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class BatchNorm3d(_BatchNorm):
    """Ioffe & Szegedy (2015) batch normalisation over (N, C, D, H, W) inputs.

    Args: as ``BatchNorm1d``.

    Example:
        >>> mg.nn.BatchNorm3d(3)(mg.randn(2, 3, 4, 4, 4)).shape
    """

    _dims = (5,)
