"""``Module``: the base of every layer and model, with PyTorch's registration rules.

Assigning a ``Parameter``, a ``Module`` or (through ``register_buffer``) a tensor to an
attribute registers it; ``parameters()``, ``state_dict()``, ``to()`` and ``train()`` then
walk the tree of submodules.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator

from .. import backend
from .. import dtypes as D
from ..autograd import no_grad
from ..errors import ManygradError
from ..tensor import Tensor
from . import hooks as _hooks
from ._module_access import ModuleAccess
from ._state_hooks import StateDictHooks
from .parameter import Buffer, Parameter


class StateDictError(ManygradError, RuntimeError):
    """A state dict does not fit the module: missing, unexpected or mis-shaped entries."""


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class RemovableHandle:
    """Returned by ``register_*_hook``; ``handle.remove()`` unregisters the hook (also a
    context manager that removes it at the end of the block)."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _addindent(s: str, n: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


def _parse_to(args, kwargs):
    dev = kwargs.pop("device", None)
    dt = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dev, dt = a._device, a.dtype
        elif isinstance(a, (str, backend.Device, int)) and not isinstance(a, bool):
            dev = a
        elif a is not None:
            dt = a
    dev = backend.check_device(backend.device(dev)) if dev is not None else None
    dt = D.from_any(dt) if dt is not None else None
    if dt is not None and not dt.is_floating_point:
        raise TypeError(
            f"Module.to() only accepts floating point dtypes, got {dt}; integer buffers keep "
            "their dtype"
        )
    return dev, dt


def _is_float(arr) -> bool:
    # NOTE: by name, with no ml_dtypes import (float8_e5m2 alone has the kind "f" there)
    return arr.dtype.kind == "f" or arr.dtype.name.startswith(("bfloat16", "float8"))


def _apply_sparse(grad, fn) -> None:
    """``Module._apply`` for a sparse gradient: ``fn`` on its values, indices follow them."""
    vals = grad._values()
    with backend.device_scope(vals._device):
        new = fn(vals._data)
    if new is not vals._data:
        dev = backend.device_of(new)
        grad._vals = Tensor._wrap(new, dev)
        grad._idx = Tensor._wrap(backend.to_device(grad._indices()._data, dev), dev)


