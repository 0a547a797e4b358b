"""State dicts, mixed into ``Module``: ``state_dict`` and ``load_state_dict`` with PyTorch's
walk (each module loads its own entries through ``_load_from_state_dict``), ``_metadata``
versions, extra state, and the hooks around them (PyTorch's names and call forms), e.g. for
modules that store their tensors under other names than they load them (the weight norm
parametrization accepting ``weight_g``/``weight_v`` from older checkpoints)."""

from __future__ import annotations

import functools
import weakref
from collections import OrderedDict, namedtuple
from collections.abc import Callable

from .. import backend
from ..autograd import no_grad
from ..errors import ManygradError
from ..tensor import Tensor
from .parameter import Parameter, is_lazy

_EXTRA_STATE_KEY_SUFFIX = "_extra_state"


class StateDictError(ManygradError, RuntimeError):
    """A state dict does not fit the module: missing, unexpected or mis-shaped entries."""


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


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


class _WrappedHook:
    """A load pre-hook, given its module first when it was registered ``with_module``
    (PyTorch's: a weak reference, so that the hook keeps no module alive)."""

    def __init__(self, hook: Callable, module=None):
        self.hook = hook
        functools.update_wrapper(self, hook)
        self.with_module = module is not None
        if self.with_module:
            self.module = weakref.ref(module)

    def __call__(self, *args, **kwargs):
        if not self.with_module:
            return self.hook(*args, **kwargs)
        module = self.module()
        if module is None:
            raise RuntimeError("You are trying to call the hook of a dead Module!")
        return self.hook(module, *args, **kwargs)

    def __getstate__(self) -> dict:
        state = {"hook": self.hook, "with_module": self.with_module}
        if self.with_module:
            state["module"] = self.module()
        return state

    def __setstate__(self, state: dict) -> None:
        self.hook, self.with_module = state["hook"], state["with_module"]
        if self.with_module:
            if state["module"] is None:
                raise RuntimeError("You are trying to revive the hook of a dead Module!")
            self.module = weakref.ref(state["module"])


