"""Python source from a graph: ``CodeGen`` writes the ``forward`` that ``GraphModule`` runs,
in PyTorch's layout (one line per node, values released after their last use)."""

from __future__ import annotations

import builtins
import enum
import functools
import keyword
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _names
from .node import Node

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["CodeGen", "PythonCode"]

reflectable_magic_methods = {
    "add": "{} + {}", "sub": "{} - {}", "mul": "{} * {}", "floordiv": "{} // {}",
    "truediv": "{} / {}", "div": "{} / {}", "mod": "{} % {}", "pow": "{} ** {}",
    "lshift": "{} << {}", "rshift": "{} >> {}", "and_": "{} & {}", "or_": "{} | {}",
    "xor": "{} ^ {}", "getitem": "{}[{}]", "matmul": "{} @ {}",
}  # fmt: skip
magic_methods = {
    "eq": "{} == {}", "ne": "{} != {}", "lt": "{} < {}", "gt": "{} > {}", "le": "{} <= {}",
    "ge": "{} >= {}", "pos": "+{}", "neg": "-{}", "invert": "~{}",
    **reflectable_magic_methods,
}  # fmt: skip
inplace_methods = {
    "iadd": "{} += {}", "iand": "{} &= {}", "ifloordiv": "{} //= {}", "ilshift": "{} <<= {}",
    "imod": "{} %= {}", "imul": "{} *= {}", "imatmul": "{} @= {}", "ior": "{} |= {}",
    "ipow": "{} **= {}", "irshift": "{} >>= {}", "isub": "{} -= {}", "itruediv": "{} /= {}",
    "ixor": "{} ^= {}", "setitem": "{}[{}] = {}",
}  # fmt: skip


@functools.cache
def _custom_builtins() -> dict[str, tuple[str, Any]]:
    """Names every generated module has: ``name -> (import statement, object)``."""
    import manygrad

    return {
        "inf": ("from math import inf", math.inf),
        "nan": ("from math import nan", math.nan),
        "NoneType": ("NoneType = type(None)", type(None)),
        "manygrad": ("import manygrad", manygrad),
        "device": ("from manygrad import device", manygrad.device),
    }


_illegal_char = re.compile("[^0-9a-zA-Z_]+")
_name_regex = re.compile(r"^([a-zA-Z_][0-9a-zA-Z_]*?)(?:_(\d+))?$")
_snake = re.compile(r"(?<=[a-z])([A-Z])")


def snake_case(s: str) -> str:
    """``"fooBar"`` -> ``"foo_bar"`` (PyTorch's node names)."""
    return _snake.sub(r"_\1", s).lower()


class _Namespace:
    """Unique Python identifiers: ``add``, ``add_1``, ...; never a keyword, a builtin or one
    of the generated module's own names."""

    def __init__(self) -> None:
        self._obj_to_name: dict[int, tuple[Any, str]] = {}  # NOTE: holds obj: ids stay unique
        self._used_names: set[str] = set()
        self._base_count: dict[str, int] = {}

    def create_name(self, candidate: str, obj: Any) -> str:
        """A new unique name close to ``candidate`` (the same one again for the same ``obj``)."""
        if obj is not None and id(obj) in self._obj_to_name:
            return self._obj_to_name[id(obj)][1]
        match = _name_regex.match(candidate)
        if match is None:
            candidate = _illegal_char.sub("_", candidate) or "_unnamed"
            if candidate[0].isdigit():
                candidate = f"_{candidate}"
            match = _name_regex.match(candidate)
        base, num = match.group(1, 2)
        if num is None or candidate in self._used_names:
            num = self._base_count.get(base, 0)
            if _is_illegal(candidate, obj):
                num += 1
                candidate = f"{base}_{num}"
        else:
            num = int(num)
        while candidate in self._used_names:
            num += 1
            candidate = f"{base}_{num}"
        self._used_names.add(candidate)
        self._base_count[base] = num
        if obj is not None:
            self._obj_to_name[id(obj)] = (obj, candidate)
        return candidate

    def associate_name_with_obj(self, name: str, obj: Any) -> None:
        """Record that ``obj`` is called ``name``."""
        self._obj_to_name.setdefault(id(obj), (obj, name))

    def _rename_object(self, obj: Any, name: str) -> None:
        self._obj_to_name[id(obj)] = (obj, name)
        self._used_names.add(name)


def _is_illegal(name: str, obj: Any) -> bool:
    if keyword.iskeyword(name):
        return True
    custom = _custom_builtins().get(name)
    if custom is not None:
        return custom[1] is not obj
    return name in builtins.__dict__ and builtins.__dict__[name] is not obj


