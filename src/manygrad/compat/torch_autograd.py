"""``torch.autograd`` as ported programs see it: ``manygrad.autograd`` plus ``Variable``.

Every name is looked up in ``manygrad.autograd`` first, so this module adds only what the
engine lacks.
"""

from __future__ import annotations

from .. import autograd as _autograd


def _variable(data, requires_grad: bool = False, volatile: bool = False):
    """``Variable(t)``: since PyTorch 0.4 simply the tensor ``t`` (with ``requires_grad``)."""
    from ..creation import tensor
    from ..tensor import Tensor

    t = data if isinstance(data, Tensor) else tensor(data)
    if requires_grad and not t.requires_grad:
        t.requires_grad_(True)
    return t


_EXTRA = {"Variable": _variable}


def __getattr__(name: str):
    if hasattr(_autograd, name):
        return getattr(_autograd, name)
    if name in _EXTRA:
        return _EXTRA[name]
    raise AttributeError(f"module 'torch.autograd' has no attribute {name!r}")


def __dir__():
    return sorted(set(dir(_autograd)) | set(_EXTRA))
