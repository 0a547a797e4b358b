"""``Tracer`` and ``symbolic_trace``: run a module's ``forward`` on proxies and record what
it does as a ``Graph``; ``wrap`` keeps a function as one node."""

from __future__ import annotations

import collections
import inspect
import math
import types
import warnings
from collections.abc import Callable
from itertools import chain
from typing import Any

from ..nn import Module, Parameter, Sequential
from ..tensor import Tensor
from . import _names, _patching
from .graph import Graph
from .graph_module import GraphModule
from .node import Argument
from .proxy import ParameterProxy, Proxy, Scope, ScopeContextManager, TracerBase

__all__ = ["Tracer", "symbolic_trace", "wrap", "PH", "ProxyableClassMeta", "is_fx_tracing",
           "is_fx_symbolic_tracing"]  # fmt: skip

_is_fx_tracing_flag = False


def is_fx_tracing() -> bool:
    """Whether a symbolic trace is running."""
    return _is_fx_tracing_flag


def is_fx_symbolic_tracing() -> bool:
    """Whether ``fx.symbolic_trace`` (a ``Tracer``) is running: ``is_fx_tracing`` under the
    name PyTorch gives the check that excludes its ``torch.export`` / ``torch.compile``
    traces (manygrad's ``export`` does not trace through ``fx.Tracer``)."""
    return _is_fx_tracing_flag


class PHBase:
    """A placeholder for a ``concrete_args`` entry that stays an input of the graph."""

    def __repr__(self) -> str:
        return "PH"


PH = PHBase()


def _assert(condition: Any, message: str) -> None:
    """``assert condition, message`` as a graph node (a ``concrete_args`` check)."""
    if not condition:
        raise AssertionError(message)


def _assert_is_none(value: Any, msg: str) -> None:
    if value is not None:
        raise AssertionError(msg)


# NOTE: taken at import, so that a trace started inside another one calls the real ones
_orig_module_call = Module.__call__
_orig_module_getattr = Module.__getattr__