class Module(StateDictHooks, ModuleAccess):
    """Base class of all layers and models (PyTorch's ``nn.Module``).

    Subclasses call ``super().__init__()`` first, assign parameters and submodules as
    attributes and define ``forward``; call the module itself to run it.

    Example:
        >>> class MLP(mg.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = mg.nn.Linear(4, 2)
        ...     def forward(self, x):
        ...         return self.fc(x).relu()
    """

    training: bool
    _version: int = 1

    def __init__(self, *args, **kwargs) -> None:
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments; Module.__init__ "
                "takes none"
            )
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = {}
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function; '
            "define forward(self, ...) in the subclass"
        )

    # ------------------------------------------------------------------ calling
    def __call__(self, *args, **kwargs):
        d = self.__dict__
        if (
            d["_forward_pre_hooks"]
            or d["_forward_hooks"]
            or d.get("_backward_hooks")
            or (d.get("_backward_pre_hooks") or _hooks.any_global())
        ):
            return _hooks.call(self, args, kwargs)
        return self._call_forward(args, kwargs)

    def _call_forward(self, args, kwargs):
        dev = getattr(args[0], "_device", None) if args else None
        if dev is None or dev.type == "cpu":
            return self.forward(*args, **kwargs)
        # NOTE: CuPy allocates on the current GPU: layers' own arrays go to the input's
        with backend.device_scope(dev):
            return self.forward(*args, **kwargs)

    def _add_hook(self, key: str, value, prepend: bool = False) -> RemovableHandle:
        hooks = self.__dict__.setdefault(key, OrderedDict())
        h = RemovableHandle(hooks)
        hooks[h.id] = value
        if prepend:
            hooks.move_to_end(h.id, last=False)
        return h

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:  # fmt: skip
        """Call ``hook(module, args)`` (or ``hook(module, args, kwargs)`` with
        ``with_kwargs``) before ``forward``; a non-None result replaces the arguments."""
        return self._add_hook("_forward_pre_hooks", (hook, with_kwargs), prepend)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False, always_call: bool = False
                              ) -> RemovableHandle:  # fmt: skip
        """Call ``hook(module, args, output)`` (``hook(module, args, kwargs, output)`` with
        ``with_kwargs``) after ``forward``; a non-None result replaces the output."""
        return self._add_hook("_forward_hooks", (hook, with_kwargs), prepend)

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False
                                    ) -> RemovableHandle:  # fmt: skip
        """Call ``hook(module, grad_input, grad_output)`` when the gradients of the module's
        inputs are computed; a tuple it returns replaces ``grad_input``.

        Example: ``model.fc.register_full_backward_hook(lambda m, gi, go: print(go[0].shape))``
        """
        return self._add_hook("_backward_hooks", hook, prepend)

    def register_full_backward_pre_hook(self, hook: Callable, prepend: bool = False
                                        ) -> RemovableHandle:  # fmt: skip
        """Call ``hook(module, grad_output)`` when the gradients of the module's outputs are
        computed; a tuple it returns replaces ``grad_output``."""
        return self._add_hook("_backward_pre_hooks", hook, prepend)

    def register_backward_hook(self, hook: Callable) -> RemovableHandle:
        """PyTorch's deprecated name: the same as ``register_full_backward_hook``."""
        return self.register_full_backward_hook(hook)

    # ------------------------------------------------------------------ registration
    def __getattr__(self, name: str):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            s = d.get(store)
            if s is not None and name in s:
                return s[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._remove_from(name, d, d["_buffers"], d["_modules"])
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(mg.nn.Parameter or None expected); wrap it: mg.nn.Parameter(tensor)"
                )
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            if d.get("_modules") is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name, d, params, d["_buffers"])
            d["_modules"][name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' "
                    "(mg.nn.Module or None expected)"
                )
            d["_modules"][name] = value
        elif isinstance(value, Buffer):
            self.register_buffer(name, value, persistent=value.persistent)
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(mg.Tensor or None expected)"
                )
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _remove_from(name, *stores):
        for s in stores:
            if s is not None and name in s:
                del s[name]

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        if name in d["_parameters"]:
            del d["_parameters"][name]
        elif name in d["_buffers"]:
            del d["_buffers"][name]
            d["_non_persistent_buffers_set"].discard(name)
        elif name in d["_modules"]:
            del d["_modules"][name]
        else:
            object.__delattr__(self, name)

    def _check_name(self, name: str, kind: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f'{kind} name can\'t contain "." or be empty, got {name!r}')

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None, a declared but absent one) under ``name``."""
        self._check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(mg.nn.Parameter or None required)"
            )
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"cannot assign non-leaf tensor to parameter '{name}'; use "
                "mg.nn.Parameter(tensor.detach())"
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a tensor that is state but not a parameter (e.g. BatchNorm's running_mean).

        Args:
            name: attribute name.
            tensor: the buffer (or None).
            persistent: whether it is part of ``state_dict()`` (default True).
        """
        self._check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                "(mg.Tensor or None required)"
            )
        if isinstance(tensor, Buffer):
            tensor = Tensor._wrap(tensor._data, tensor._device)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name`` (the same as ``setattr``)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f'module name can\'t contain "." or be empty, got {name!r}')
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------ iteration
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:  # fmt: skip
        """(name, module) for this module and all below it, each module once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from m.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, store, prefix, recurse, remove_duplicate=True):
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        seen = set()
        for mprefix, m in mods:
            for k, v in m.__dict__[store].items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield mprefix + ("." if mprefix else "") + k, v

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:  # fmt: skip
        """(name, parameter) pairs with PyTorch's dotted names, e.g. ``"0.weight"``."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter of this module (and, with ``recurse``, of its submodules)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:  # fmt: skip
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ------------------------------------------------------------------ state dict
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered dict of every persistent parameter and buffer, keyed by dotted name.

        Values share memory with the module's tensors (detached unless ``keep_vars``).

        Example:
            >>> list(mg.nn.Linear(4, 3).state_dict())
            ['weight', 'bias']
        """
        if destination is None:
            destination = OrderedDict()
        self._run_state_dict_pre_hooks(prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".",
                             keep_vars=keep_vars)  # fmt: skip
        self._run_state_dict_post_hooks(destination, prefix)
        return destination

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy values from ``state_dict`` into this module's parameters and buffers in place.

        Values are converted to each parameter's dtype and device; optimizers holding the
        parameters keep working. With ``strict`` (default), one error lists every missing
        key, unexpected key and shape mismatch; otherwise shape mismatches still raise and
        the result names the missing and unexpected keys.

        Args:
            state_dict: mapping of dotted names to tensors (or arrays).
            strict: require the keys to match exactly (default True).
            assign: replace the tensors instead of copying into them (default False).

        Example:
            >>> model.load_state_dict(other.state_dict())
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"expected a mapping for state_dict, got {type(state_dict).__name__}")
        state_dict = OrderedDict(state_dict)
        missing, unexpected, errors = [], [], []

        def load(module, prefix):
            module._run_load_pre_hooks(state_dict, prefix, strict, missing, unexpected, errors)
            module._load_from_state_dict(state_dict, prefix, strict, missing, unexpected,
                                         errors, assign)  # fmt: skip
            for name, child in module._modules.items():
                if child is not None:
                    load(child, prefix + name + ".")

        load(self, "")
        known = {k for k, _ in self._all_state_keys()}
        unexpected.extend(k for k in state_dict if k not in known)
        keys = _IncompatibleKeys(missing, unexpected)
        for _, m in self.named_modules():
            m._run_load_post_hooks(keys)
        msgs = []
        if strict:
            if missing:
                msgs.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
            if unexpected:
                msgs.append(
                    "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected)
                )
        msgs.extend(errors)
        if msgs:
            raise StateDictError(
                f"Error(s) in loading state_dict for {self._get_name()}:\n\t"
                + "\n\t".join(msgs)
                + "\n(save and load the same architecture, or pass strict=False to skip "
                "missing/unexpected keys)"
            )
        return _IncompatibleKeys(missing, unexpected)

    def _all_state_keys(self):
        for mprefix, m in self.named_modules(remove_duplicate=False):
            p = mprefix + "." if mprefix else ""
            for k, v in m._parameters.items():
                if v is not None:
                    yield p + k, v
            for k, v in m._buffers.items():
                if v is not None and k not in m._non_persistent_buffers_set:
                    yield p + k, v

    def _load_from_state_dict(self, state_dict, prefix, strict, missing, unexpected, errors,
                              assign=False) -> None:  # fmt: skip
        local = [(k, v, True) for k, v in self._parameters.items() if v is not None]
        local += [(k, v, False) for k, v in self._buffers.items()
                  if v is not None and k not in self._non_persistent_buffers_set]  # fmt: skip
        for name, target, is_param in local:
            key = prefix + name
            if key not in state_dict:
                missing.append(key)
                continue
            value = state_dict[key]
            arr = value._data if isinstance(value, Tensor) else value
            if not backend.is_array(arr):
                try:
                    arr = Tensor(value)._data
                except Exception:
                    errors.append(
                        f'While copying the parameter named "{key}", expected a tensor from '
                        f"checkpoint but received {type(value).__name__}"
                    )
                    continue
            if tuple(arr.shape) != tuple(target._data.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(arr.shape)} "
                    f"from checkpoint, the shape in current model is {tuple(target._data.shape)}."
                )
                continue
            arr = backend.to_device(arr, target._device)
            if assign:
                if arr.dtype != target._data.dtype and not is_param:
                    arr = arr.astype(target._data.dtype)
                target._data = arr
                target._device = backend.device_of(arr)
            else:
                xp = backend.array_module(target._data)
                with no_grad(), backend.device_scope(target._device):
                    xp.copyto(target._data, arr.astype(target._data.dtype, copy=False),
                              casting="unsafe")  # fmt: skip

    # ------------------------------------------------------------------ modes, devices
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch norm updating its statistics)."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.__dict__["training"] = mode
        for m in self.children():
            m.train(mode)  # NOTE: through train(), so that subclasses can override it
        return self

    def eval(self) -> Module:
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter (to None, or to zeros in place)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            elif p.grad.is_sparse:  # NOTE: a sparse gradient (sparse=True) keeps no entries
                p.grad.zero_()
            else:
                p.grad.detach_()
                with backend.device_scope(p._device):
                    p.grad._data[...] = 0

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every submodule (children first) and then on this module."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply(self, fn) -> Module:
        """Replace the array of every parameter, buffer and gradient with ``fn(array)``."""
        for m in self.modules():
            for t in list(m._parameters.values()) + list(m._buffers.values()):
                if t is None:
                    continue
                # NOTE: fn may cast on the array's GPU: CuPy works on the current one
                with backend.device_scope(t._device):
                    new = fn(t._data)
                if new is not t._data:
                    t._data = new
                    t._device = backend.device_of(new)
                if t.grad is not None and t.grad.is_sparse:  # NOTE: the values take fn
                    _apply_sparse(t.grad, fn)
                elif t.grad is not None:
                    with backend.device_scope(t.grad._device):
                        g = fn(t.grad._data)
                    if g is not t.grad._data:
                        t.grad._data = g
                        t.grad._device = backend.device_of(g)
        return self

    def to(self, *args, **kwargs) -> Module:
        """Move parameters and buffers to a device and/or cast floating ones to a dtype.

        Tensors are changed in place, so references (e.g. held by an optimizer) stay valid.

        Example:
            >>> model.to("cuda"); model.to(mg.float64); model.to("cuda", mg.float16)
        """
        fmt = kwargs.pop("memory_format", None)
        dev, dt = _parse_to(args, kwargs)
        order = getattr(fmt, "order", None)

        def convert(arr):
            if dt is not None and _is_float(arr) and arr.dtype != dt.np:
                arr = arr.astype(dt.np)
            if dev is not None:
                arr = backend.to_device(arr, dev)
            if order is not None and arr.ndim == len(order):  # NOTE: e.g. channels_last
                inv = sorted(range(len(order)), key=order.__getitem__)
                xp = backend.array_module(arr)
                arr = xp.ascontiguousarray(arr.transpose(order)).transpose(inv)
            return arr

        return self._apply(convert)

    def cpu(self) -> Module:
        return self.to("cpu")

    def share_memory(self) -> Module:
        """Move CPU parameters and buffers into shared memory (for Hogwild training in forked
        processes, as ``torch.multiprocessing``); GPU tensors stay as they are."""
        for t in [*self.parameters(), *self.buffers()]:
            t.share_memory_()
        return self

    def cuda(self, device=None) -> Module:
        return self.to(backend.device("cuda" if device is None else device))

    def type(self, dst_type) -> Module:
        return self.to(dst_type)

    def float(self) -> Module:
        return self.to(D.float32)

    def double(self) -> Module:
        return self.to(D.float64)

    def half(self) -> Module:
        return self.to(D.float16)

    def bfloat16(self) -> Module:
        return self.to(D.bfloat16)

    # ------------------------------------------------------------------ repr
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (its settings)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({k}): " + _addindent(repr(m), 2) for k, m in self._modules.items()]
        lines = extra_lines + child_lines
        s = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                s += extra_lines[0]
            else:
                s += "\n  " + "\n  ".join(lines) + "\n"
        return s + ")"

    def __dir__(self):
        keys = list(super().__dir__())
        keys += list(self._parameters) + list(self._modules) + list(self._buffers)
        return sorted(k for k in set(keys) if not k[0].isdigit())

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)


def _global(hooks: dict, value) -> RemovableHandle:
    h = RemovableHandle(hooks)
    hooks[h.id] = value
    return h


def register_module_forward_pre_hook(hook: Callable) -> RemovableHandle:
    """A forward pre-hook for every module (``hook(module, args)``)."""
    return _global(_hooks.forward_pre, (hook, False))


def register_module_forward_hook(hook: Callable, *, with_kwargs: bool = False,
                                 always_call: bool = False) -> RemovableHandle:  # fmt: skip
    """A forward hook for every module (``hook(module, args, output)``)."""
    return _global(_hooks.forward, (hook, with_kwargs))


def register_module_full_backward_hook(hook: Callable) -> RemovableHandle:
    """A full backward hook for every module (``hook(module, grad_input, grad_output)``)."""
    return _global(_hooks.backward, hook)


def register_module_full_backward_pre_hook(hook: Callable) -> RemovableHandle:
    """A backward pre-hook for every module (``hook(module, grad_output)``)."""
    return _global(_hooks.backward_pre, hook)
