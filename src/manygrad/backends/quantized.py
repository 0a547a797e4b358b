"""``torch.backends.quantized``: the quantized engine scripts name before quantizing
(``torch.backends.quantized.engine = "qnnpack"``).

manygrad's quantized kernels sum the int8 products exactly in int32 whichever engine is
named (as PyTorch's qnnpack engine; its x86 / fbgemm engine saturates pairs of uint8 x int8
products at int16 when activations use the full 0..255 range, which is why its x86 qconfigs
set ``reduce_range``). The engine is recorded for code that reads it, and picks nothing.

Example:
    >>> import manygrad.backends.quantized as bq
    >>> bq.engine = "qnnpack"
"""

from __future__ import annotations

import sys
import types

supported_engines = ["qnnpack", "onednn", "x86", "fbgemm"]


class _QuantizedModule(types.ModuleType):
    _engine = "x86"

    @property
    def engine(self) -> str:
        return self._engine

    @engine.setter
    def engine(self, value: str) -> None:
        if value not in supported_engines:
            raise RuntimeError(f"{value} is not a valid value for quantized engine; use one of "
                               f"{supported_engines}")  # fmt: skip
        type(self)._engine = value


sys.modules[__name__].__class__ = _QuantizedModule
