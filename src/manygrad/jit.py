"""``torch.jit``: manygrad runs eagerly, so ``script`` and ``trace`` give back what they are
handed (the same results as before) and the decorators mark nothing. Saving a scripted
model is refused with the way to save it instead.

Example:
    >>> @mg.jit.script
    ... def f(x):
    ...     return x * 2
    >>> model = mg.jit.trace(model, example_inputs)   # model itself
"""

from __future__ import annotations

import typing

from .errors import ManygradError
from .nn import Module as ScriptModule

Final = typing.Final
ScriptFunction = typing.Callable


def script(obj=None, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """``obj`` itself (a function or module), usable as ``@script`` or ``@script()``."""
    if obj is None:
        return lambda f: f
    return obj


def trace(func, example_inputs=None, optimize=None, check_trace=True, check_inputs=None,
          check_tolerance=1e-5, strict=True, **kwargs):  # fmt: skip
    """``func`` itself: manygrad records no trace; calls run it eagerly."""
    return func


def trace_module(mod, inputs, **kwargs):
    return mod


def _identity(fn=None, *args, **kwargs):
    if fn is None or not callable(fn):
        return lambda f: f
    return fn


ignore = unused = export = interface = script_if_tracing = _identity


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    return False


def annotate(the_type, the_value):
    return the_value


def freeze(mod, preserved_attrs=None, optimize_numerics=True):
    return mod


def optimize_for_inference(mod, other_methods=None):
    return mod


def enable_onednn_fusion(enabled: bool) -> None:
    """Accepted and ignored (manygrad picks its own kernels)."""


class Future:
    """The result of ``fork``: the call already ran (manygrad runs it at once)."""

    def __init__(self, value):
        self._value = value

    def wait(self):
        return self._value


def fork(func, *args, **kwargs) -> Future:
    return Future(func(*args, **kwargs))


def wait(future: Future):
    return future.wait()


class JitSaveError(ManygradError, RuntimeError):
    """TorchScript archives are not written or read by manygrad."""


def save(m, f, _extra_files=None) -> None:
    raise JitSaveError(
        "torch.jit.save: manygrad writes no TorchScript archives; save the weights with "
        "mg.save(model.state_dict(), 'model.safetensors') (or a recipe: docs/applications.md)"
    )


def load(f, map_location=None, _extra_files=None):
    raise JitSaveError(
        f"torch.jit.load({f!r}): manygrad reads no TorchScript archives; build the model in "
        "Python and load its weights with model.load_state_dict(mg.load(path))"
    )


__all__ = [
    "script", "trace", "trace_module", "ignore", "unused", "export", "interface",
    "script_if_tracing", "is_scripting", "is_tracing", "annotate", "freeze",
    "optimize_for_inference", "enable_onednn_fusion", "fork", "wait", "save", "load", "Final",
    "ScriptModule", "ScriptFunction", "Future",
]  # fmt: skip
