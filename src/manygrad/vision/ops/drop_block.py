"""DropBlock (Ghiasi et al., 2018): contiguous square regions of feature maps dropped
at random (torchvision.ops.drop_block)."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor, nn
from manygrad.nn import functional as F


def _drop_block(input: Tensor, p, block_size, inplace, eps, training, dims: int) -> Tensor:  # noqa: A002
    name = f"drop_block{dims}d"
    if p < 0.0 or p > 1.0:
        raise ValueError(f"{name}: drop probability has to be between 0 and 1, but got {p}.")
    if input.ndim != dims + 2:
        raise ValueError(
            f"{name}: input should be {dims + 2} dimensional. Got {input.ndim} dimensions."
        )
    if not training or p == 0.0:
        return input
    spatial = tuple(input.shape[2:])
    block_size = min(block_size, *spatial)
    if block_size % 2 == 0:
        raise ValueError(f"{name}: block size should be odd. Got {block_size} which is even.")
    # the seed rate that drops a fraction p of the elements once seeds grow into blocks
    valid, total = 1, 1
    for s in spatial:
        valid *= s - block_size + 1
        total *= s
    gamma = (p * total) / ((block_size**dims) * valid)
    seeds = tuple(input.shape[:2]) + tuple(s - block_size + 1 for s in spatial)
    noise = mg.empty(seeds, dtype=input.dtype, device=input.device).bernoulli_(gamma)
    half = block_size // 2
    noise = F.pad(noise, [half] * (2 * dims), value=0)
    pool = F.max_pool2d if dims == 2 else F.max_pool3d
    noise = 1 - pool(noise, kernel_size=block_size, stride=1, padding=half)
    scale = noise.numel() / (eps + noise.sum())
    if inplace:
        return input.mul_(noise).mul_(scale)
    return input * noise * scale


def drop_block2d(
    input: Tensor,  # noqa: A002
    p: float,
    block_size: int,
    inplace: bool = False,
    eps: float = 1e-06,
    training: bool = True,
) -> Tensor:
    """DropBlock on ``Tensor[N, C, H, W]``: blocks of ``block_size`` (odd) squared zeroed so
    that about a fraction ``p`` of the elements drop; the rest rescaled to keep the sum.

    Args:
        input: ``Tensor[N, C, H, W]``.
        p: fraction of elements to drop.
        block_size: side of the blocks (odd).
        inplace: modify ``input``. Default False.
        eps: keeps the rescaling finite. Default 1e-6.
        training: apply it. Default True.

    Example: ``drop_block2d(x, 0.1, 3)``.
    """
    return _drop_block(input, p, block_size, inplace, eps, training, 2)


def drop_block3d(
    input: Tensor,  # noqa: A002
    p: float,
    block_size: int,
    inplace: bool = False,
    eps: float = 1e-06,
    training: bool = True,
) -> Tensor:
    """DropBlock on ``Tensor[N, C, D, H, W]``; arguments as :func:`drop_block2d`.

    Example: ``drop_block3d(x, 0.1, 3)``.
    """
    return _drop_block(input, p, block_size, inplace, eps, training, 3)


class DropBlock2d(nn.Module):
    """See :func:`drop_block2d`."""

    def __init__(self, p: float, block_size: int, inplace: bool = False, eps: float = 1e-06):
        super().__init__()
        self.p = p
        self.block_size = block_size
        self.inplace = inplace
        self.eps = eps

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return drop_block2d(input, self.p, self.block_size, self.inplace, self.eps, self.training)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(p={self.p}, block_size={self.block_size}, "
            f"inplace={self.inplace})"
        )


class DropBlock3d(DropBlock2d):
    """See :func:`drop_block3d`."""

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return drop_block3d(input, self.p, self.block_size, self.inplace, self.eps, self.training)
