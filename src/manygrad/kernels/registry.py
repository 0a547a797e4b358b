"""The registry of fused kernels: what the compile check, the tests and ``doctor`` walk.

Each kernel module (``gelu.py``, ``xent.py``, ...) holds one CUDA C source
(math body + launch skeleton) and, beside it, the NumPy twin that the CPU and ``fakegpu``
run. It declares a :class:`Kernel` here with the template instantiations a GPU needs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from ._common import PRELUDE

# kernel modules, in the order doctor lists them
MODULES = ("optim_step", "gelu", "xent", "norms", "row_softmax", "rng_dropout")


@dataclass(frozen=True)
class Kernel:
    """One fused kernel source.

    Args:
        name: registry name (``bias_gelu``).
        source: the CUDA C source without the shared prelude.
        entries: name expressions of the ``__global__`` functions to instantiate
            (``mg_bias_gelu_fwd<float>``).
        doc: one line saying what it fuses.
        host: exported host functions the gcc test calls (documentation of the harness).
    """

    name: str
    source: str
    entries: tuple[str, ...]
    doc: str
    host: tuple[str, ...] = field(default=())

    def full_source(self) -> str:
        """The prelude plus this kernel's source: what NVRTC, CuPy and gcc compile."""
        return PRELUDE + "\n" + self.source


def instantiate(template: str, types=("float", "mg_bf16", "mg_f16")) -> tuple[str, ...]:
    """Name expressions of ``template`` for each storage type: ``f<float>``, ..."""
    return tuple(f"{template}<{t}>" for t in types)


def kernels() -> list[Kernel]:
    """Every registered kernel, in a fixed order."""
    return [importlib.import_module(f"{__package__}.{m}").KERNEL for m in MODULES]


def get(name: str) -> Kernel:
    """The kernel called ``name``; ``KeyError`` naming the known ones otherwise."""
    for k in kernels():
        if k.name == name:
            return k
    known = ", ".join(k.name for k in kernels())
    raise KeyError(f"no fused kernel named {name!r}; known: {known}")
