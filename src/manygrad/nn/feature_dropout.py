"""Channel-wise and self-normalising dropout layers: ``Dropout1d/2d/3d``, ``AlphaDropout``,
``FeatureAlphaDropout`` (functions in ``mg.ops.dropout_ext``)."""

from __future__ import annotations

from ..ops import dropout_ext as _D
from ..tensor import Tensor
from .dropout import Dropout


class Dropout1d(Dropout):
    """Zero whole channels of (N, C, L) inputs with probability ``p`` in training.

    Example:
        >>> mg.nn.Dropout1d(0.2)(mg.randn(4, 8, 16)).shape
    """

    fn = staticmethod(_D.dropout1d)

    def forward(self, input: Tensor) -> Tensor:
        return self.fn(input, self.p, self.training)


class Dropout2d(Dropout1d):
    """Zero whole channels of (N, C, H, W) inputs (Tompson et al., 2015)."""

    fn = staticmethod(_D.dropout2d)


class Dropout3d(Dropout1d):
    """Zero whole channels of (N, C, D, H, W) inputs."""

    fn = staticmethod(_D.dropout3d)


class AlphaDropout(Dropout1d):
    """Dropout that keeps the zero mean and unit variance of SELU activations
    (Klambauer et al., 2017)."""

    fn = staticmethod(_D.alpha_dropout)


class FeatureAlphaDropout(Dropout1d):
    """``AlphaDropout`` of whole channels."""

    fn = staticmethod(_D.feature_alpha_dropout)
