"""``torch.utils.hooks``: ``RemovableHandle`` (what every ``register_*_hook`` returns) and
the hook markers library code imports from there.

Example:
    >>> from manygrad.utils.hooks import RemovableHandle
    >>> handle = model.register_forward_hook(fn)
    >>> isinstance(handle, RemovableHandle)
    True
"""

from __future__ import annotations

import warnings

from ..nn.module import RemovableHandle

__all__ = ["RemovableHandle", "unserializable_hook", "warn_if_has_hooks"]


def unserializable_hook(f):
    """Mark ``f``, a tensor hook, as one that saving the tensor may drop silently."""
    f.__torch_unserializable__ = True
    return f


def warn_if_has_hooks(tensor) -> None:
    """Warn that ``tensor``'s backward hooks are not saved with it (those marked by
    ``unserializable_hook`` excepted)."""
    hooks = getattr(tensor, "_backward_hooks", None) or {}
    for hook in hooks.values():
        if not getattr(hook, "__torch_unserializable__", False):
            warnings.warn(
                f"backward hook {hook!r} on tensor will not be serialized. If this is "
                "expected, you can decorate the function with @torch.utils.hooks.unserializable_hook "
                "to suppress this warning",
                stacklevel=2,
            )
