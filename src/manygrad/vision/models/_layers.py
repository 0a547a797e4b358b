"""The building blocks torchvision's models share (``torchvision.ops.misc``'s
``Conv2dNormActivation`` and ``SqueezeExcitation``, ``torchvision.ops``'s
``StochasticDepth``), with the same submodule names so that state-dict keys match."""

from __future__ import annotations

from collections.abc import Callable

import manygrad as mg

from ... import nn


class Conv2dNormActivation(nn.Sequential):
    """Conv2d, then a norm layer, then an activation, as one ``Sequential`` (keys ``0``,
    ``1``; the activation holds no weights).

    Args:
        in_channels, out_channels, kernel_size, stride (1), padding (None: "same" for odd
            kernels, ``(kernel_size - 1) // 2 * dilation``), groups (1), dilation (1).
        norm_layer: the norm's class (default ``nn.BatchNorm2d``; None: no norm).
        activation_layer: the activation's class (default ``nn.ReLU``; None: none).
        inplace: passed to the activation when not None (default True).
        bias: the conv's bias (default None: only when there is no norm layer).

    Example:
        >>> Conv2dNormActivation(3, 16, 3, stride=2)(mg.randn(1, 3, 8, 8)).shape
        manygrad.Size([1, 16, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        dilation: int = 1,
        inplace: bool | None = True,
        bias: bool | None = None,
    ):
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                dilation=dilation,
                groups=groups,
                bias=bias,
            )
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            kw = {} if inplace is None else {"inplace": inplace}
            layers.append(activation_layer(**kw))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): scale each channel by a gate computed
    from the channel means (``fc1``, ``fc2`` are 1x1 convs).

    Args:
        input_channels: channels in and out.
        squeeze_channels: the bottleneck's width.
        activation: after ``fc1`` (default ``nn.ReLU``).
        scale_activation: the gate (default ``nn.Sigmoid``).
    """

    def __init__(
        self,
        input_channels: int,
        squeeze_channels: int,
        activation: Callable[..., nn.Module] = nn.ReLU,
        scale_activation: Callable[..., nn.Module] = nn.Sigmoid,
    ):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, x):
        return self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))

    def forward(self, x):
        return self._scale(x) * x


def stochastic_depth(x, p: float, mode: str, training: bool = True):
    """Drop whole residual branches (Huang et al., "Deep Networks with Stochastic Depth",
    2016): each sample's (``mode="row"``) or the batch's (``"batch"``) ``x`` is zeroed with
    probability ``p`` and the rest scaled by ``1 / (1 - p)``; identity in eval mode."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
    if mode not in ("batch", "row"):
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    shape = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = mg.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
    if keep > 0.0:
        noise = noise / keep
    return x * noise


class StochasticDepth(nn.Module):
    """``stochastic_depth`` as a layer (``p``, ``mode``)."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x):
        return stochastic_depth(x, self.p, self.mode, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
