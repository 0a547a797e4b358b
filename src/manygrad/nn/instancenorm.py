"""``InstanceNorm1d/2d/3d`` (Ulyanov et al., 2016) and ``LocalResponseNorm`` (Krizhevsky
et al., 2012), with PyTorch's arguments, defaults and buffers."""

from __future__ import annotations

from ..errors import ShapeError
from ..ops import instance_norm as N
from ..ops._common import warn_caller
from ..tensor import Tensor
from .module import Module
from .normalization import _BatchNorm


class _InstanceNorm(_BatchNorm):
    _spatial = 1

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        nd = self._spatial
        if input.ndim not in (nd + 1, nd + 2):
            raise ShapeError(f"{type(self).__name__}: expected an input of {nd + 1} or {nd + 2} "
                             f"dims, got shape {tuple(input.shape)}")  # fmt: skip
        batched = input.ndim == nd + 2
        x = input if batched else input.unsqueeze(0)
        if self.affine and x.shape[1] != self.num_features:
            raise ShapeError(f"{type(self).__name__}: expected {self.num_features} channels "
                             f"(dim 1), got input of shape {tuple(input.shape)}")  # fmt: skip
        if x.shape[1] != self.num_features:  # NOTE: PyTorch's warning, word for word
            warn_caller(f"input's size at dim={int(batched)} does not match num_features. You "
                        "can silence this warning by not passing in num_features, which is not "
                        "used because affine=False")  # fmt: skip
        use_input = self.training or not self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        y = N.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_input, momentum, self.eps)  # fmt: skip
        return y if batched else y.squeeze(0)


class InstanceNorm1d(_InstanceNorm):
    """Normalise each channel of each sample of (N, C, L) or (C, L) inputs over L.

    Args:
        num_features: C. eps (1e-5). momentum (0.1). affine: learn weight and bias
        (default False). track_running_stats: keep statistics for eval (default False).

    Example:
        >>> mg.nn.InstanceNorm1d(4)(mg.randn(2, 4, 10)).shape
    """

    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or (C, H, W) inputs (style transfer)."""

    _spatial = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or (C, D, H, W) inputs."""

    _spatial = 3


class LocalResponseNorm(Module):
    """Divide by ``(k + alpha * mean of squares over size neighbouring channels) ** beta``.

    Args: size; alpha (1e-4); beta (0.75); k (1.0).

    Example:
        >>> mg.nn.LocalResponseNorm(2)(mg.randn(1, 8, 4, 4)).shape
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input: Tensor) -> Tensor:
        return N.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class CrossMapLRN2d(Module):
    """Local response normalization across channels of 4-D inputs, with PyTorch's legacy
    window: channel ``c`` sums the squares of channels ``0 .. c + (size - 1) // 2``, less
    those from 1 up to ``c - (size - 1) // 2 - 1`` (channel 0 is never dropped), as
    ``torch.nn.CrossMapLRN2d`` computes it.

    Args: size; alpha (1e-4); beta (0.75); k (1).
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        if input.dim() != 4:
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.dim()}D instead.")
        from .. import creation
        from .. import ops as F

        c = input.shape[1]
        pre = int((self.size - 1) / 2 + 1)
        sq = input * input
        zero = creation.zeros_like(sq[:, :1])
        prefix = F.cat([zero, sq.cumsum(1)], 1)  # prefix[:, i] = sum of squares below i
        idx = list(range(c))
        upper = [min(i + pre - 1, c - 1) + 1 for i in idx]
        drop = [max(i - pre, 0) + 1 for i in idx]  # NOTE: removes channels 1 .. i - pre
        dev = input.device
        hi = prefix.index_select(1, creation.tensor(upper, device=dev))
        lo = prefix.index_select(1, creation.tensor(drop, device=dev))
        one = prefix.index_select(1, creation.tensor([1] * c, device=dev))
        scale = hi - (lo - one)
        scale = scale * (self.alpha / self.size) + self.k
        return input * scale.pow(-self.beta)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