class Tracer(TracerBase):
    """Records a module's ``forward`` as a ``Graph``.

    Standard ``nn`` layers (``Conv2d``, ``BatchNorm2d``, ``Linear``, ...) are leaves: one
    ``call_module`` node each; the ``forward`` of other modules is traced through. Override
    ``is_leaf_module`` to choose otherwise.

    Args:
        autowrap_modules: modules whose public functions are recorded as nodes when handed
            a Proxy, also where imported by name into the traced module (default: ``math``).
            manygrad's own namespaces (``manygrad``, ``manygrad.nn.functional``,
            ``manygrad.special``, ``manygrad.linalg``, ``manygrad.fft``) always are.
        autowrap_functions: single functions recorded the same way.
        param_shapes_constant: parameters answer ``shape`` / ``size()`` with numbers.

    Example:
        >>> class MyTracer(fx.Tracer):
        ...     def is_leaf_module(self, m, qualname):
        ...         return isinstance(m, MyBlock) or super().is_leaf_module(m, qualname)
        >>> graph = MyTracer().trace(model)
    """

    def __init__(self, autowrap_modules: tuple[types.ModuleType, ...] = (math,),
                 autowrap_functions: tuple[Callable, ...] = (),
                 param_shapes_constant: bool = False) -> None:  # fmt: skip
        self._manygrad_function_ids = _patching.manygrad_function_ids()
        self._autowrap_function_ids = {
            id(value)
            for name, value in chain.from_iterable(m.__dict__.items() for m in autowrap_modules)
            if not name.startswith("_") and callable(value)
        }
        self._autowrap_function_ids.update(id(_names.unwrap(f)) for f in autowrap_functions)
        self._autowrap_function_ids |= self._manygrad_function_ids
        self._autowrap_search = [*_names.namespaces(), *autowrap_modules]
        self.param_shapes_constant = param_shapes_constant
        self.submodule_paths: dict | None = None
        self.root_module_name = ""
        self.scope = Scope("", None)
        self.module_stack = collections.OrderedDict()
        self.num_calls: dict[str, int] = {}
        self.node_name_to_scope = {}

    # ------------------------------------------------------------------ arguments
    def get_fresh_qualname(self, prefix: str) -> str:
        """An attribute name ``prefix<i>`` that the root module does not have yet."""
        i = 0
        while hasattr(self.root, f"{prefix}{i}"):
            i += 1
        return f"{prefix}{i}"

    def create_arg(self, a: Any) -> Argument:
        """As ``TracerBase.create_arg``; a tensor becomes a ``get_attr`` node: of its
        parameter or buffer name, or of a new ``_tensor_constant<i>`` attribute of the root."""
        if isinstance(a, Parameter):
            for n, p in self.root.named_parameters():
                if a is p:
                    return self.create_node("get_attr", n, (), {})
            raise NameError("parameter is not a member of this module")
        if isinstance(a, Tensor):
            for n, p in self.root.named_buffers():
                if a is p:
                    return self.create_node("get_attr", n, (), {})
        elif isinstance(a, Module):
            for n, p in self.root.named_modules():
                if a is p:
                    return self.create_node("get_attr", n, (), {})
        if isinstance(a, tuple) and hasattr(a, "_fields"):
            args = tuple(self.create_arg(e) for e in a)
            return self.create_node("call_function", a.__class__, args, {})
        if isinstance(a, Tensor):
            hit = self.tensor_attrs.get(id(a))
            if hit is None:
                hit = (a, self.get_fresh_qualname("_tensor_constant"))
                self.tensor_attrs[id(a)] = hit
                setattr(self.root, hit[1], a)
            return self.create_node("get_attr", hit[1], (), {})
        if type(a) in _proxyable_classes:
            qualname = self.get_fresh_qualname(f"_{a.__class__.__name__}_constant_")
            setattr(self.root, qualname, a)
            return self.create_node("get_attr", qualname, (), {})
        return super().create_arg(a)

    # ------------------------------------------------------------------ modules
    def is_leaf_module(self, m: Any, module_qualified_name: str) -> bool:
        """Whether ``m`` is recorded as one ``call_module`` node (True for manygrad's own
        ``nn`` layers, except ``Sequential``) instead of traced through."""
        mod = type(m).__module__
        return mod.startswith(("manygrad.nn", "torch.nn")) and not isinstance(m, Sequential)

    def path_of_module(self, mod: Any) -> str:
        """The qualified name of submodule ``mod`` in the root (``"layer1.0.conv1"``)."""
        if self.submodule_paths:
            path = self.submodule_paths.get(mod)
            if path is None:
                raise NameError("module is not installed as a submodule")
            return path
        for n, p in self.root.named_modules():
            if mod is p:
                return n
        raise NameError("module is not installed as a submodule")

    def call_module(self, m: Any, forward: Callable, args: tuple, kwargs: dict) -> Any:
        """A call of submodule ``m``: a ``call_module`` node for a leaf, else its
        ``forward`` traced through."""
        name = self.path_of_module(m)
        with ScopeContextManager(self.scope, Scope(name, type(m))) as scope:
            num = self.num_calls.get(name, 0)
            key = f"{scope.module_path}@{num}" if num > 0 else scope.module_path
            self.module_stack[key] = (name, scope.module_type)
            self.num_calls[name] = num + 1
            if not self.is_leaf_module(m, name):
                ret = forward(*args, **kwargs)
            else:
                ret = self.create_proxy("call_module", name, args, kwargs)
            self.module_stack.popitem(last=True)
        return ret

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Proxy]) -> Any:
        """A module attribute read while tracing: a parameter (and, with
        ``proxy_buffer_attributes``, a buffer) becomes a ``get_attr`` proxy, made once."""

        def lookup(collection):
            for n, p in collection:
                if attr_val is p:
                    if n not in parameter_proxy_cache:
                        factory = None
                        if self.param_shapes_constant:
                            factory = lambda node, n=n: ParameterProxy(self, node, n, attr_val)  # noqa: E731
                        parameter_proxy_cache[n] = self.create_proxy(
                            "get_attr", n, (), {}, proxy_factory_fn=factory
                        )
                    return parameter_proxy_cache[n]
            return None

        if isinstance(attr_val, Parameter):
            hit = lookup(self.root.named_parameters())
            if hit is not None:
                return hit
        if self.proxy_buffer_attributes and isinstance(attr_val, Tensor):
            hit = lookup(self.root.named_buffers())
            if hit is not None:
                return hit
        return attr_val

    # ------------------------------------------------------------------ tracing
    def create_args_for_root(self, root_fn: Callable, is_module: bool,
                             concrete_args: dict | tuple | None = None) -> tuple[Callable, list]:  # fmt: skip
        """The placeholders for ``root_fn``'s parameters (``self`` excluded)."""
        fn = inspect.unwrap(root_fn)
        co = fn.__code__
        total = co.co_argcount + co.co_kwonlyargcount
        names = iter(co.co_varnames)
        args: list[Any] = []
        skip = 0
        if is_module:
            if total == 0:
                raise RuntimeError("``self`` argument cannot be part of *args expansion!")
            skip = 1
            next(names)
            args.append(self.root)
        sig = inspect.signature(fn)
        arg_names = [next(names) for _ in range(skip, total)]
        if isinstance(concrete_args, tuple):
            if len(arg_names) != len(concrete_args):
                raise RuntimeError(f"Tracing expected {len(arg_names)} arguments but got "
                                   f"{len(concrete_args)} concrete arguments")  # fmt: skip
            concrete_args = dict(zip(arg_names, concrete_args))
        args.extend(self._proxy_placeholder(n, concrete_args, sig, fn) for n in arg_names)
        if co.co_kwonlyargcount > 0 or co.co_flags & _HAS_VARSTUFF:
            if co.co_flags & inspect.CO_VARARGS:
                args.append(self._proxy_placeholder("*" + next(names), concrete_args, sig, fn))
            if co.co_flags & inspect.CO_VARKEYWORDS:
                args.append(self._proxy_placeholder("**" + next(names), concrete_args, sig, fn))
            root_fn = _patch_function(root_fn, len(args))
        return root_fn, args

    def _proxy_placeholder(self, name: str, concrete_args: dict | None, sig: inspect.Signature,
                           fn: Callable) -> Any:  # fmt: skip
        if concrete_args is not None and name in concrete_args:
            x = concrete_args[name]
            param = sig.parameters[name]
            default = () if param.default is inspect.Parameter.empty else (param.default,)
            out = self.create_proxy("placeholder", f"{name}_1", default, {})
            if isinstance(x, PHBase):
                return out
            if type(x) in (bool, int, float, str, complex):
                msg = f"{name} has been specialized to have value {x} but got another value"
                self.create_proxy("call_function", _assert, (out == x, msg), {})
            elif x is None:
                msg = f"{name} has been specialized to have value None but got another value"
                self.create_proxy("call_function", _assert_is_none, (out, msg), {})
            else:
                warnings.warn(
                    f"Was not able to add assertion to guarantee correct input {name} to "
                    "specialized function. It is up to the user to make sure that your inputs "
                    "match the inputs you specialized the function with.", stacklevel=4)  # fmt: skip
            return x
        if name[0] == "*":
            default = ()
        else:
            param = sig.parameters[name]
            default = () if param.default is inspect.Parameter.empty else (param.default,)
        return self.create_proxy("placeholder", name, default, {},
                                 type_expr=fn.__annotations__.get(name))  # fmt: skip

    def trace(self, root: Any, concrete_args: dict[str, Any] | None = None) -> Graph:
        """Trace ``root`` (a module, or a plain function) into a ``Graph``.

        Args:
            root: the module (its ``forward`` is traced) or function.
            concrete_args: values for some inputs, fixed in the graph (e.g. a flag that
                selects a branch); ``PH`` keeps an entry an input.

        Example: ``graph = Tracer().trace(model)``.
        """
        global _is_fx_tracing_flag
        saved_flag, _is_fx_tracing_flag = _is_fx_tracing_flag, True
        try:
            if isinstance(root, Module):
                self.root = root
                if not hasattr(type(root), self.traced_func_name):
                    raise RuntimeError(f"traced_func_name={self.traced_func_name} doesn't exist "
                                       f"in {type(root).__name__}")  # fmt: skip
                fn = getattr(type(root), self.traced_func_name)
                self.root_module_name = root._get_name()
                self.submodule_paths = {mod: name for name, mod in root.named_modules()}
            else:
                self.root = Module()
                fn = root
            self.graph = Graph(tracer_cls=getattr(self, "__class__", None))
            self.tensor_attrs: dict[int, tuple[Any, str]] = {}
            self._collect_tensor_attrs(self.root, [])
            if not isinstance(fn, types.FunctionType):
                raise TypeError(f"symbolic_trace: expected a module or a Python function, got "
                                f"{type(fn).__name__}")  # fmt: skip
            fn_globals = fn.__globals__
            fn, args = self.create_args_for_root(fn, isinstance(root, Module), concrete_args)
            with _patching.Patcher() as patcher:
                self._patch_module(patcher)
                _patching.patch_wrapped_functions(patcher)
                self._autowrap(patcher, fn_globals)
                # NOTE: a function kept as a module attribute (``self.act = F.gelu``) is
                # read from the instance, past the patched namespaces: patch it there too
                for mod in self.root.modules():
                    self._autowrap(patcher, vars(mod))
                for mod in self._autowrap_search:
                    self._autowrap(patcher, mod.__dict__)
                _patching.patch_tensor_methods(patcher)
                result = fn(*args)
                self.create_node("output", "output", (self.create_arg(result),), {},
                                 type_expr=fn.__annotations__.get("return"))  # fmt: skip
            self.submodule_paths = None
        finally:
            _is_fx_tracing_flag = saved_flag
        return self.graph

    def _collect_tensor_attrs(self, m: Any, prefix: list[str]) -> None:
        for k, v in m.__dict__.items():
            if isinstance(v, Tensor):
                self.tensor_attrs[id(v)] = (v, ".".join([*prefix, k]))
        for k, v in m.named_children():
            self._collect_tensor_attrs(v, [*prefix, k])

    def _autowrap(self, patcher: _patching.Patcher, frame_dict: dict) -> None:
        _patching.autowrap_check(patcher, frame_dict, self._autowrap_function_ids,
                                 self._manygrad_function_ids)  # fmt: skip

    def _patch_module(self, patcher: _patching.Patcher) -> None:
        orig_getattr, orig_call = _orig_module_getattr, _orig_module_call
        cache: dict[str, Proxy] = {}

        def module_getattr_wrapper(mod: Any, attr: str) -> Any:
            return self.getattr(attr, orig_getattr(mod, attr), cache)

        def module_call_wrapper(mod: Any, *args: Any, **kwargs: Any) -> Any:
            def forward(*args: Any, **kwargs: Any) -> Any:
                return orig_call(mod, *args, **kwargs)

            globs = getattr(getattr(mod, "forward", mod), "__globals__", {})
            self._autowrap(patcher, globs)
            return self.call_module(mod, forward, args, kwargs)

        patcher.patch_method(Module, "__getattr__", module_getattr_wrapper, deduplicate=False)
        patcher.patch_method(Module, "__call__", module_call_wrapper, deduplicate=False)


