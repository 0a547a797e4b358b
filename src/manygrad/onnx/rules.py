"""ONNX export rules for elementwise, movement, reduction and matmul ops.

A rule gets the tracer, the op's node (its forward kept the op's parameters as attributes),
the op's arguments as passed to ``Function.apply`` and its output tensor, and returns the
ONNX value name holding that output. Shapes come from the traced tensors, and size-dependent
targets are written so that dims that may vary (the batch) are copied from the input at run
time rather than fixed.
"""

from __future__ import annotations

import math

import numpy as np

from .graph import UnsupportedOpError, onnx_dtype
from .trace import host_array, rule

# ---------------------------------------------------------------------------- elementwise
_BINARY = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Pow": "Pow",
           "Maximum": "Max", "Minimum": "Min", "Eq": "Equal", "Lt": "Less",
           "Le": "LessOrEqual", "Gt": "Greater", "Ge": "GreaterOrEqual",
           "LogicalAnd": "And", "LogicalOr": "Or", "LogicalXor": "Xor"}  # fmt: skip


def _operands(tr, args, op):
    """Both operands of a binary op as value names, scalars in the tensor operand's dtype."""
    like = args[0] if hasattr(args[0], "_data") else args[1]
    return [tr.value(a, like, op) for a in args[:2]]


def _bool(tr, name, t):
    return name if t._data.dtype == np.bool_ else tr.g.op("Cast", [name], to=onnx_dtype(np.bool_))


@rule(*_BINARY)
def _binary(tr, node, args, kwargs, out):
    op = type(node).op_name
    a, b = _operands(tr, args, op)
    if op.startswith("Logical"):
        a, b = (_bool(tr, n, t) if hasattr(t, "_data") else n for n, t in zip((a, b), args))
    return tr.g.op(_BINARY[op], [a, b], op.lower())


_BITWISE = {"BitwiseAnd": "And", "BitwiseOr": "Or", "BitwiseXor": "Xor", "BitwiseNot": "Not"}


@rule(*_BITWISE)
def _bitwise(tr, node, args, kwargs, out):
    """``&``, ``|``, ``^``, ``~``: ONNX's logical ops on bools, its Bitwise* ops (opset 18)
    on integers."""
    op = type(node).op_name
    xs = _operands(tr, args, op) if op != "BitwiseNot" else [tr.name(args[0], op)]
    if out._data.dtype == np.bool_:
        return tr.g.op(_BITWISE[op], xs, op.lower())
    if tr.g.opset < 18:
        raise UnsupportedOpError(
            f"onnx.export: {op} on integer tensors needs ONNX's Bitwise ops; "
            f"pass opset_version=18 or later (got {tr.g.opset})"
        )
    return tr.g.op("Bitwise" + _BITWISE[op], xs, op.lower())


@rule("Ne")
def _ne(tr, node, args, kwargs, out):
    return tr.g.op("Not", [tr.g.op("Equal", _operands(tr, args, "ne"))], "ne")


@rule("FloorDivide", "Remainder")
def _floor_ops(tr, node, args, kwargs, out):
    g = tr.g
    a, b = _operands(tr, args, type(node).op_name)
    dt = out._data.dtype
    if dt.kind in "iu" and type(node).op_name == "Remainder":
        return g.op("Mod", [a, b], "remainder", fmod=0)
    if dt.kind in "iu":  # NOTE: ONNX's integer Div truncates; floor in float64 instead
        f64 = onnx_dtype(np.float64)
        q = g.op("Floor", [g.op("Div", [g.op("Cast", [a], to=f64), g.op("Cast", [b], to=f64)])])
        return g.op("Cast", [q], "floor_divide", to=onnx_dtype(dt))
    q = g.op("Floor", [g.op("Div", [a, b])])
    if type(node).op_name == "FloorDivide":
        return q
    return g.op("Sub", [a, g.op("Mul", [q, b])], "remainder")  # a - floor(a / b) * b


_UNARY = {"Neg": "Neg", "Abs": "Abs", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt",
          "Sin": "Sin", "Cos": "Cos", "Tanh": "Tanh", "Reciprocal": "Reciprocal",
          "Relu": "Relu", "Sigmoid": "Sigmoid", "Sign": "Sign", "LogicalNot": "Not",
          "IsNan": "IsNaN", "IsInf": "IsInf", "Clone": "Identity", "ToDevice": "Identity"}  # fmt: skip


@rule(*_UNARY)
def _unary(tr, node, args, kwargs, out):
    op = type(node).op_name
    x = tr.name(args[0], op)
    if op == "LogicalNot":
        x = _bool(tr, x, args[0])
    return tr.g.op(_UNARY[op], [x], op.lower())


