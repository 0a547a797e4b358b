"""Lazy layers: ``LazyLinear``, ``LazyConv1d/2d/3d``, ``LazyConvTranspose1d/2d/3d``,
``LazyBatchNorm1d/2d/3d``, ``LazyInstanceNorm1d/2d/3d``. Their input size (in_features,
in_channels, num_features) is read from the first input; then the parameters get their
shapes and PyTorch's initialisation, and the module becomes the ordinary layer (as
PyTorch's ``cls_to_become``).

The parameters are the same objects before and after (their arrays are replaced), so an
optimizer built before the first forward updates them, as in PyTorch.
"""

from __future__ import annotations

import warnings

from .. import backend
from ..tensor import Tensor
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from .conv3d import Conv3d, ConvTranspose3d
from .instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, _InstanceNorm
from .linear import Linear
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, _BatchNorm


def _resize(t: Tensor | None, shape: tuple) -> None:
    if t is None:
        return
    xp = backend.array_module(t._data)
    with backend.device_scope(t._device):
        t._data = xp.zeros(shape, t._data.dtype)


class _LazyMixin:
    cls_to_become: type = None
    _spatial = 0  # number of spatial dims after the channels (0: features last)

    def has_uninitialized_params(self) -> bool:
        return True

    def _in_size(self, input: Tensor) -> int:
        if self._spatial == 0:
            return input.shape[-1]
        if self._spatial < 0:  # batch norm: channels are dim 1 ((N, C) and (N, C, ...))
            return input.shape[1]
        unbatched = input.ndim == self._spatial + 1
        return input.shape[0 if unbatched else 1]

    def initialize_parameters(self, input: Tensor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        if type(self).cls_to_become is not None and type(self) is not self.cls_to_become:
            self.initialize_parameters(args[0])
            self.__class__ = self.cls_to_become
        return Module.__call__(self, *args, **kwargs)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Initializing zero-element tensors is a no-op")
        fn(*args, **kwargs)


class LazyLinear(_LazyMixin, Linear):
    """``Linear`` whose in_features is the last dim of the first input.

    Example:
        >>> layer = mg.nn.LazyLinear(10); layer(mg.randn(4, 7)).shape; layer.in_features
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        _quiet(Linear.__init__, self, 0, out_features, bias, device, dtype)

    def initialize_parameters(self, input: Tensor) -> None:
        self.in_features = self._in_size(input)
        _resize(self.weight, (self.out_features, self.in_features))
        self.reset_parameters()


def _lazy_conv(base, n: int, transposed: bool):
    class LazyConv(_LazyMixin, base):
        cls_to_become = base
        _spatial = n

        def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, *args,
                     **kwargs) -> None:  # fmt: skip
            _quiet(base.__init__, self, 0, out_channels, kernel_size, stride, padding, *args,
                   **kwargs)  # fmt: skip

        def initialize_parameters(self, input: Tensor) -> None:
            self.in_channels = self._in_size(input)
            g, k = self.groups, self.kernel_size
            if transposed:
                shape = (self.in_channels, self.out_channels // g) + k
            else:
                shape = (self.out_channels, self.in_channels // g) + k
            _resize(self.weight, shape)
            self.reset_parameters()

    kind = "ConvTranspose" if transposed else "Conv"
    LazyConv.__name__ = LazyConv.__qualname__ = f"Lazy{kind}{n}d"
    LazyConv.__doc__ = f"``{base.__name__}`` whose in_channels is read from the first input."
    return LazyConv


LazyConv1d = _lazy_conv(Conv1d, 1, False)
LazyConv2d = _lazy_conv(Conv2d, 2, False)
LazyConv3d = _lazy_conv(Conv3d, 3, False)
LazyConvTranspose1d = _lazy_conv(ConvTranspose1d, 1, True)
LazyConvTranspose2d = _lazy_conv(ConvTranspose2d, 2, True)
LazyConvTranspose3d = _lazy_conv(ConvTranspose3d, 3, True)


def _lazy_norm(base, n: int):
    class LazyNorm(_LazyMixin, base):
        cls_to_become = base
        _spatial = -1 if issubclass(base, _BatchNorm) and not issubclass(base, _InstanceNorm) \
            else n  # fmt: skip

        def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                     track_running_stats: bool = True, device=None, dtype=None) -> None:  # fmt: skip
            # NOTE: PyTorch's lazy norms default to affine=True, track_running_stats=True
            _quiet(base.__init__, self, 0, eps, momentum, affine, track_running_stats, device,
                   dtype)  # fmt: skip

        def initialize_parameters(self, input: Tensor) -> None:
            c = self._in_size(input)
            self.num_features = c
            for t in (self.weight, self.bias, self.running_mean, self.running_var):
                _resize(t, (c,))
            self.reset_parameters()

    LazyNorm.__name__ = LazyNorm.__qualname__ = f"Lazy{base.__name__}"
    LazyNorm.__doc__ = f"``{base.__name__}`` whose num_features is read from the first input."
    return LazyNorm


LazyBatchNorm1d = _lazy_norm(BatchNorm1d, 1)
LazyBatchNorm2d = _lazy_norm(BatchNorm2d, 2)
LazyBatchNorm3d = _lazy_norm(BatchNorm3d, 3)
LazyInstanceNorm1d = _lazy_norm(InstanceNorm1d, 1)
LazyInstanceNorm2d = _lazy_norm(InstanceNorm2d, 2)
LazyInstanceNorm3d = _lazy_norm(InstanceNorm3d, 3)
