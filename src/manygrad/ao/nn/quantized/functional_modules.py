"""``FloatFunctional`` (float ops a quantized model will run quantized: residual adds,
concatenations) and ``QFunctional``, what ``convert`` makes of it.

Example:
    >>> self.skip_add = FloatFunctional()          # in __init__
    >>> out = self.skip_add.add(out, identity)     # in forward, instead of out + identity
"""

from __future__ import annotations

import manygrad as _mg

from ....nn import Identity, Module
from ... import _qops
from ._state import QParamsOnlyState


class FloatFunctional(Module):
    """Float ``add`` / ``add_scalar`` / ``mul`` / ``mul_scalar`` / ``cat`` / ``add_relu`` /
    ``matmul`` whose outputs an observer watches after ``prepare`` (``activation_post_process``)
    so that ``convert`` can give their quantized versions qparams."""

    def __init__(self):
        super().__init__()
        self.activation_post_process = Identity()

    def forward(self, x):
        raise RuntimeError(
            "FloatFunctional is not intended to use the 'forward'. Please use the underlying "
            "operation, e.g. self.ff.add(a, b)"
        )

    def add(self, x, y):
        return self.activation_post_process(_mg.add(x, y))

    def add_scalar(self, x, y: float):
        return _mg.add(x, y)  # NOTE: not observed: the quantized op picks its own qparams

    def mul(self, x, y):
        return self.activation_post_process(_mg.mul(x, y))

    def mul_scalar(self, x, y: float):
        return _mg.mul(x, y)  # NOTE: not observed, as add_scalar

    def cat(self, x, dim: int = 0):
        return self.activation_post_process(_mg.cat(x, dim=dim))

    def add_relu(self, x, y):
        return self.activation_post_process(_mg.relu(_mg.add(x, y)))

    def matmul(self, x, y):
        return self.activation_post_process(_mg.matmul(x, y))


class FXFloatFunctional(FloatFunctional):
    """``FloatFunctional`` without observers, for FX graph mode (the same float ops)."""

    def add(self, x, y):
        return _mg.add(x, y)

    def mul(self, x, y):
        return _mg.mul(x, y)

    def cat(self, x, dim: int = 0):
        return _mg.cat(x, dim=dim)

    def add_relu(self, x, y):
        return _mg.relu(_mg.add(x, y))

    def matmul(self, x, y):
        return _mg.matmul(x, y)


class QFunctional(QParamsOnlyState, Module):
    """The quantized ops of ``FloatFunctional``: outputs quantized with this module's
    ``scale`` / ``zero_point`` (``add_scalar`` / ``mul_scalar`` choose their own)."""

    def __init__(self):
        super().__init__()
        self.scale, self.zero_point = 1.0, 0
        self.activation_post_process = Identity()

    def _get_name(self) -> str:
        return "QFunctional"

    def extra_repr(self) -> str:
        return f"scale={self.scale}, zero_point={self.zero_point}"

    def forward(self, x):
        raise RuntimeError(
            "Functional is not intended to use the 'forward'. Please use the underlying "
            "operation, e.g. self.ff.add(a, b)"
        )

    def add(self, x, y):
        return _qops.add(x, y, self.scale, self.zero_point)

    def add_scalar(self, x, y: float):
        return _qops.add_scalar(x, y)

    def mul(self, x, y):
        return _qops.mul(x, y, self.scale, self.zero_point)

    def mul_scalar(self, x, y: float):
        return _qops.mul_scalar(x, y)

    def cat(self, x, dim: int = 0):
        return _qops.cat(x, dim, self.scale, self.zero_point)

    def add_relu(self, x, y):
        return _qops.add(x, y, self.scale, self.zero_point, relu=True)

    def matmul(self, x, y):
        raise NotImplementedError(
            "QFunctional.matmul: quantized matmul is not supported by manygrad; dequantize the "
            "operands (DeQuantStub) and use torch.matmul"
        )

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> QFunctional:
        obs = getattr(mod, "activation_post_process", None)
        if obs is None or isinstance(obs, Identity):
            raise RuntimeError(
                "QFunctional.from_float: the FloatFunctional has no observer; give it a qconfig "
                "and run prepare(model) and a calibration pass before convert"
            )
        scale, zero_point = obs.calculate_qparams()
        q = cls()
        q.scale, q.zero_point = float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0])
        return q


__all__ = ["FXFloatFunctional", "FloatFunctional", "QFunctional"]