@rule("Log1p", "Expm1", "Rsqrt", "Square", "Silu", "IsFinite")
def _composite(tr, node, args, kwargs, out):
    g, op, x = tr.g, type(node).op_name, tr.name(args[0])
    one = g.scalar(1, out._data.dtype)
    if op == "Log1p":
        return g.op("Log", [g.op("Add", [x, one])], "log1p")
    if op == "Expm1":
        return g.op("Sub", [g.op("Exp", [x]), one], "expm1")
    if op == "Rsqrt":
        return g.op("Reciprocal", [g.op("Sqrt", [x])], "rsqrt")
    if op == "Square":
        return g.op("Mul", [x, x], "square")
    if op == "Silu":
        return g.op("Mul", [x, g.op("Sigmoid", [x])], "silu")
    return g.op("Not", [g.op("Or", [g.op("IsNaN", [x]), g.op("IsInf", [x])])], "isfinite")


@rule("LeakyRelu", "Elu")
def _alpha_act(tr, node, args, kwargs, out):
    op, x, alpha = type(node).op_name, tr.name(args[0]), float(args[1])
    scale, ins = (float(a) for a in (*args[2:4], 1.0, 1.0)[:2])
    if ins != 1.0:  # celu: an ELU of x / alpha (PyTorch's input_scale)
        return tr.g.op("Celu", [x], alpha=alpha)
    if scale != 1.0:  # selu: an ELU scaled by gamma
        return tr.g.op("Selu", [x], alpha=alpha, gamma=scale)
    return tr.g.op(op, [x], alpha=alpha)


@rule("Hardtanh", "Threshold", "Hardshrink", "Softshrink", "Hardsigmoid", "Hardswish")
def _piecewise(tr, node, args, kwargs, out):
    g, op, x, dt = tr.g, type(node).op_name, tr.name(args[0]), out._data.dtype
    if op == "Hardtanh":
        return g.op("Clip", [x, g.scalar(args[1], dt), g.scalar(args[2], dt)], "hardtanh")
    if op == "Threshold":
        low = g.op("LessOrEqual", [x, g.scalar(args[1], dt)])
        return g.op("Where", [low, g.scalar(args[2], dt), x], "threshold")
    if op in ("Hardshrink", "Softshrink"):  # ONNX's Shrink: bias 0 or lambd
        lambd = float(args[1])
        bias = lambd if op == "Softshrink" else 0.0
        return g.op("Shrink", [x], op.lower(), lambd=lambd, bias=bias)
    if op == "Hardsigmoid":
        return g.op("HardSigmoid", [x], "hardsigmoid", alpha=1.0 / 6.0, beta=0.5)
    return g.op("HardSwish", [x], "hardswish")


@rule("Gelu")
def _gelu(tr, node, args, kwargs, out):
    g, x, dt = tr.g, tr.name(args[0]), out._data.dtype
    if g.opset >= 20:
        return g.op("Gelu", [x], "gelu", approximate=args[1])
    if args[1] == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.op("Mul", [x, g.op("Mul", [x, x])])
        poly = g.op("Add", [x, g.op("Mul", [cube, g.scalar(0.044715, dt)])])
        inner = g.op("Tanh", [g.op("Mul", [poly, g.scalar(math.sqrt(2 / math.pi), dt)])])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        inner = g.op("Erf", [g.op("Mul", [x, g.scalar(1 / math.sqrt(2), dt)])])
    half_x = g.op("Mul", [x, g.scalar(0.5, dt)])
    return g.op("Mul", [half_x, g.op("Add", [inner, g.scalar(1, dt)])], "gelu")


@rule("Softplus")
def _softplus(tr, node, args, kwargs, out):
    g, x, (beta, th), dt = tr.g, tr.name(args[0]), args[1:3], out._data.dtype
    bx = g.op("Mul", [x, g.scalar(beta, dt)])
    soft = g.op("Div", [g.op("Softplus", [bx]), g.scalar(beta, dt)])
    return g.op("Where", [g.op("Greater", [bx, g.scalar(th, dt)]), x, soft], "softplus")


@rule("Where")
def _where(tr, node, args, kwargs, out):
    c, a, b = (tr.value(v, out) for v in args)
    return tr.g.op("Where", [_bool(tr, c, args[0]), a, b], "where")


@rule("Clamp")
def _clamp(tr, node, args, kwargs, out):
    x, lo, hi = args
    bounds = [None if v is None else tr.g.scalar(v, out._data.dtype) for v in (lo, hi)]
    return tr.g.op("Clip", [tr.name(x)] + bounds, "clamp")


