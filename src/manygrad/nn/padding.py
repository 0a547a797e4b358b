"""Padding layers (``ZeroPad2d``, ``ConstantPad1d/2d/3d``, ``ReflectionPad1d/2d/3d``,
``ReplicationPad1d/2d/3d``, ``CircularPad1d/2d/3d``) over ``F.pad``."""

from __future__ import annotations

from .. import ops as F
from ..tensor import Tensor
from .module import Module


class _PadNd(Module):
    mode = "constant"
    nd = 1

    def __init__(self, padding, value: float = 0.0) -> None:
        super().__init__()
        n = 2 * self.nd
        self.padding = (padding,) * n if isinstance(padding, int) else tuple(padding)
        if len(self.padding) != n:
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of {n} "
                             f"ints, got {padding}")  # fmt: skip
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (self.nd + 1, self.nd + 2):
            from ..errors import ShapeError

            raise ShapeError(f"{type(self).__name__}: expected an input of {self.nd + 1} or "
                             f"{self.nd + 2} dims, got shape {tuple(input.shape)}")  # fmt: skip
        if self.mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self) -> str:
        if self.mode == "constant":
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


def _family(mode: str, prefix: str, doc: str):
    out = []
    for nd in (1, 2, 3):
        ns = {"mode": mode, "nd": nd, "__module__": __name__,
              "__doc__": f"{doc} of the last {nd} dim(s); padding: an int or "
                         f"{2 * nd} ints (left, right{', top, bottom' if nd > 1 else ''}"
                         f"{', front, back' if nd > 2 else ''})."}  # fmt: skip
        out.append(type(f"{prefix}{nd}d", (_PadNd,), ns))
    return out


class _ConstantPad(_PadNd):
    def __init__(self, padding, value: float) -> None:
        super().__init__(padding, value)


class ConstantPad1d(_ConstantPad):
    """Pad the last dim with ``value``. Example: ``ConstantPad1d(2, 3.5)``"""

    nd = 1


class ConstantPad2d(_ConstantPad):
    """Pad the last 2 dims with ``value`` (padding: left, right, top, bottom)."""

    nd = 2


class ConstantPad3d(_ConstantPad):
    """Pad the last 3 dims with ``value`` (padding: left, right, top, bottom, front, back)."""

    nd = 3


class _ZeroPad(_PadNd):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad1d(_ZeroPad):
    """Pad the last dim with zeros."""

    nd = 1


class ZeroPad2d(_ZeroPad):
    """Pad the last 2 dims with zeros (padding: left, right, top, bottom).

    Example:
        >>> mg.nn.ZeroPad2d((1, 1, 2, 0))(mg.ones(1, 1, 2, 2)).shape
    """

    nd = 2


class ZeroPad3d(_ZeroPad):
    """Pad the last 3 dims with zeros."""

    nd = 3


ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = _family(
    "reflect", "ReflectionPad", "Mirror padding (without repeating the edge)"
)
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = _family(
    "replicate", "ReplicationPad", "Edge-repeating padding"
)
CircularPad1d, CircularPad2d, CircularPad3d = _family(
    "circular", "CircularPad", "Wrap-around padding"
)
