"""Optimizer hooks, as PyTorch's: per-optimizer ``register_step_pre_hook`` /
``register_step_post_hook`` and the state-dict hooks, plus the global
``register_optimizer_step_pre_hook`` / ``register_optimizer_step_post_hook`` that every
optimizer runs (as ``torch.optim.optimizer``).

A step hook is ``hook(optimizer, args, kwargs)``, where ``args`` holds the optimizer and
the positional arguments of ``step``; a pre hook may return ``(new_args, new_kwargs)`` to
change what ``step`` receives.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from itertools import chain

from ..autograd.graph import RemovableHandle

_global_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
_global_post_hooks: OrderedDict[int, Callable] = OrderedDict()

_HOOK_DICTS = (
    "_optimizer_step_pre_hooks",
    "_optimizer_step_post_hooks",
    "_optimizer_state_dict_pre_hooks",
    "_optimizer_state_dict_post_hooks",
    "_optimizer_load_state_dict_pre_hooks",
    "_optimizer_load_state_dict_post_hooks",
)


def _add(hooks: OrderedDict, hook: Callable, prepend: bool = False) -> RemovableHandle:
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def register_optimizer_step_pre_hook(hook: Callable) -> RemovableHandle:
    """Run ``hook(optimizer, args, kwargs)`` before the ``step`` of every optimizer.

    Example:
        >>> h = mg.optim.optimizer.register_optimizer_step_pre_hook(lambda o, a, k: None)
        >>> h.remove()
    """
    return _add(_global_pre_hooks, hook)


def register_optimizer_step_post_hook(hook: Callable) -> RemovableHandle:
    """Run ``hook(optimizer, args, kwargs)`` after the ``step`` of every optimizer."""
    return _add(_global_post_hooks, hook)


def hooked_step(step: Callable) -> Callable:
    """``step`` wrapped so that the step hooks run around it."""

    @functools.wraps(step)
    def wrapper(*args, **kwargs):
        self = args[0]
        self._opt_called = True  # NOTE: what schedulers check (also for a custom step)
        pre = getattr(self, "_optimizer_step_pre_hooks", None)
        post = getattr(self, "_optimizer_step_post_hooks", None)
        if not (pre or post or _global_pre_hooks or _global_post_hooks):
            return step(*args, **kwargs)
        for hook in chain(_global_pre_hooks.values(), (pre or {}).values()):
            result = hook(self, args, kwargs)
            if result is None:
                continue
            if not (isinstance(result, tuple) and len(result) == 2):
                raise RuntimeError(
                    f"{type(self).__name__}.step: a step pre hook must return None or a tuple "
                    f"(new_args, new_kwargs), but got {result!r}"
                )
            args, kwargs = result
        out = step(*args, **kwargs)
        for hook in chain((post or {}).values(), _global_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    wrapper.hooked = True  # type: ignore[attr-defined]
    return wrapper


class OptimizerHooks:
    """The ``register_*_hook`` methods of ``Optimizer``."""

    def _init_hooks(self) -> None:
        for name in _HOOK_DICTS:
            setattr(self, name, OrderedDict())
        cls = type(self)
        if not getattr(cls.step, "hooked", False):  # NOTE: once per class, as PyTorch
            cls.step = hooked_step(cls.step)

    def _hooks(self, name: str) -> OrderedDict:
        hooks = self.__dict__.get(name)
        if hooks is None:  # NOTE: an optimizer made without __init__ (copy, unpickling)
            hooks = self.__dict__[name] = OrderedDict()
        return hooks

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Run ``hook(optimizer, args, kwargs)`` before each ``step``; it may return
        ``(new_args, new_kwargs)``.

        Example:
            >>> handle = opt.register_step_pre_hook(lambda o, args, kwargs: None)
            >>> handle.remove()
        """
        return _add(self._hooks("_optimizer_step_pre_hooks"), hook)

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """Run ``hook(optimizer, args, kwargs)`` after each ``step``."""
        return _add(self._hooks("_optimizer_step_post_hooks"), hook)

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """Run ``hook(optimizer)`` before ``state_dict`` builds the state dict."""
        return _add(self._hooks("_optimizer_state_dict_pre_hooks"), hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """Run ``hook(optimizer, state_dict)`` on the built state dict; a returned dict
        replaces it."""
        return _add(self._hooks("_optimizer_state_dict_post_hooks"), hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """Run ``hook(optimizer, state_dict)`` before ``load_state_dict`` reads it; a
        returned dict is loaded instead."""
        return _add(self._hooks("_optimizer_load_state_dict_pre_hooks"), hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """Run ``hook(optimizer)`` after ``load_state_dict``."""
        return _add(self._hooks("_optimizer_load_state_dict_post_hooks"), hook, prepend)
