"""How each ``manygrad.nn.modules.<name>`` file finds its classes: by name, lazily.

The layers live in manygrad's own files (``nn/conv.py``, ``nn/loss.py``, ...); PyTorch's
submodule names (``torch.nn.modules.conv``, ``...batchnorm``, ``...rnn``) only group them.
A name is looked up when first read, in ``manygrad.nn`` and then in its files, so that layer
families added later appear here with no edit.
"""

from __future__ import annotations

import importlib
import pkgutil

_FILES = ("activation", "attention", "containers", "conv", "dropout", "linear", "loss",
          "module", "normalization", "parameter", "pooling", "sparse")  # fmt: skip


def find(name: str):
    """The object called ``name`` in ``manygrad.nn`` or one of its files; None if absent."""
    nn = importlib.import_module("manygrad.nn")
    if hasattr(nn, name):
        return getattr(nn, name)
    files = set(_FILES)
    files.update(m.name for m in pkgutil.iter_modules(nn.__path__) if not m.ispkg)
    for f in sorted(files):
        if f.startswith("_") or f in ("functional", "init", "parallel", "utils"):
            continue
        try:
            mod = importlib.import_module(f"manygrad.nn.{f}")
        except ImportError:
            continue
        if hasattr(mod, name):
            return getattr(mod, name)
    return None


def module_getattr(module_name: str, names: tuple[str, ...]):
    """A PEP 562 ``__getattr__`` for a file that groups ``names``."""

    def __getattr__(name: str):  # noqa: N807
        if name in names or name.startswith("_"):
            obj = find(name)
            if obj is not None:
                return obj
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__