@dataclass
class PythonCode:
    """Generated source (``src``) and the globals it needs to run (``globals``)."""

    src: str
    globals: dict[str, Any]
    _lineno_map: dict[int, int | None] | None = None


def _format_target(base: str, target: str) -> str:
    r = base
    for e in target.split("."):
        r = f"{r}.{e}" if e.isidentifier() else f'getattr({r}, "{e}")'
    return r


def _constant_repr(arg: Any) -> str | None:
    """Source for a manygrad dtype, memory format, layout or device (None for others)."""
    kind = type(arg).__name__
    if kind == "Device":
        return f"manygrad.device({str(arg)!r})"
    if kind in ("dtype", "memory_format", "layout"):
        return _names.public_name(arg)
    return None


class CodeGen:
    """Writes a graph as the Python source of ``def forward(self, ...)``."""

    def __init__(self) -> None:
        self._body_transformer = None
        self._func_name = "forward"

    def gen_fn_def(self, free_vars: list[str], maybe_return_annotation: str) -> str:
        """The ``def`` line."""
        if not free_vars or free_vars[0] != "self":
            free_vars.insert(0, "self")
        return f"def {self._func_name}({', '.join(free_vars)}){maybe_return_annotation}:"

    def generate_output(self, output_args: Any) -> str:
        """The ``return`` statement."""
        return f"return {output_args!r}"

    def process_inputs(self, *args: Any) -> Any:
        """The inputs as the graph's placeholders receive them."""
        return args

    def process_outputs(self, outputs: Any) -> Any:
        """The graph's output as the caller receives it."""
        return outputs

    def additional_globals(self) -> list[tuple[str, Any]]:
        """Extra globals of the generated module."""
        return []

    def _gen_python_code(self, nodes: Iterable[Node], root_module: str, namespace: _Namespace,
                         *, verbose: bool = False) -> PythonCode:  # fmt: skip
        free_vars: list[str] = []
        body: list[str] = []
        globals_: dict[str, Any] = {}
        wrapped_fns: dict[str, None] = {}
        ret_annotation = [""]

        def add_global(name_hint: str, obj: Any) -> str:
            public = _names.public_name(obj)
            if public is None and str(getattr(obj, "__module__", "")).startswith("manygrad."):
                ref = _names.reference(obj)  # NOTE: manygrad's own, reached from `manygrad`
                public = ".".join(ref) if ref is not None else None
            if public is not None:
                return public
            name = namespace.create_name(name_hint, obj)
            globals_[name] = obj
            return name

        for name, (_, obj) in _custom_builtins().items():
            add_global(name, obj)

        def type_repr(t: Any) -> str:
            if isinstance(t, type):
                if t.__module__ == "builtins":
                    return t.__qualname__
                return add_global(t.__qualname__, t)
            return ""

        def get_repr(arg: Any) -> str:
            if isinstance(arg, Node):
                return repr(arg)
            if isinstance(arg, tuple) and hasattr(arg, "_fields"):
                return f"{add_global(type(arg).__name__, type(arg))}{get_repr(tuple(arg))}"
            if isinstance(arg, enum.Enum):
                return f"{add_global(type(arg).__name__, type(arg))}.{arg.name}"
            const = _constant_repr(arg)
            if const is not None:
                return const
            if isinstance(arg, tuple):
                if len(arg) == 1:
                    return f"({get_repr(arg[0])},)"
                return "(" + ", ".join(get_repr(a) for a in arg) + ")"
            if isinstance(arg, list):
                return "[" + ", ".join(get_repr(a) for a in arg) + "]"
            if isinstance(arg, dict):
                return "{" + ", ".join(f"{k!r}: {get_repr(v)}" for k, v in arg.items()) + "}"
            if isinstance(arg, slice):
                return f"slice({get_repr(arg.start)}, {get_repr(arg.stop)}, {get_repr(arg.step)})"
            if type(arg).__name__ == "Tensor":
                return f"manygrad.Tensor(size={list(arg.shape)}, dtype={arg.dtype.name})"
            return repr(arg)

        def format_args(args: tuple, kwargs: dict) -> str:
            parts = [get_repr(a) for a in args]
            parts += [f"{k} = {get_repr(v)}" for k, v in kwargs.items()]
            return ", ".join(parts)

        # NOTE: each value is set to None after its last use, so that memory is freed as
        # soon as in eager mode
        node_to_last_use: dict[Node, Node] = {}
        user_to_last_uses: dict[Node, list[Node]] = {}
        for node in reversed(list(nodes)):
            for inp in node._input_nodes:
                if inp not in node_to_last_use:
                    node_to_last_use[inp] = node
                    user_to_last_uses.setdefault(node, []).append(inp)

        def delete_unused_values(user: Node) -> None:
            if user.op == "placeholder":
                return
            if user.op == "output":
                body.append("\n")
                return
            to_delete = list(user_to_last_uses.get(user, []))
            if not user.users:
                to_delete.append(user)
            if to_delete:
                body.append(f";  {' = '.join([repr(n) for n in to_delete] + ['None'])}\n")
            else:
                body.append("\n")

        def annotation(node: Node) -> str:
            if verbose:
                meta = node.meta.get("tensor_meta")
                if meta is not None and hasattr(meta, "shape"):
                    shape = ", ".join(str(s) for s in meta.shape)
                    return f': "{_abbr(meta.dtype)}[{shape}]"'
            tr = type_repr(node.type) if node.type is not None else ""
            return f" : {tr}" if tr else ""

        def emit_node(node: Node) -> None:
            ann = annotation(node)
            if node.op == "placeholder":
                default = "" if not node.args else f" = {get_repr(node.args[0])}"
                free_vars.append(f"{node.target}{ann}{default}")
                raw_name = node.target.replace("*", "")
                if raw_name != repr(node):
                    body.append(f"{node!r} = {raw_name}\n")
                return
            if node.op == "call_method":
                body.append(f"{node!r}{ann} = {_format_target(get_repr(node.args[0]), node.target)}"
                            f"({format_args(node.args[1:], node.kwargs)})")  # fmt: skip
                return
            if node.op == "call_function":
                target = node.target
                tname = getattr(target, "__name__", "")
                if getattr(target, "__module__", "") == "_operator" and tname in magic_methods:
                    code = magic_methods[tname].format(*(get_repr(a) for a in node.args))
                    body.append(f"{node!r}{ann} = {code}")
                    return
                if getattr(target, "__module__", "") == "_operator" and tname in inplace_methods:
                    code = inplace_methods[tname].format(*(get_repr(a) for a in node.args))
                    body.append(f"{code};  {node!r}{ann} = {get_repr(node.args[0])}")
                    return
                global_name = add_global(_names.qualified_name(target), target)
                if (global_name == "getattr" and len(node.args) == 2
                        and isinstance(node.args[1], str) and node.args[1].isidentifier()):  # fmt: skip
                    body.append(f"{node!r}{ann} = "
                                f"{_format_target(get_repr(node.args[0]), node.args[1])}")  # fmt: skip
                    return
                body.append(f"{node!r}{ann} = {global_name}({format_args(node.args, node.kwargs)})")
                if node.meta.get("is_wrapped", False):
                    wrapped_fns.setdefault(global_name)
                return
            if node.op == "call_module":
                body.append(f"{node!r}{ann} = {_format_target(root_module, node.target)}"
                            f"({format_args(node.args, node.kwargs)})")  # fmt: skip
                return
            if node.op == "get_attr":
                body.append(f"{node!r}{ann} = {_format_target(root_module, node.target)}")
                return
            if node.op == "output":
                if node.type is not None and type_repr(node.type):
                    ret_annotation[0] = f" -> {type_repr(node.type)}"
                body.append(self.generate_output(_Repr(get_repr(node.args[0]))))
                return
            raise NotImplementedError(f"node: {node.op} {node.target}")

        for node in nodes:
            emit_node(node)
            delete_unused_values(node)
        if not body:
            body.append("pass\n")
        wrap_stmts = ""
        if wrapped_fns:
            from ._symbolic_trace import wrap

            wrap_name = add_global("wrap", wrap)
            wrap_stmts = "\n".join(f'{wrap_name}("{name}")' for name in wrapped_fns)
        if self._body_transformer:
            body = self._body_transformer(body)
        for name, value in self.additional_globals():
            add_global(name, value)
        prologue = self.gen_fn_def(free_vars, ret_annotation[0])
        code = "".join(body).lstrip("\n")
        code = "\n".join("    " + line for line in code.split("\n"))
        return PythonCode(f"\n{wrap_stmts}\n\n{prologue}\n{code}", globals_)


class _Repr(str):
    """A string whose repr is itself (the output's source, already formatted)."""

    def __repr__(self) -> str:
        return str(self)


_ABBRS = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16",
          "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8",
          "bool": "b8", "complex64": "c64", "complex128": "c128"}  # fmt: skip


def _abbr(dtype: Any) -> str:
    name = getattr(dtype, "name", str(dtype).split(".")[-1])
    return _ABBRS.get(name, name)
