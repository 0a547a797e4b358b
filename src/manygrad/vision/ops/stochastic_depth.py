"""Stochastic depth (Huang et al., 2016): residual branches dropped at random
(torchvision.ops.stochastic_depth)."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor, nn


def stochastic_depth(input: Tensor, p: float, mode: str, training: bool = True) -> Tensor:  # noqa: A002
    """``input`` zeroed with probability ``p`` per row (``mode="row"``) or as a whole
    (``mode="batch"``), the kept values scaled by ``1 / (1 - p)``; unchanged when not
    training or when ``p`` is 0.

    Args:
        input: ``Tensor[N, ...]``, N the batch.
        p: the probability of dropping.
        mode: ``"row"`` or ``"batch"``.
        training: apply it. Default True.

    Example: ``x + stochastic_depth(branch(x), 0.1, "row", self.training)``.
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
    if mode not in ("batch", "row"):
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
    if not training or p == 0.0:
        return input
    survival = 1.0 - p
    size = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    noise = mg.empty(size, dtype=input.dtype, device=input.device).bernoulli_(survival)
    if survival > 0.0:
        noise.div_(survival)
    return input * noise


class StochasticDepth(nn.Module):
    """See :func:`stochastic_depth`."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return stochastic_depth(input, self.p, self.mode, self.training)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p={self.p}, mode={self.mode})"