@rule("Cast")
def _cast(tr, node, args, kwargs, out):
    return tr.g.op("Cast", [tr.name(args[0])], "cast", to=onnx_dtype(out._data.dtype))


# ---------------------------------------------------------------------------- movement
def _groups(src: tuple, dst: tuple):
    """Pair runs of ``dst`` dims with the runs of ``src`` dims they reshape (equal products);
    size-1 dims stand alone. Yields ``(dst_dims, src_dims)`` index lists, or None if the
    shapes don't pair up (zero sizes)."""
    if 0 in src or 0 in dst:
        return None
    out, i, j = [], 0, 0
    while i < len(dst) or j < len(src):
        if i < len(dst) and dst[i] == 1:
            out.append(([i], []))
            i += 1
        elif j < len(src) and src[j] == 1:
            j += 1
        elif i < len(dst) and j < len(src):
            di, sj, a, b = [i], [j], dst[i], src[j]
            while a != b:
                if a < b and di[-1] + 1 < len(dst):
                    di.append(di[-1] + 1)
                    a *= dst[di[-1]]
                elif b < a and sj[-1] + 1 < len(src):
                    sj.append(sj[-1] + 1)
                    b *= src[sj[-1]]
                else:
                    return None
            out.append((di, sj))
            i, j = di[-1] + 1, sj[-1] + 1
        else:
            return None
    return out


@rule("Reshape")
def _reshape(tr, node, args, kwargs, out):
    """Dims that pass through unchanged are copied from the input's shape at run time, and
    the first other dim is inferred (-1), so ``x.view(x.shape[0], -1)`` or an unsqueeze keeps
    free axes free; the remaining sizes are fixed."""
    g, src, dst = tr.g, tuple(args[0].shape), tuple(out.shape)
    x = tr.name(args[0])
    groups = _groups(src, dst)
    if groups is None:
        return g.op("Reshape", [x, g.ints(list(dst), "shape")], "reshape")
    target: list = [None] * len(dst)  # an int, or ("copy", j)
    for di, sj in groups:
        if len(di) == 1 and len(sj) == 1:
            target[di[0]] = ("copy", sj[0])
        else:
            for d in di:
                target[d] = dst[d]
    free = next((d for d, t in enumerate(target) if isinstance(t, int) and t != 1), None)
    if free is not None:
        target[free] = -1
    for d, t in enumerate(target):  # a size that is a dynamic axis' length: read at run time
        if isinstance(t, int) and t > 1 and tr.sym_dim(t) is not None:
            target[d] = ("sym", tr.sym_dim(t))
    if all(t[0] == "copy" and t[1] == d for d, t in enumerate(target) if isinstance(t, tuple)):
        const = [0 if isinstance(t, tuple) else t for t in target]  # 0: the same input dim
        return g.op("Reshape", [x, g.ints(const, "shape")], "reshape")
    shape = g.op("Shape", [x], "reshape.shape")
    parts = [(g.op("Gather", [shape, g.ints([t[1]])], axis=0) if t[0] == "copy" else t[1])
             if isinstance(t, tuple) else g.ints([t]) for t in target]  # fmt: skip
    return g.op("Reshape", [x, g.op("Concat", parts, "reshape.target", axis=0)], "reshape")


@rule("Permute")
def _permute(tr, node, args, kwargs, out):
    return tr.g.op("Transpose", [tr.name(args[0])], "transpose", perm=list(args[1]))


@rule("Expand")
def _expand(tr, node, args, kwargs, out):
    """Dims that keep their size are written as 1: Expand broadcasts, so they stay free."""
    src, dst = tuple(args[0].shape), tuple(out.shape)
    src = (1,) * (len(dst) - len(src)) + src
    target = [1 if s == d else d for s, d in zip(src, dst)]
    return tr.g.op("Expand", [tr.name(args[0]), tr.g.ints(target, "shape")], "expand")


@rule("Cat")
def _cat(tr, node, args, kwargs, out):
    kept = [tr.name(a) for a, s in zip(args, kwargs["skip"]) if not s]
    return tr.g.op("Concat", kept, "cat", axis=int(kwargs["dim"]))


def slice_axes(g, x: str, starts, ends, axes, steps=None, hint="slice"):
    ins = [x, g.ints(starts, "starts"), g.ints(ends, "ends"), g.ints(axes, "axes")]
    if steps is not None:
        ins.append(g.ints(steps, "steps"))
    return g.op("Slice", ins, hint)


