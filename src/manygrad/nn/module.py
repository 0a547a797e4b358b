"""``Module``: the base of every layer and model, with PyTorch's registration rules.

Assigning a ``Parameter``, a ``Module`` or (through ``register_buffer``) a tensor to an
attribute registers it; ``parameters()``, ``state_dict()``, ``to()`` and ``train()`` then
walk the tree of submodules.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from .. import backend
from .. import dtypes as D
from ..autograd import no_grad
from ..tensor import Tensor
from . import hooks as _hooks
from ._module_access import ModuleAccess
from ._state_hooks import StateDictError, StateDictHooks, _IncompatibleKeys  # noqa: F401
from .parameter import Buffer, Parameter, is_lazy


class RemovableHandle:
    """Returned by ``register_*_hook``; ``handle.remove()`` unregisters the hook (also a
    context manager that removes it at the end of the block)."""

    next_id = 0

    def __init__(self, hooks_dict: dict, *, extra_dict=None):
        self._hooks = hooks_dict
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        # NOTE: as PyTorch's: the dicts of per-hook flags (with_kwargs, always_call) lose the
        # id too, so that a later hook never inherits a removed one's flags
        self._extra = (extra_dict,) if isinstance(extra_dict, dict) else tuple(extra_dict or ())

    def remove(self) -> None:
        for d in (self._hooks, *self._extra):
            d.pop(self.id, None)

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
        if isinstance(a, bool):  # NOTE: to(dtype, True): PyTorch's positional non_blocking
            continue
        if isinstance(a, Tensor):
            dev, dt = a._device, a.dtype
        elif isinstance(a, (str, backend.Device, int)):
            dev = a
        elif a is not None:
            dt = a
    dev = backend.check_device(backend.device(dev)) if dev is not None else None
    dt = D.from_any(dt) if dt is not None else None
    if dt is not None and not (dt.is_floating_point or dt.is_complex):
        raise TypeError(
            f"nn.Module.to only accepts floating point or complex dtypes, but got desired "
            f"dtype={dt}; integer buffers keep their dtype"
        )
    return dev, dt


def _check_name(name, kind: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')


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


def _on_arrays(convert):
    """A tensor function for ``Module._apply`` from an array one: the tensor itself when
    ``convert`` changes nothing (as ``Tensor.to``), a new tensor otherwise."""

    def fn(t):
        if t.is_sparse:  # NOTE: a sparse gradient: its values take convert, in place
            _apply_sparse(t, convert)
            return t
        with backend.device_scope(t._device):  # NOTE: CuPy casts on the current GPU
            new = convert(t._data)
        if new is t._data:
            return t
        out = Tensor._wrap(new, backend.device_of(new))
        out.requires_grad = t.requires_grad
        return out

    return fn


def _cast_floating(dt):
    """``Module.float()``/``double()``/...: floating arrays to ``dt``, others as they are."""
    return lambda a: a.astype(dt.np) if _is_float(a) and a.dtype != dt.np else a


def _set_data(t: Tensor, new: Tensor) -> None:
    """``t.data = new``: the same object on new memory (PyTorch's ``param.data = ...``)."""
    t._data, t._device = new._data, new._device


_HOOK_DICTS = (
    "_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)  # fmt: skip


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
        d["_is_full_backward_hook"] = None
        for name in _HOOK_DICTS:  # NOTE: all of PyTorch's, as code reads them directly
            d[name] = OrderedDict()
        d["_modules"] = {}

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function; '
            "define forward(self, ...) in the subclass"
        )

    # ------------------------------------------------------------------ calling
    def _call_impl(self, *args, **kwargs):
        d = self.__dict__
        if (
            d["_forward_pre_hooks"]
            or d["_forward_hooks"]
            or d.get("_backward_hooks")
            or (d.get("_backward_pre_hooks") or _hooks.any_global())
        ):
            return _hooks.call(self, args, kwargs)
        return self._call_forward(args, kwargs)

    __call__ = _wrapped_call_impl = _call_impl

    def _call_forward(self, args, kwargs):
        dev = getattr(args[0], "_device", None) if args else None
        if dev is None or dev.type == "cpu":
            return self.forward(*args, **kwargs)
        # NOTE: CuPy allocates on the current GPU: layers' own arrays go to the input's
        with backend.device_scope(dev):
            return self.forward(*args, **kwargs)

    def _add_hook(self, key: str, value, prepend: bool = False, flags=()) -> RemovableHandle:
        """Store ``value`` in the hook dict ``key``; its id also goes into the flag dicts
        ``flags`` (PyTorch's layout: the hook dicts hold the callables themselves)."""
        d = self.__dict__
        hooks = d.setdefault(key, OrderedDict())
        extra = [d.setdefault(f, OrderedDict()) for f in flags]
        h = RemovableHandle(hooks, extra_dict=extra)
        hooks[h.id] = value
        for f in extra:
            f[h.id] = True
        if prepend:
            hooks.move_to_end(h.id, last=False)
        return h

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:  # fmt: skip
        """Call ``hook(module, args)`` (or ``hook(module, args, kwargs)`` with
        ``with_kwargs``) before ``forward``; a non-None result replaces the arguments."""
        flags = ("_forward_pre_hooks_with_kwargs",) if with_kwargs else ()
        return self._add_hook("_forward_pre_hooks", hook, prepend, flags)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False, always_call: bool = False
                              ) -> RemovableHandle:  # fmt: skip
        """Call ``hook(module, args, output)`` (``hook(module, args, kwargs, output)`` with
        ``with_kwargs``) after ``forward``; a non-None result replaces the output. With
        ``always_call`` it runs (with output None) even when ``forward`` raises."""
        flags = ("_forward_hooks_with_kwargs",) * with_kwargs
        flags += ("_forward_hooks_always_called",) * always_call
        return self._add_hook("_forward_hooks", hook, prepend, flags)

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
            d["_non_persistent_buffers_set"].discard(name)
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
            d["_non_persistent_buffers_set"].discard(name)
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
        _check_name(name, kind)

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
        _check_name(name, "module")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------ iteration
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:  # fmt: skip
        """(name, module) for this module and all below it, each module once (unless
        ``remove_duplicate=False``); modules in ``memo`` (a set of modules) are skipped."""
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from m.named_modules(memo, sub, remove_duplicate)

    def modules(self, remove_duplicate: bool = True) -> Iterator[Module]:
        for _, m in self.named_modules(remove_duplicate=remove_duplicate):
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
        mods = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                if recurse else [(prefix, self)])  # fmt: skip
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

    def _apply(self, fn, recurse: bool = True) -> Module:
        """PyTorch's: ``fn(tensor)`` on every parameter, gradient and buffer, children first.

        Parameters and gradients stay the same objects with ``fn``'s result as their data (so
        optimizers keep working); buffers are replaced by ``fn``'s result.
        """
        if recurse:
            for m in self.children():
                m._apply(fn)
        for p in self._parameters.values():
            if p is None:
                continue
            with no_grad():
                new = fn(p)
            if new is not p:
                _set_data(p, new)
            g = p.grad
            if g is not None:
                with no_grad():
                    new = fn(g)
                if new is not g:
                    _set_data(g, new)
        for key, b in self._buffers.items():
            if b is None:
                continue
            new = fn(b)
            if is_lazy(b) and new is not b:  # NOTE: a placeholder stays itself, as in PyTorch
                _set_data(b, new)
            else:
                self._buffers[key] = new
        return self

    def to(self, *args, **kwargs) -> Module:
        """Move parameters and buffers to a device and/or cast floating ones to a dtype.

        Parameters are changed in place, so references (e.g. held by an optimizer) stay
        valid; buffers that change are replaced, as in PyTorch.

        Example:
            >>> model.to("cuda"); model.to(mg.float64); model.to("cuda", mg.float16)
        """
        fmt = kwargs.pop("memory_format", None)
        dev, dt = _parse_to(args, kwargs)
        order = getattr(fmt, "order", None)

        def convert(arr):
            if dt is not None and (_is_float(arr) or arr.dtype.kind == "c") \
                    and arr.dtype != dt.np:  # fmt: skip
                arr = arr.astype(dt.np)
            if dev is not None:
                arr = backend.to_device(arr, dev)
            if order is not None and arr.ndim == len(order):  # NOTE: e.g. channels_last
                inv = sorted(range(len(order)), key=order.__getitem__)
                xp = backend.array_module(arr)
                arr = xp.ascontiguousarray(arr.transpose(order)).transpose(inv)
            return arr

        return self._apply(_on_arrays(convert))

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
        """Cast every parameter and buffer, integer ones included, to ``dst_type``."""
        return self._apply(lambda t: t.type(dst_type))

    # NOTE: unlike to(dtype), these leave complex tensors alone, as PyTorch's
    def float(self) -> Module:
        return self._apply(_on_arrays(_cast_floating(D.float32)))

    def double(self) -> Module:
        return self._apply(_on_arrays(_cast_floating(D.float64)))

    def half(self) -> Module:
        return self._apply(_on_arrays(_cast_floating(D.float16)))

    def bfloat16(self) -> Module:
        return self._apply(_on_arrays(_cast_floating(D.bfloat16)))

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
        d = self.__dict__  # NOTE: objects pickled before a hook dict existed get it empty
        for name in _HOOK_DICTS:
            d.setdefault(name, OrderedDict())
        d.setdefault("_non_persistent_buffers_set", set())
        d.setdefault("_is_full_backward_hook", None)


