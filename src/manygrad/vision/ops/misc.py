"""The layers torchvision's models share (torchvision.ops.misc): frozen batch norm,
convolution-norm-activation blocks, squeeze-and-excitation, MLP and Permute, with
torchvision's parameter and buffer names so that its checkpoints load."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence

import manygrad as mg
from manygrad import Tensor, nn

interpolate = nn.functional.interpolate


def _make_ntuple(x, n: int) -> tuple:
    if isinstance(x, Sequence) and not isinstance(x, str):
        return tuple(x)
    return tuple(itertools.repeat(x, n))


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose statistics and affine parameters are fixed buffers (``weight``,
    ``bias``, ``running_mean``, ``running_var``), as detection backbones use.

    Args:
        num_features: C of an (N, C, H, W) input.
        eps: added to the variance. Default 1e-5.

    Example: ``FrozenBatchNorm2d(64)(x)``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", mg.ones(num_features))
        self.register_buffer("bias", mg.zeros(num_features))
        self.register_buffer("running_mean", mg.zeros(num_features))
        self.register_buffer("running_var", mg.ones(num_features))

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs,
    ):  # fmt: skip
        # NOTE: a BatchNorm2d's checkpoint loads here too: its step counter has no use
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, x: Tensor) -> Tensor:
        scale = (
            self.weight.reshape(1, -1, 1, 1)
            * (self.running_var.reshape(1, -1, 1, 1) + self.eps).rsqrt()
        )
        shift = self.bias.reshape(1, -1, 1, 1) - self.running_mean.reshape(1, -1, 1, 1) * scale
        return x * scale + shift

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.weight.shape[0]}, eps={self.eps})"


class ConvNormActivation(nn.Sequential):
    """Convolution, then an optional norm layer, then an optional activation; padding
    defaults to "same" for odd kernels: ``(kernel_size - 1) // 2 * dilation``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=3,
        stride=1,
        padding=None,
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        dilation=1,
        inplace: bool | None = True,
        bias: bool | None = None,
        conv_layer: Callable[..., nn.Module] = nn.Conv2d,
    ) -> None:
        if padding is None:
            if isinstance(kernel_size, int) and isinstance(dilation, int):
                padding = (kernel_size - 1) // 2 * dilation
            else:
                dims = len(kernel_size) if isinstance(kernel_size, Sequence) else len(dilation)
                kernel_size = _make_ntuple(kernel_size, dims)
                dilation = _make_ntuple(dilation, dims)
                padding = tuple((kernel_size[i] - 1) // 2 * dilation[i] for i in range(dims))
        if bias is None:
            bias = norm_layer is None
        layers = [
            conv_layer(
                in_channels, out_channels, kernel_size, stride, padding,
                dilation=dilation, groups=groups, bias=bias,
            )
        ]  # fmt: skip
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer(**({} if inplace is None else {"inplace": inplace})))
        super().__init__(*layers)
        self.out_channels = out_channels
        if self.__class__ is ConvNormActivation:
            warnings.warn(
                "Don't use ConvNormActivation directly, please use Conv2dNormActivation and "
                "Conv3dNormActivation instead.",
                stacklevel=2,
            )


class Conv2dNormActivation(ConvNormActivation):
    """Conv2d -> norm (default BatchNorm2d) -> activation (default ReLU).

    Args:
        in_channels, out_channels: channels in and out.
        kernel_size: default 3. stride: default 1.
        padding: default ``(kernel_size - 1) // 2 * dilation``.
        groups: default 1. dilation: default 1.
        norm_layer: default ``nn.BatchNorm2d``; None for none.
        activation_layer: default ``nn.ReLU``; None for none.
        inplace: the activation's ``inplace`` (None: its default). Default True.
        bias: the convolution's bias; default: only without a norm layer.

    Example: ``Conv2dNormActivation(3, 16, stride=2)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=3,
        stride=1,
        padding=None,
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        dilation=1,
        inplace: bool | None = True,
        bias: bool | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, groups, norm_layer,
            activation_layer, dilation, inplace, bias, nn.Conv2d,
        )  # fmt: skip


class Conv3dNormActivation(ConvNormActivation):
    """Conv3d -> norm (default BatchNorm3d) -> activation (default ReLU); arguments as
    :class:`Conv2dNormActivation`.

    Example: ``Conv3dNormActivation(3, 8, kernel_size=(1, 3, 3))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=3,
        stride=1,
        padding=None,
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm3d,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        dilation=1,
        inplace: bool | None = True,
        bias: bool | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, groups, norm_layer,
            activation_layer, dilation, inplace, bias, nn.Conv3d,
        )  # fmt: skip


class SqueezeExcitation(nn.Module):
    """Squeeze-and-Excitation (Hu et al., 2018): channels scaled by a gate computed from
    their global average (``avgpool``, ``fc1``, ``activation``, ``fc2``,
    ``scale_activation``).

    Args:
        input_channels: C of the input.
        squeeze_channels: width of the bottleneck.
        activation: default ``nn.ReLU``.
        scale_activation: default ``nn.Sigmoid``.

    Example: ``SqueezeExcitation(64, 16)(x)``.
    """

    def __init__(
        self,
        input_channels: int,
        squeeze_channels: int,
        activation: Callable[..., nn.Module] = nn.ReLU,
        scale_activation: Callable[..., nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, input: Tensor) -> Tensor:  # noqa: A002 - torchvision's name
        s = self.activation(self.fc1(self.avgpool(input)))
        return self.scale_activation(self.fc2(s))

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return self._scale(input) * input


class MLP(nn.Sequential):
    """Linear layers with an optional norm, an activation and dropout between them (and
    dropout after the last).

    Args:
        in_channels: input features.
        hidden_channels: the width of each linear layer; the last is the output's.
        norm_layer: default None. activation_layer: default ``nn.ReLU``.
        inplace: the activation's and dropout's ``inplace`` (None: their default).
        bias: default True. dropout: default 0.0.

    Example: ``MLP(32, [64, 10], dropout=0.1)``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: list[int],
        norm_layer: Callable[..., nn.Module] | None = None,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        inplace: bool | None = None,
        bias: bool = True,
        dropout: float = 0.0,
    ):
        params = {} if inplace is None else {"inplace": inplace}
        layers = []
        in_dim = in_channels
        for hidden in hidden_channels[:-1]:
            layers.append(nn.Linear(in_dim, hidden, bias=bias))
            if norm_layer is not None:
                layers.append(norm_layer(hidden))
            layers.append(activation_layer(**params))
            layers.append(nn.Dropout(dropout, **params))
            in_dim = hidden
        layers.append(nn.Linear(in_dim, hidden_channels[-1], bias=bias))
        layers.append(nn.Dropout(dropout, **params))
        super().__init__(*layers)


class Permute(nn.Module):
    """The input with its dimensions permuted to ``dims``.

    Example: ``Permute([0, 2, 3, 1])(x)`` (NCHW -> NHWC).
    """

    def __init__(self, dims: list[int]):
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return mg.permute(x, self.dims)