def _indices(tr, a, op):
    """An index argument as int64 (ONNX gathers take int32/int64 only)."""
    name = tr.name(a, op)
    dt = host_array(a).dtype if not hasattr(a, "_data") else a._data.dtype
    return name if dt == np.int64 else tr.g.op("Cast", [name], to=onnx_dtype(np.int64))


# ---------------------------------------------------------------------------- reductions
def _keep(keepdim) -> int:
    return int(bool(keepdim))


@rule("Sum")
def _sum(tr, node, args, kwargs, out):
    x, axes, keepdim, dt = args
    name = tr.name(x)
    if out._data.dtype != x._data.dtype:
        name = tr.g.op("Cast", [name], to=onnx_dtype(out._data.dtype))
    return tr.g.axes_op("ReduceSum", name, axes, "sum", keepdims=_keep(keepdim))


@rule("Mean", "Prod", "LogSumExp", "AMax")
def _reduce(tr, node, args, kwargs, out):
    op = type(node).op_name
    kind = {"Mean": "ReduceMean", "Prod": "ReduceProd", "LogSumExp": "ReduceLogSumExp"}.get(op)
    if op == "AMax":
        kind = "ReduceMax" if args[3] else "ReduceMin"
    axes = args[1]
    axes = None if axes is None else ((axes,) if isinstance(axes, int) else axes)
    return tr.g.axes_op(kind, tr.name(args[0]), axes, op.lower(), 18, keepdims=_keep(args[2]))


@rule("MaxDim")
def _max_dim(tr, node, args, kwargs, out):
    x, axis, keepdim, idx = args
    kind = "ReduceMin" if _is_min(x, axis, idx) else "ReduceMax"
    return tr.g.axes_op(kind, tr.name(x), [axis], "max", 18, keepdims=_keep(keepdim))


def _is_min(x, axis, idx) -> bool:
    """MaxDim serves max and min: tell them apart by what the indices picked (where all
    picks are maxima, ReduceMax gives the same values whichever it was)."""
    a, i = host_array(x), host_array(idx)
    picked = np.take_along_axis(a, i, axis)
    return bool(np.any(picked < a.max(axis=axis, keepdims=True)))


@rule("ArgMax", "ArgMin")
def _arg(tr, node, args, kwargs, out):
    x, axis, keepdim = args
    g, name = tr.g, tr.name(x)
    if axis is None:
        name = g.op("Reshape", [name, g.ints([-1])])
        axis = 0
    y = g.op(type(node).op_name, [name], type(node).op_name.lower(), axis=int(axis),
             keepdims=_keep(keepdim))  # fmt: skip
    if args[1] is None and keepdim:
        y = g.op("Reshape", [y, g.ints([1] * x.ndim)])
    return y


@rule("Std")
def _std(tr, node, args, kwargs, out):
    return tr.g.op("Sqrt", [_var(tr, node, args, kwargs, out)], "std")


@rule("Var")
def _var(tr, node, args, kwargs, out):
    g, (x, axes, correction, keepdim) = tr.g, args
    dt = out._data.dtype
    name = tr.name(x)
    ax = list(range(x.ndim)) if axes is None else list(axes)
    mean = g.axes_op("ReduceMean", name, ax, "var.mean", 18, keepdims=1)
    c = g.op("Sub", [name, mean])
    sq = g.axes_op("ReduceSum", g.op("Mul", [c, c]), ax, "var.sq", keepdims=_keep(keepdim))
    n = math.prod(x.shape[a] for a in ax)
    return g.op("Div", [sq, g.scalar(max(n - correction, 0), dt)], "var")


@rule("Cumsum")
def _cumsum(tr, node, args, kwargs, out):
    return tr.g.op("CumSum", [tr.name(args[0]), tr.g.ints(int(args[1]), "axis")], "cumsum")


# ---------------------------------------------------------------------------- linear algebra
@rule("Matmul")
def _matmul(tr, node, args, kwargs, out):
    return tr.g.op("MatMul", [tr.name(a) for a in args], "matmul")


@rule("Linear")
def _linear(tr, node, args, kwargs, out):
    g, (x, w, b) = tr.g, args
    ins = [tr.name(x), tr.name(w)]
    if x.ndim == 2:
        return g.op("Gemm", ins + ([tr.name(b)] if b is not None else []), "linear", transB=1)
    y = g.op("MatMul", [ins[0], g.op("Transpose", [ins[1]], perm=[1, 0])], "linear")
    return g.op("Add", [y, tr.name(b)], "linear.bias") if b is not None else y


__all__: list[str] = []
