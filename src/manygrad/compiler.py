"""``torch.compiler``: manygrad runs eagerly, so these are what PyTorch's functions do when
no compilation happens (``disable`` returns the function, ``is_compiling`` is False).

Example:
    >>> @mg.compiler.disable
    ... def debug_step(x): ...
"""

from __future__ import annotations


def disable(fn=None, recursive: bool = True, *, reason: str | None = None):
    """``fn`` unchanged (as a decorator with or without arguments)."""
    if fn is None:
        return lambda f: f
    return fn


def is_compiling() -> bool:
    return False


def is_dynamo_compiling() -> bool:
    return False


def is_exporting() -> bool:
    return False


def reset() -> None:
    """Nothing to clear: manygrad keeps no compiled code."""


def allow_in_graph(fn):
    return fn


def assume_constant_result(fn):
    return fn


def cudagraph_mark_step_begin() -> None:
    """Kept for PyTorch's API; manygrad's CUDA graphs are explicit (``mg.cuda.graph``)."""


def compile(*args, **kwargs):  # noqa: A001
    """``torch.compile``: the model unchanged."""
    from .compat.torch_api import compile as _compile

    return _compile(*args, **kwargs)


__all__ = [
    "disable", "is_compiling", "is_dynamo_compiling", "is_exporting", "reset",
    "allow_in_graph", "assume_constant_result", "cudagraph_mark_step_begin", "compile",
]  # fmt: skip
