"""Activation layers: thin modules over the functions in ``mg.nn.functional``."""

from __future__ import annotations

from .. import ops as F
from ..tensor import Tensor
from .module import Module


class _Inplace(Module):
    """An activation with an ``inplace`` flag (accepted for PyTorch compatibility; manygrad
    always returns a new tensor so that autograd stays correct)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    """``max(x, 0)``.

    Example:
        >>> mg.nn.ReLU()(mg.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)


class SiLU(_Inplace):
    """``x * sigmoid(x)`` (Elfwing et al., 2017; a.k.a. swish)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input)


class GELU(Module):
    """Hendrycks & Gimpel (2016): ``x * Phi(x)``.

    Args:
        approximate: "none" (exact, erf) or "tanh" (default "none").

    Example:
        >>> mg.nn.GELU(approximate="tanh")(mg.randn(3))
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class LeakyReLU(Module):
    """``x`` for positive inputs, ``negative_slope * x`` otherwise.

    Args:
        negative_slope: slope for x < 0 (default 0.01).
        inplace: accepted for compatibility (default False).
    """

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """Clevert et al. (2015): ``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha: saturation value for negative inputs (default 1.0).
        inplace: accepted for compatibility (default False).
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear above ``threshold``.

    Args:
        beta: sharpness (default 1.0).
        threshold: beta * x above which the result is x (default 20.0).
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """``exp(x) / sum(exp(x))`` along ``dim``.

    Args:
        dim: the dim that sums to one (default None: PyTorch's legacy choice, 0 for
            0-, 1- and 3-d inputs, else 1).

    Example:
        >>> mg.nn.Softmax(dim=-1)(mg.randn(2, 5)).sum(-1)
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def _dim(self, input: Tensor) -> int:
        if self.dim is not None:
            return self.dim
        return 0 if input.dim() in (0, 1, 3) else 1

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self._dim(input))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """``log(softmax(x))`` along ``dim``, computed stably.

    Args:
        dim: the dim to normalise over (default None, as ``Softmax``).
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self._dim(input))
