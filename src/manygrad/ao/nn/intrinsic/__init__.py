"""``torch.ao.nn.intrinsic``: fused float modules that ``fuse_modules`` makes (a conv or
linear followed by batch norm and/or ReLU, a batch norm followed by ReLU), which quantize as
one module. They run as the ``nn.Sequential`` of their parts; their constructors check the
parts' types as PyTorch's do.

Example:
    >>> m = ConvBnReLU2d(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
"""

from __future__ import annotations

from .... import nn
from ....nn import Sequential


class _FusedModule(Sequential):
    pass


def _type_name(m) -> str:
    from ....nn.utils.parametrize import type_before_parametrizations

    return type_before_parametrizations(m).__name__


def _fused(name: str, parts: tuple, doc: str) -> type:
    def __init__(self, *mods):  # noqa: N807
        from ....nn.utils.parametrize import type_before_parametrizations

        if len(mods) != len(parts) or any(
            type_before_parametrizations(m) is not t for m, t in zip(mods, parts)
        ):
            raise AssertionError(
                "Incorrect types for input modules: " + " and ".join(_type_name(m) for m in mods)
            )
        _FusedModule.__init__(self, *mods)

    return type(name, (_FusedModule,), {"__init__": __init__, "__doc__": doc,
                                        "__module__": __name__, "_parts": parts})  # fmt: skip


ConvReLU1d = _fused("ConvReLU1d", (nn.Conv1d, nn.ReLU), "``Conv1d`` then ``ReLU``.")
ConvReLU2d = _fused("ConvReLU2d", (nn.Conv2d, nn.ReLU), "``Conv2d`` then ``ReLU``.")
ConvReLU3d = _fused("ConvReLU3d", (nn.Conv3d, nn.ReLU), "``Conv3d`` then ``ReLU``.")
LinearReLU = _fused("LinearReLU", (nn.Linear, nn.ReLU), "``Linear`` then ``ReLU``.")
ConvBn1d = _fused("ConvBn1d", (nn.Conv1d, nn.BatchNorm1d), "``Conv1d`` then ``BatchNorm1d``.")
ConvBn2d = _fused("ConvBn2d", (nn.Conv2d, nn.BatchNorm2d), "``Conv2d`` then ``BatchNorm2d``.")
ConvBn3d = _fused("ConvBn3d", (nn.Conv3d, nn.BatchNorm3d), "``Conv3d`` then ``BatchNorm3d``.")
ConvBnReLU1d = _fused("ConvBnReLU1d", (nn.Conv1d, nn.BatchNorm1d, nn.ReLU),
                      "``Conv1d``, ``BatchNorm1d``, ``ReLU``.")  # fmt: skip
ConvBnReLU2d = _fused("ConvBnReLU2d", (nn.Conv2d, nn.BatchNorm2d, nn.ReLU),
                      "``Conv2d``, ``BatchNorm2d``, ``ReLU``.")  # fmt: skip
ConvBnReLU3d = _fused("ConvBnReLU3d", (nn.Conv3d, nn.BatchNorm3d, nn.ReLU),
                      "``Conv3d``, ``BatchNorm3d``, ``ReLU``.")  # fmt: skip
LinearBn1d = _fused("LinearBn1d", (nn.Linear, nn.BatchNorm1d),
                    "``Linear`` then ``BatchNorm1d``.")  # fmt: skip
BNReLU2d = _fused("BNReLU2d", (nn.BatchNorm2d, nn.ReLU), "``BatchNorm2d`` then ``ReLU``.")
BNReLU3d = _fused("BNReLU3d", (nn.BatchNorm3d, nn.ReLU), "``BatchNorm3d`` then ``ReLU``.")
LinearLeakyReLU = _fused("LinearLeakyReLU", (nn.Linear, nn.LeakyReLU),
                         "``Linear`` then ``LeakyReLU``.")  # fmt: skip
LinearTanh = _fused("LinearTanh", (nn.Linear, nn.Tanh), "``Linear`` then ``Tanh``.")

__all__ = ["BNReLU2d", "BNReLU3d", "ConvBn1d", "ConvBn2d", "ConvBn3d", "ConvBnReLU1d",
           "ConvBnReLU2d", "ConvBnReLU3d", "ConvReLU1d", "ConvReLU2d", "ConvReLU3d",
           "LinearBn1d", "LinearLeakyReLU", "LinearReLU", "LinearTanh"]  # fmt: skip
