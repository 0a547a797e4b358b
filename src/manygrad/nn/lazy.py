"""Lazy layers: ``LazyLinear``, ``LazyConv1d/2d/3d``, ``LazyConvTranspose1d/2d/3d``,
``LazyBatchNorm1d/2d/3d``, ``LazyInstanceNorm1d/2d/3d``. Until the first input, their
weights are ``UninitializedParameter`` and their running statistics ``UninitializedBuffer``
placeholders (a dtype and a device, no shape); the first call reads the input size
(in_features, in_channels, num_features), materializes them with PyTorch's initialisation,
and the module becomes the ordinary layer (as PyTorch's ``cls_to_become``). Loading a state
dict materializes them too, with the loaded shapes.

The parameters are the same objects before and after (materialize changes them in place),
so an optimizer built before the first forward updates them, as in PyTorch.
"""

from __future__ import annotations

import itertools

from ..autograd import no_grad
from ..tensor import Tensor
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from .conv3d import Conv3d, ConvTranspose3d
from .instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, _InstanceNorm
from .linear import Linear
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, _BatchNorm
from .parameter import UninitializedBuffer, UninitializedParameter, is_lazy


def _make_lazy(module: Module, params=("weight", "bias"), buffers=()) -> None:
    """Replace the named parameters and buffers (those not None) by placeholders of the same
    dtype and device."""
    for name in params:
        p = module._parameters.get(name)
        if p is not None:
            module._parameters[name] = UninitializedParameter(p.requires_grad, p.device, p.dtype)
    for name in buffers:
        b = module._buffers.get(name)
        if b is not None:
            module._buffers[name] = UninitializedBuffer(False, b.device, b.dtype)


class _LazyMixin:
    cls_to_become: type = None
    _spatial = 0  # number of spatial dims after the channels (0: features last)
    _in_attr = "in_features"  # the size read from the first input

    def has_uninitialized_params(self) -> bool:
        """Whether a parameter or buffer is still a placeholder."""
        return any(is_lazy(t) for t in itertools.chain(self._parameters.values(),
                                                        self._buffers.values()))  # fmt: skip

    def reset_parameters(self) -> None:
        # NOTE: as PyTorch's: nothing to reset before the sizes are known
        if not self.has_uninitialized_params() and getattr(self, self._in_attr) != 0:
            super().reset_parameters()

    def _in_size(self, input: Tensor) -> int:
        if self._spatial == 0:
            return input.shape[-1]
        if self._spatial < 0:  # batch norm: channels are dim 1 ((N, C) and (N, C, ...))
            return input.shape[1]
        if input.ndim not in (self._spatial + 1, self._spatial + 2):
            raise ValueError(
                f"Expected {self._spatial + 1}D (unbatched) or {self._spatial + 2}D (batched) "
                f"input to {type(self).__name__}, but got input of size: {tuple(input.shape)}"
            )
        return input.shape[0 if input.ndim == self._spatial + 1 else 1]

    def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:  # pragma: no cover
        raise NotImplementedError(
            f"initialize_parameters is not implemented for {type(self).__name__}"
        )

    def _materialize(self, shapes: dict) -> None:
        with no_grad():
            for name, shape in shapes.items():
                t = getattr(self, name)
                if t is not None:
                    t.materialize(shape)
            self.reset_parameters()

    def __call__(self, *args, **kwargs):
        self.initialize_parameters(*args, **kwargs)
        if self.has_uninitialized_params():
            raise RuntimeError(f"module {self._get_name()} has not been fully initialized")
        if self.cls_to_become is not None:
            self.__class__ = self.cls_to_become
        return Module.__call__(self, *args, **kwargs)

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        # NOTE: placeholders go in as they are (they cannot be detached), as in PyTorch
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars or is_lazy(p) else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars or is_lazy(b) else b.detach()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # NOTE: PyTorch's lazy load hook: a placeholder takes the shape of the loaded tensor
        for name, t in itertools.chain(self._parameters.items(), self._buffers.items()):
            value = state_dict.get(prefix + name)
            if t is not None and value is not None and is_lazy(t) and not is_lazy(value):
                with no_grad():
                    t.materialize(tuple(value.shape))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class LazyLinear(_LazyMixin, Linear):
    """``Linear`` whose in_features is the last dim of the first input.

    Example:
        >>> layer = mg.nn.LazyLinear(10); layer(mg.randn(4, 7)).shape; layer.in_features
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        Linear.__init__(self, 0, out_features, bias, device, dtype)
        _make_lazy(self)

    def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
        if self.has_uninitialized_params():
            self.in_features = self._in_size(input)
            self._materialize({"weight": (self.out_features, self.in_features),
                               "bias": (self.out_features,)})  # fmt: skip


def _lazy_conv(base, n: int, transposed: bool):
    class LazyConv(_LazyMixin, base):
        cls_to_become = base
        _spatial = n
        _in_attr = "in_channels"

        def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, *args,
                     **kwargs) -> None:  # fmt: skip
            base.__init__(self, 0, out_channels, kernel_size, stride, padding, *args, **kwargs)
            _make_lazy(self)

        def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
            if not self.has_uninitialized_params():
                return
            self.in_channels = self._in_size(input)
            g, k = self.groups, self.kernel_size
            if self.in_channels % g:
                raise ValueError(
                    f"{type(self).__name__}: in_channels must be divisible by groups, got "
                    f"{self.in_channels} input channels and groups={g}"
                )
            if transposed:
                shape = (self.in_channels, self.out_channels // g) + k
            else:
                shape = (self.out_channels, self.in_channels // g) + k
            self._materialize({"weight": shape, "bias": (self.out_channels,)})

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
        _in_attr = "num_features"

        def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                     track_running_stats: bool = True, device=None, dtype=None) -> None:  # fmt: skip
            # NOTE: PyTorch's lazy norms default to affine=True, track_running_stats=True
            base.__init__(self, 0, eps, momentum, affine, track_running_stats, device, dtype)
            _make_lazy(self, buffers=("running_mean", "running_var"))

        def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
            if self.has_uninitialized_params():
                self.num_features = c = self._in_size(input)
                self._materialize({k: (c,) for k in ("weight", "bias", "running_mean",
                                                     "running_var")})  # fmt: skip

    LazyNorm.__name__ = LazyNorm.__qualname__ = f"Lazy{base.__name__}"
    LazyNorm.__doc__ = f"``{base.__name__}`` whose num_features is read from the first input."
    return LazyNorm


LazyBatchNorm1d = _lazy_norm(BatchNorm1d, 1)
LazyBatchNorm2d = _lazy_norm(BatchNorm2d, 2)
LazyBatchNorm3d = _lazy_norm(BatchNorm3d, 3)
LazyInstanceNorm1d = _lazy_norm(InstanceNorm1d, 1)
LazyInstanceNorm2d = _lazy_norm(InstanceNorm2d, 2)
LazyInstanceNorm3d = _lazy_norm(InstanceNorm3d, 3)
