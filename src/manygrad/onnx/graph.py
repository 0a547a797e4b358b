"""The ONNX graph being built while a model is traced: nodes, constants, unique names."""

from __future__ import annotations

import numpy as np

from ..errors import ManygradError

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


class UnsupportedOpError(ManygradError, TypeError):
    """An op (or one of its options) that ONNX export has no rule for."""


class Graph:
    """Collects ONNX nodes and initializers with unique names for one export."""

    def __init__(self, opset: int):
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self._used: set[str] = set()
        self._consts: dict = {}

    def unique(self, hint: str) -> str:
        base = hint.replace("/", ".") or "v"
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def const(self, array, hint: str = "const") -> str:
        """An initializer holding ``array`` (small ones are shared); returns its name."""
        a = np.asarray(array)
        a = a if a.flags.c_contiguous else a.copy(order="C")  # NOTE: keeps 0-d arrays 0-d
        key = (a.dtype.str, a.shape, a.tobytes()) if a.size <= 16 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.unique(hint)
        self.initializers.append(self._numpy_helper.from_array(a, name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values, hint: str = "ints") -> str:
        return self.const(np.asarray(values, dtype=np.int64), hint)

    def scalar(self, v, dtype, hint: str = "scalar") -> str:
        """A 0-d constant of ``dtype`` (a NumPy dtype)."""
        return self.const(np.asarray(v, dtype=dtype), hint)

    def op(self, op_type: str, inputs: list, hint: str = "", n_out: int = 1, **attrs):
        """Add one node; returns its output name (or a list of names when ``n_out > 1``)."""
        base = hint or op_type.lower()
        outs = [self.unique(base + (f".{i}" if n_out > 1 else "")) for i in range(n_out)]
        ins = ["" if i is None else i for i in inputs]
        node = self._helper.make_node(op_type, ins, outs, name=self.unique(f"{base}.node"), **attrs)
        self.nodes.append(node)
        return outs if n_out > 1 else outs[0]

    def axes_op(self, op_type: str, x: str, axes, hint: str = "", since: int = 13, **attrs):
        """A node whose ``axes`` are an input from opset ``since`` on, an attribute before."""
        if axes is None:
            return self.op(op_type, [x], hint, **attrs)
        axes = [int(a) for a in axes]
        if self.opset >= since:
            return self.op(op_type, [x, self.ints(axes, "axes")], hint, **attrs)
        return self.op(op_type, [x], hint, axes=axes, **attrs)


def onnx_dtype(np_dtype) -> int:
    """The ONNX element type of a NumPy dtype."""
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(np_dtype))