_HAS_VARSTUFF = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS


def _patch_function(fn: types.FunctionType, nargs: int) -> types.FunctionType:
    """``fn`` with ``*args`` / ``**kwargs`` taken as plain parameters (each gets one Proxy)."""
    co = fn.__code__
    code = co.replace(co_argcount=nargs, co_posonlyargcount=0, co_kwonlyargcount=0,
                      co_flags=co.co_flags & ~_HAS_VARSTUFF)  # fmt: skip
    return types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


_proxyable_classes: dict[type, None] = {}


class ProxyableClassMeta(type):
    """A metaclass whose classes are recorded as one ``call_function`` node when constructed
    from proxies (``TensorPair(x, y)``), instead of being traced into."""

    def __init__(cls, name: str, bases: tuple, attrs: dict) -> None:
        _proxyable_classes.setdefault(cls)
        super().__init__(name, bases, attrs)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        proxy = _patching.find_proxy(args, kwargs)
        if proxy is not None:
            return proxy.tracer.create_proxy("call_function", cls, args, kwargs)
        return super().__call__(*args, **kwargs)


def wrap(fn_or_name: str | Callable) -> str | Callable:
    """Keep a module-level function as one ``call_function`` node when traced (instead of
    tracing into it, or failing on control flow inside it). Call at the top level of the
    module that defines or imports the function.

    Args:
        fn_or_name: the function, or its global name in the calling module.

    Example:
        >>> def clipped_norm(x):
        ...     return x / max(float(x.norm()), 1.0)  # data-dependent: not traceable
        >>> fx.wrap("clipped_norm")
    """
    if callable(fn_or_name):
        fn_name = fn_or_name.__name__
    elif isinstance(fn_or_name, str):
        fn_name = fn_or_name
    else:
        raise RuntimeError("Unsupported type for global function! Must be either a callable "
                           "or string name")  # fmt: skip
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    if caller is None or caller.f_code.co_name != "<module>":
        raise NotImplementedError("wrap must be called at the top level of a module")
    _patching.wrapped_fns_to_patch[(id(caller.f_globals), fn_name)] = caller.f_globals
    return fn_or_name


def symbolic_trace(root: Any, concrete_args: dict[str, Any] | None = None) -> GraphModule:
    """Trace ``root`` (a module or function) into a ``GraphModule``: the same computation as
    a graph of nodes, with generated Python code.

    Args:
        root: the module or function.
        concrete_args: values for some inputs, fixed in the graph (default None).

    Example:
        >>> gm = fx.symbolic_trace(model)
        >>> print(gm.graph)
        >>> y = gm(x)  # as model(x)
    """
    tracer = Tracer()
    graph = tracer.trace(root, concrete_args)
    name = type(root).__name__ if isinstance(root, Module) else root.__name__
    return GraphModule(tracer.root, graph, name)


def _register_side_effects() -> None:
    from .node import has_side_effect

    has_side_effect(_assert)


_register_side_effects()