def register_module_forward_pre_hook(hook: Callable) -> RemovableHandle:
    """A forward pre-hook for every module (``hook(module, args)``)."""
    h = RemovableHandle(_hooks.forward_pre)
    _hooks.forward_pre[h.id] = hook
    return h


def register_module_forward_hook(hook: Callable, *, with_kwargs: bool = False,
                                 always_call: bool = False) -> RemovableHandle:  # fmt: skip
    """A forward hook for every module (``hook(module, args, output)``, or
    ``hook(module, args, kwargs, output)`` with ``with_kwargs``)."""
    h = RemovableHandle(_hooks.forward, extra_dict=[_hooks.forward_with_kwargs,
                                                     _hooks.forward_always_called])  # fmt: skip
    _hooks.forward[h.id] = hook
    if with_kwargs:
        _hooks.forward_with_kwargs[h.id] = True
    if always_call:
        _hooks.forward_always_called[h.id] = True
    return h


def register_module_full_backward_hook(hook: Callable) -> RemovableHandle:
    """A full backward hook for every module (``hook(module, grad_input, grad_output)``)."""
    h = RemovableHandle(_hooks.backward)
    _hooks.backward[h.id] = hook
    return h


def register_module_full_backward_pre_hook(hook: Callable) -> RemovableHandle:
    """A backward pre-hook for every module (``hook(module, grad_output)``)."""
    h = RemovableHandle(_hooks.backward_pre)
    _hooks.backward_pre[h.id] = hook
    return h