class StateDictHooks:
    """Mixed into ``Module``."""

    def get_extra_state(self):
        """The extra (non-tensor) state that ``state_dict()`` stores under ``_extra_state``;
        define it, with ``set_extra_state``, in a subclass that has such state."""
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called: "
            "define get_extra_state() in the subclass"
        )

    def set_extra_state(self, state) -> None:
        """Restore what ``get_extra_state`` returned, from a loaded state dict."""
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called: "
            "define set_extra_state() in the subclass"
        )

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered dict of every persistent parameter and buffer, keyed by dotted name.

        Values share memory with the module's tensors (detached unless ``keep_vars``). As in
        PyTorch, its ``_metadata`` holds each module's ``_version`` for ``load_state_dict``.

        Example:
            >>> list(mg.nn.Linear(4, 3).state_dict())
            ['weight', 'bias']
        """
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = dict(version=self._version)
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        self._run_state_dict_pre_hooks(prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".",
                             keep_vars=keep_vars)  # fmt: skip
        return self._run_state_dict_post_hooks(destination, prefix, local_metadata)

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        if type(self).get_extra_state is not StateDictHooks.get_extra_state:
            destination[prefix + _EXTRA_STATE_KEY_SUFFIX] = self.get_extra_state()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy values from ``state_dict`` into this module's parameters and buffers in place.

        Values are converted to each parameter's dtype and device; optimizers holding the
        parameters keep working. With ``strict`` (default), one error lists every missing
        key, unexpected key and shape mismatch; otherwise shape mismatches still raise and
        the result names the missing and unexpected keys.

        Args:
            state_dict: mapping of dotted names to tensors (or arrays).
            strict: require the keys to match exactly (default True).
            assign: put the state dict's tensors into the module instead of copying into its
                own (parameters keep their ``requires_grad``) (default False).

        Example:
            >>> model.load_state_dict(other.state_dict())
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"expected a mapping for state_dict, got {type(state_dict).__name__}")
        missing, unexpected, errors = [], [], []
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)
        if metadata is not None:
            state_dict._metadata = metadata

        # NOTE: PyTorch's walk: each module sees the entries under its prefix (its pre-hooks
        # may edit them) and reports its unexpected ones; post-hooks run children first
        def load(module, local, prefix=""):
            local_metadata = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                local_metadata["assign_to_params_buffers"] = assign
            module._load_from_state_dict(local, prefix, local_metadata, True, missing,
                                         unexpected, errors)  # fmt: skip
            for name, child in module._modules.items():
                if child is not None:
                    cp = prefix + name + "."
                    load(child, {k: v for k, v in local.items() if k.startswith(cp)}, cp)
            module._run_load_post_hooks(_IncompatibleKeys(missing, unexpected))

        load(self, state_dict)
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected)))  # fmt: skip
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing)))  # fmt: skip
        if errors:
            hint = " or pass strict=False to skip missing/unexpected keys" if strict else ""
            raise StateDictError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
                + f"\n(save and load the same architecture{hint})"
            )
        return _IncompatibleKeys(missing, unexpected)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # fmt: skip
        """Load this module's own entries of ``state_dict`` (not its children's), as PyTorch's
        (same arguments; ``local_metadata["assign_to_params_buffers"]`` for ``assign``)."""
        self._run_load_pre_hooks(state_dict, prefix, local_metadata, strict, missing_keys,
                                 unexpected_keys, error_msgs)  # fmt: skip
        local = {k: v for k, v in self._parameters.items() if v is not None}
        local.update((k, v) for k, v in self._buffers.items()
                     if v is not None and k not in self._non_persistent_buffers_set)  # fmt: skip
        assign = local_metadata.get("assign_to_params_buffers", False)
        for name, param in local.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            value = state_dict[key]
            if backend.is_array(value):  # NOTE: manygrad also takes NumPy/CuPy arrays
                value = Tensor._wrap(value)
            if not isinstance(value, Tensor):
                error_msgs.append(
                    f'While copying the parameter named "{key}", expected mg.Tensor or '
                    f"Tensor-like object from checkpoint but received {type(value)}"
                )
                continue
            lazy = is_lazy(param)
            if not lazy and param.ndim == 0 and value.ndim == 1 and value.shape[0] == 1:
                value = value[0]  # NOTE: PyTorch 0.3's 1-element scalars
            if not lazy and tuple(value.shape) != tuple(param.shape):
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} "
                    f"from checkpoint, the shape in current model is {tuple(param.shape)}."
                )
                continue
            try:
                with no_grad():
                    if not assign:
                        param.copy_(value)
                        continue
                    if isinstance(param, Parameter):
                        if isinstance(value, Parameter):
                            value.requires_grad_(param.requires_grad)
                        else:
                            value = Parameter(value, requires_grad=param.requires_grad)
                    setattr(self, name, value)
            except Exception as ex:
                error_msgs.append(
                    f'While copying the parameter named "{key}", whose dimensions in the model '
                    f"are {tuple(param.shape)} and whose dimensions in the checkpoint are "
                    f"{tuple(value.shape)}, an exception occurred : {ex.args}."
                )
        extra_key = prefix + _EXTRA_STATE_KEY_SUFFIX
        if type(self).set_extra_state is not StateDictHooks.set_extra_state:
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing_keys.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected_keys.append(extra_key)
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra_key:
                    head = key[len(prefix) :].split(".", 1)
                    if head[0] not in (self._modules if len(head) > 1 else local):
                        unexpected_keys.append(key)

    def register_load_state_dict_pre_hook(self, hook: Callable):
        """Call ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` before this module loads its part of a state dict;
        it may edit ``state_dict`` in place (rename or convert keys)."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def _register_load_state_dict_pre_hook(self, hook: Callable,
                                           with_module: bool = False):  # fmt: skip
        """The older form: ``hook(state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)``, with the module first when ``with_module``."""
        return _add(self, "_load_state_dict_pre_hooks",
                    _WrappedHook(hook, self if with_module else None))  # fmt: skip

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
        # NOTE: as PyTorch's, the mark tells this form (must return None) from the older one
        hook._from_public_api = True
        return _add(self, "_state_dict_hooks", hook)

    def _register_state_dict_hook(self, hook: Callable):
        """The older form of ``register_state_dict_post_hook``: a dict the hook returns
        replaces the state dict (respected where ``state_dict()`` was called)."""
        if getattr(hook, "_from_public_api", False):
            raise RuntimeError(
                "Cannot register the same function as the state dict post hook that was "
                "previously registered via register_state_dict_post_hook"
            )
        return _add(self, "_state_dict_hooks", hook)

    # NOTE: called by Module.state_dict / load_state_dict / _load_from_state_dict
    def _run_state_dict_pre_hooks(self, prefix: str, keep_vars: bool) -> None:
        for hook in self.__dict__.get("_state_dict_pre_hooks", {}).values():
            hook(self, prefix, keep_vars)

    def _run_state_dict_post_hooks(self, destination, prefix: str, local_metadata: dict):
        for hook in self.__dict__.get("_state_dict_hooks", {}).values():
            out = hook(self, destination, prefix, local_metadata)
            if not getattr(hook, "_from_public_api", False):
                if out is not None:
                    destination = out
            elif out is not None:
                raise RuntimeError(
                    "state_dict post-hook must return None: edit the state dict in place"
                )
        return destination

    def _run_load_pre_hooks(self, state_dict, prefix, local_metadata, strict, missing,
                            unexpected, errors) -> None:  # fmt: skip
        for hook in self.__dict__.get("_load_state_dict_pre_hooks", {}).values():
            hook(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    def _run_load_post_hooks(self, keys) -> None:
        for hook in self.__dict__.get("_load_state_dict_post_hooks", {}).values():
            out = hook(self, keys)
            if out is not None:
                raise RuntimeError(
                    "a load_state_dict post hook must edit incompatible_keys in place and "
                    "return None"
                )
