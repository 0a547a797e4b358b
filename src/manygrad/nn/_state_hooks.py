"""Hooks around ``state_dict`` and ``load_state_dict`` (PyTorch's names and call forms), for
modules that store their tensors under other names than they load them (e.g. the weight
norm parametrization accepting ``weight_g``/``weight_v`` from older checkpoints)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable


def _store(module, name: str) -> OrderedDict:
    d = module.__dict__
    if name not in d:
        d[name] = OrderedDict()
    return d[name]


def _add(module, store: str, value):
    from .module import RemovableHandle

    hooks = _store(module, store)
    h = RemovableHandle(hooks)
    hooks[h.id] = value
    return h


class StateDictHooks:
    """Mixed into ``Module``."""

    def register_load_state_dict_pre_hook(self, hook: Callable):
        """Call ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` before this module loads its part of a state dict;
        it may edit ``state_dict`` in place (rename or convert keys)."""
        return _add(self, "_load_state_dict_pre_hooks", (hook, True))

    def _register_load_state_dict_pre_hook(self, hook: Callable,
                                           with_module: bool = False):  # fmt: skip
        """The older form: ``hook(state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)``, with the module first when ``with_module``."""
        return _add(self, "_load_state_dict_pre_hooks", (hook, with_module))

    def register_load_state_dict_post_hook(self, hook: Callable):
        """Call ``hook(module, incompatible_keys)`` after ``load_state_dict``; it may remove
        keys from ``incompatible_keys.missing_keys`` / ``unexpected_keys`` it accounts for."""
        return _add(self, "_load_state_dict_post_hooks", hook)

    def register_state_dict_pre_hook(self, hook: Callable):
        """Call ``hook(module, prefix, keep_vars)`` before ``state_dict`` collects this
        module's tensors."""
        return _add(self, "_state_dict_pre_hooks", hook)

    def register_state_dict_post_hook(self, hook: Callable):
        """Call ``hook(module, state_dict, prefix, local_metadata)`` after ``state_dict``
        collected this module's tensors; it may edit the dict in place."""
        return _add(self, "_state_dict_post_hooks", hook)

    # NOTE: called by Module.state_dict / load_state_dict
    def _run_state_dict_pre_hooks(self, prefix: str, keep_vars: bool) -> None:
        for hook in self.__dict__.get("_state_dict_pre_hooks", {}).values():
            hook(self, prefix, keep_vars)

    def _run_state_dict_post_hooks(self, destination, prefix: str) -> None:
        for hook in self.__dict__.get("_state_dict_post_hooks", {}).values():
            out = hook(self, destination, prefix, {})
            if out is not None:
                raise RuntimeError(
                    "a state_dict post hook must edit the dict in place and return None"
                )

    def _run_load_pre_hooks(self, state_dict, prefix, strict, missing, unexpected, errors):
        for hook, with_module in self.__dict__.get("_load_state_dict_pre_hooks", {}).values():
            args = (state_dict, prefix, {}, strict, missing, unexpected, errors)
            hook(self, *args) if with_module else hook(*args)

    def _run_load_post_hooks(self, keys) -> None:
        for hook in self.__dict__.get("_load_state_dict_post_hooks", {}).values():
            out = hook(self, keys)
            if out is not None:
                raise RuntimeError(
                    "a load_state_dict post hook must edit incompatible_keys in place and "
                    "return None"
                )
