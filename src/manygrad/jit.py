"""``torch.jit``: manygrad runs eagerly, so ``script`` and ``trace`` give back what they are
handed (the same results as before) and the decorators mark nothing.

``jit.save`` / ``jit.load`` round-trip a model through a manygrad archive: the module
pickled with its weights (and ``_extra_files``), so a deployment script that saves a
scripted model and loads it back runs unchanged. Unlike a TorchScript archive it holds no
code: the model's classes must be importable where it is loaded (as for ``torch.save`` of
a whole model), and PyTorch cannot read it. TorchScript archives written by PyTorch are
refused with the way to load the weights instead.

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
    """TorchScript archives are not read by manygrad; what it saves is not TorchScript."""


_MARK = "manygrad.jit archive"


def save(m, f, _extra_files=None) -> None:
    """Write ``m`` (a module or function, as ``script``/``trace`` returned it) with its
    weights and ``_extra_files`` (a dict of names to str/bytes) to ``f`` (a path or a
    binary file). Read it back with ``jit.load`` (the classes must be importable there)."""
    from .io import serialization

    extra = {str(k): v.encode() if isinstance(v, str) else bytes(v)
             for k, v in (_extra_files or {}).items()}  # fmt: skip
    serialization.save({"format": _MARK, "version": 1, "module": m, "extra_files": extra}, f)


def _is_torchscript(f) -> bool:
    import zipfile

    try:
        if hasattr(f, "seek"):
            pos = f.tell()
            try:
                names = zipfile.ZipFile(f).namelist()
            finally:
                f.seek(pos)
        else:
            names = zipfile.ZipFile(f).namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return any("/code/" in n or n.endswith("/constants.pkl") for n in names)


def load(f, map_location=None, _extra_files=None):
    """The module (or function) ``jit.save`` wrote to ``f``, on ``map_location`` when given;
    ``_extra_files`` (a dict) gets the saved extra files' bytes for the names it holds.

    The archive is unpickled (it may run code, as a TorchScript archive does): load only
    files you trust."""
    from .io import serialization

    if _is_torchscript(f):
        raise JitSaveError(
            f"torch.jit.load({f!r}): this is a TorchScript archive (written by PyTorch), and "
            "manygrad reads no TorchScript; build the model in Python and load its weights "
            "with model.load_state_dict(mg.load(path)) (save them in PyTorch with "
            "torch.save(model.state_dict(), path))"
        )
    from .errors import CheckpointError

    try:
        obj = serialization.load(f, map_location=map_location, weights_only=False)
    except CheckpointError as e:
        if "no such file" in str(e):
            raise
        raise JitSaveError(f"torch.jit.load({f!r}): not an archive written by jit.save "
                           f"({e})") from None  # fmt: skip
    if not (isinstance(obj, dict) and obj.get("format") == _MARK):
        raise JitSaveError(
            f"torch.jit.load({f!r}): not an archive written by jit.save (for a file written "
            "by torch.save / mg.save, use mg.load)"
        )
    if _extra_files is not None:
        saved = obj.get("extra_files", {})
        for name in list(_extra_files):
            if name in saved:
                _extra_files[name] = saved[name]
    return obj["module"]  # NOTE: its tensors already on map_location (serialization.load)


__all__ = [
    "script", "trace", "trace_module", "ignore", "unused", "export", "interface",
    "script_if_tracing", "is_scripting", "is_tracing", "annotate", "freeze",
    "optimize_for_inference", "enable_onednn_fusion", "fork", "wait", "save", "load", "Final",
    "ScriptModule", "ScriptFunction", "Future",
]  # fmt: skip
