"""``nn.utils.skip_init``: build a module whose parameters will be overwritten anyway."""

from __future__ import annotations


def skip_init(module_cls, *args, **kwargs):
    """``module_cls(*args, **kwargs)`` for code that loads or sets every parameter next.
    PyTorch leaves the values uninitialized; here they are the layer's usual ones (any
    values are allowed), so this is the plain constructor."""
    if "device" not in kwargs and not _takes_device(module_cls):
        raise RuntimeError(f"Module must support a 'device' arg to skip initialization: "
                           f"{module_cls.__name__} does not")  # fmt: skip
    return module_cls(*args, **kwargs)


def _takes_device(cls) -> bool:
    import inspect

    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return True
    return "device" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
