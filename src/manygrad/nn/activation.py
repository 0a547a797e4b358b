"""Activation layers: thin modules over the functions in ``mg.nn.functional``."""

from __future__ import annotations

from .. import ops as F
from ..tensor import Tensor
from .module import Module


class _Inplace(Module):
    """An activation with an ``inplace`` flag: True writes the result into the input, as
    PyTorch's (autograd's version counters refuse a backward that would need the old
    values, e.g. after ``sigmoid``, whose gradient reads its output)."""

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
        return _F.relu(input, inplace=self.inplace)


class SiLU(_Inplace):
    """``x * sigmoid(x)`` (Elfwing et al., 2017; a.k.a. swish)."""

    def forward(self, input: Tensor) -> Tensor:
        return _F.silu(input, inplace=self.inplace)


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
            from ..ops.linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

            raise ArgumentError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
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
        inplace: write the result into the input (default False).
    """

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return _F.leaky_relu(input, self.negative_slope, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """Clevert et al. (2015): ``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha: saturation value for negative inputs (default 1.0).
        inplace: write the result into the input (default False).
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return _F.elu(input, self.alpha, inplace=self.inplace)

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


# ---------------------------------------------------------------------------- more activations
from .. import creation as _creation  # noqa: E402
from ..nn import functional as _F  # noqa: E402
from .parameter import Parameter as _Parameter  # noqa: E402


class Hardtanh(Module):
    """``x`` limited to ``[min_val, max_val]`` (defaults -1, 1)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value=None, max_value=None) -> None:  # fmt: skip
        super().__init__()
        self.min_val = min_val if min_value is None else min_value
        self.max_val = max_val if max_value is None else max_value
        self.inplace = inplace
        if self.max_val < self.min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be >= min_val ({min_val})")

    def forward(self, input: Tensor) -> Tensor:
        return _F.hardtanh(input, self.min_val, self.max_val, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (
            ", inplace=True" if self.inplace else ""
        )


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)``."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class PReLU(Module):
    """He et al. (2015): ``x`` for x >= 0, ``a * x`` otherwise with a learned ``a``.

    Args:
        num_parameters: 1 (shared) or the number of channels (default 1).
        init: the initial slope (default 0.25).
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = _Parameter(
            _creation.full((num_parameters,), init, device=device, dtype=dtype)
        )

    def reset_parameters(self) -> None:
        self.weight.data.fill_(self.init)

    def forward(self, input: Tensor) -> Tensor:
        return _F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


def _simple(name: str, fn_name: str, doc: str):
    def forward(self, input: Tensor) -> Tensor:
        return getattr(_F, fn_name)(input, inplace=self.inplace)

    return type(name, (_Inplace,), {"forward": forward, "__doc__": doc, "__module__": __name__})


SELU = _simple("SELU", "selu", "Klambauer et al. (2017): scaled ELU with fixed constants.")
Mish = _simple("Mish", "mish", "Misra (2019): ``x * tanh(softplus(x))``.")
Hardswish = _simple("Hardswish", "hardswish", "Howard et al. (2019): ``x * relu6(x + 3) / 6``.")
Hardsigmoid = _simple("Hardsigmoid", "hardsigmoid", "``relu6(x + 3) / 6``.")
# NOTE: PyTorch's repr of these two leaves inplace out
Hardswish.extra_repr = Hardsigmoid.extra_repr = lambda self: ""


class _Plain(Module):
    fn = ""

    def forward(self, input: Tensor) -> Tensor:
        return getattr(_F, self.fn)(input)


class Softsign(_Plain):
    """``x / (1 + |x|)``."""

    fn = "softsign"


class LogSigmoid(_Plain):
    """``log(sigmoid(x))``."""

    fn = "logsigmoid"


class Tanhshrink(_Plain):
    """``x - tanh(x)``."""

    fn = "tanhshrink"


class CELU(Module):
    """Barron (2017): continuously differentiable ELU. Args: alpha (default 1.0)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return _F.celu(input, self.alpha, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GLU(Module):
    """Dauphin et al. (2017): gated linear unit over ``dim`` (default -1)."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return _F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Threshold(Module):
    """``x`` where ``x > threshold``, else ``value``."""

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input: Tensor) -> Tensor:
        return _F.threshold(input, self.threshold, self.value, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}" + (
            ", inplace=True" if self.inplace else ""
        )


class Softmin(Softmax):
    """``softmax(-x)`` along ``dim``."""

    def forward(self, input: Tensor) -> Tensor:
        return _F.softmin(input, self._dim(input))


class Softshrink(Module):
    """Soft thresholding by ``lambd`` (default 0.5)."""

    fn = "softshrink"

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Tensor) -> Tensor:
        return getattr(_F, self.fn)(input, self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)


class Hardshrink(Softshrink):
    """``x`` where ``|x| > lambd`` (default 0.5), else 0."""

    fn = "hardshrink"


class RReLU(Module):
    """Xu et al. (2015): randomized leaky ReLU (slopes from U(lower, upper) in training)."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
                 inplace: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input: Tensor) -> Tensor:
        return _F.rrelu(input, self.lower, self.upper, self.training, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}" + (
            ", inplace=True" if self.inplace else ""
        )


class Softmax2d(Module):
    """Softmax over the channels (dim -3) of (N, C, H, W) or (C, H, W) inputs."""

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (3, 4):
            from ..errors import ShapeError

            raise ShapeError(f"Softmax2d: expected an input of 3 or 4 dims, got shape "
                             f"{tuple(input.shape)}")  # fmt: skip
        return F.softmax(input, -3)
