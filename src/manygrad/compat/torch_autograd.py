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


class set_multithreading_enabled:  # noqa: N801 - PyTorch's name
    """Context manager (or call) choosing whether backward may run on worker threads.
    manygrad's backward always runs on the calling thread, so the mode is only recorded:
    ``is_multithreading_enabled()`` reads it back. Usable as a decorator."""

    _mode = [True]

    def __init__(self, mode: bool) -> None:
        self.prev = set_multithreading_enabled._mode[0]
        set_multithreading_enabled._mode[0] = bool(mode)
        self.mode = bool(mode)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        set_multithreading_enabled._mode[0] = self.prev

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def run(*args, **kwargs):
            with set_multithreading_enabled(self.mode):
                return fn(*args, **kwargs)

        set_multithreading_enabled._mode[0] = self.prev
        return run

    def clone(self):
        return set_multithreading_enabled(self.mode)


_EXTRA = {"Variable": _variable, "set_multithreading_enabled": set_multithreading_enabled}


def __getattr__(name: str):
    if hasattr(_autograd, name):
        return getattr(_autograd, name)
    if name in _EXTRA:
        return _EXTRA[name]
    raise AttributeError(f"module 'torch.autograd' has no attribute {name!r}")


def __dir__():
    return sorted(set(dir(_autograd)) | set(_EXTRA))
