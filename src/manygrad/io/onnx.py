"""ONNX export of manygrad models: ``mg.onnx.export(model, example_input, "model.onnx")``.

The exporter walks the module tree: each supported layer has a converter
(:mod:`manygrad.io.onnx_ops`), and the built-in architectures of :mod:`manygrad.models`
(mlp, cnn, resnet, gpt), whose ``forward`` does more than call children in order, have one
each. A custom Module is exported when it is a supported layer or an ``nn.Sequential`` of
them; anything else raises :class:`UnsupportedModuleError` naming what is supported.
Weights become float32 initializers; the model is exported in eval mode.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from typing import Any

import numpy as np

from ..models import cnn as _cnn
from ..models import gpt as _gpt
from ..models import mlp as _mlp
from ..models import resnet as _resnet
from . import onnx_ops as O
from .onnx_ops import Graph, UnsupportedModuleError, Value

MIN_OPSET = 13


# ------------------------------------------------------------------ built-in architectures
def _mlp_model(g: Graph, m, x: Value, p: str) -> Value:
    x = convert(g, m.flatten, x, _join(p, "flatten"))
    return convert(g, m.layers, x, _join(p, "layers"))


def _cnn_model(g: Graph, m, x: Value, p: str) -> Value:
    for conv in ("conv1", "conv2"):
        x = convert(g, getattr(m, conv), x, _join(p, conv))
        x = O.max_pool2d(g, O.relu(g, x, _join(p, f"{conv}.relu")), 2, hint=_join(p, "pool"))
    x = O.flatten(g, x, 1, hint=_join(p, "flatten"))
    x = O.relu(g, convert(g, m.fc1, x, _join(p, "fc1")), _join(p, "fc1.relu"))
    x = convert(g, m.dropout, x, _join(p, "dropout"))
    return convert(g, m.fc2, x, _join(p, "fc2"))


def _basic_block(g: Graph, m, x: Value, p: str) -> Value:
    out = convert(g, m.conv1, x, _join(p, "conv1"))
    out = O.relu(g, convert(g, m.bn1, out, _join(p, "bn1")), _join(p, "relu1"))
    out = convert(g, m.bn2, convert(g, m.conv2, out, _join(p, "conv2")), _join(p, "bn2"))
    identity = x if m.downsample is None else convert(g, m.downsample, x, _join(p, "downsample"))
    return O.relu(g, O.add(g, out, identity, _join(p, "add")), _join(p, "relu2"))


def _resnet_model(g: Graph, m, x: Value, p: str) -> Value:
    x = convert(g, m.conv1, x, _join(p, "conv1"))
    x = O.relu(g, convert(g, m.bn1, x, _join(p, "bn1")), _join(p, "relu"))
    for i in range(m.num_stages):
        x = convert(g, getattr(m, f"layer{i + 1}"), x, _join(p, f"layer{i + 1}"))
    x = convert(g, m.avgpool, x, _join(p, "avgpool"))
    return convert(g, m.fc, O.flatten(g, x, 1, hint=_join(p, "flatten")), _join(p, "fc"))


def _sequence(g: Graph, x: Value) -> tuple[str, str]:
    """Positions ``0..T-1`` and the (T, T) causal mask (True above the diagonal: future keys)
    for the sequence length T of ``x`` (dim 1), built once per graph."""
    if "positions" not in g.cache:
        t = g.op("Gather", [g.op("Shape", [x.name], "seq.shape"), g.ints(1, "one")], "seq_len")
        r = g.op("Range", [g.ints(0, "zero"), t, g.ints(1, "step")], "positions")
        row = g.op("Unsqueeze", [r, g.ints([0])], "positions.row")
        col = g.op("Unsqueeze", [r, g.ints([1])], "positions.col")
        g.cache["positions"] = r
        g.cache["causal_mask"] = g.op("Greater", [row, col], "causal_mask")
    return g.cache["positions"], g.cache["causal_mask"]


def _attention(g: Graph, m, x: Value, p: str) -> Value:
    _, _, c = x.t.shape
    h = m.n_head
    qkv = convert(g, m.c_attn, x, _join(p, "c_attn"))
    q, k, v = g.op("Split", [qkv.name, g.ints([c, c, c])], _join(p, "qkv"), n_out=3, axis=2)
    heads = g.ints([0, 0, h, c // h], _join(p, "heads"))
    q, k, v = (g.op("Reshape", [z, heads], _join(p, n)) for z, n in zip((q, k, v), "qkv"))
    q = g.op("Transpose", [q], _join(p, "q.t"), perm=[0, 2, 1, 3])
    kt = g.op("Transpose", [k], _join(p, "k.t"), perm=[0, 2, 3, 1])
    v = g.op("Transpose", [v], _join(p, "v.t"), perm=[0, 2, 1, 3])
    s = g.op("MatMul", [q, kt], _join(p, "scores"))
    s = g.op("Mul", [s, g.scalar(1 / math.sqrt(c // h))], _join(p, "scaled"))
    neg = g.const(np.asarray(-np.inf, np.float32), "neg_inf")
    s = g.op("Where", [_sequence(g, x)[1], neg, s], _join(p, "masked"))
    a = g.op("Softmax", [s], _join(p, "probs"), axis=-1)
    y = g.op("MatMul", [a, v], _join(p, "context"))
    y = g.op("Transpose", [y], _join(p, "context.t"), perm=[0, 2, 1, 3])
    y = g.op("Reshape", [y, g.ints([0, 0, c], _join(p, "merge"))], _join(p, "merged"))
    # NOTE: c_proj only needs its input's shape, (B, T, C) like x's; its own output is replaced
    # by the attention module's real output below.
    y = convert(g, m.c_proj, Value(y, x.t), _join(p, "c_proj"))
    return Value(y.name, m(x.t))


def _gpt_mlp(g: Graph, m, x: Value, p: str) -> Value:
    for name in ("c_fc", "gelu", "c_proj", "dropout"):
        x = convert(g, getattr(m, name), x, _join(p, name))
    return x


def _gpt_block(g: Graph, m, x: Value, p: str) -> Value:
    a = convert(g, m.attn, convert(g, m.ln_1, x, _join(p, "ln_1")), _join(p, "attn"))
    x = O.add(g, x, a, _join(p, "add1"))
    f = convert(g, m.mlp, convert(g, m.ln_2, x, _join(p, "ln_2")), _join(p, "mlp"))
    return O.add(g, x, f, _join(p, "add2"))


def _gpt_model(g: Graph, m, idx: Value, p: str) -> Value:
    from .. import arange

    tr, pt = m.transformer, _join(p, "transformer")
    tok = convert(g, tr["wte"], idx, _join(pt, "wte"))
    positions, _ = _sequence(g, idx)
    pos = Value(positions, arange(idx.t.shape[1], device=idx.t.device))
    x = O.add(g, tok, convert(g, tr["wpe"], pos, _join(pt, "wpe")), _join(pt, "embed"))
    x = convert(g, tr["drop"], x, _join(pt, "drop"))
    for i, block in enumerate(tr["h"]):
        x = convert(g, block, x, _join(pt, f"h.{i}"))
    x = convert(g, tr["ln_f"], x, _join(pt, "ln_f"))
    return convert(g, m.lm_head, x, _join(p, "lm_head"))


MODELS: dict[type, Any] = {
    _mlp.MLP: _mlp_model,
    _cnn.CNN: _cnn_model,
    _resnet.BasicBlock: _basic_block,
    _resnet.ResNet: _resnet_model,
    _gpt.GPT: _gpt_model,
    _gpt.Block: _gpt_block,
    _gpt.CausalSelfAttention: _attention,
    _gpt.MLP: _gpt_mlp,
}


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _lookup(m):
    """The converter for ``m``: its class's, or a base class's whose forward it keeps."""
    for cls in type(m).__mro__:
        for table in (MODELS, O.LAYERS):
            if cls in table and type(m).forward is cls.forward:
                return table[cls]
    return None


def supported() -> dict[str, list[str]]:
    """The layer types and built-in models the exporter converts, by name."""
    return {
        "layers": sorted({c.__name__ for c in O.LAYERS}),
        "models": ["mlp (MLP)", "cnn (CNN)", "resnet (ResNet)", "gpt (GPT)"],
    }


def convert(g: Graph, m, x: Value, prefix: str = "") -> Value:
    """Add module ``m`` applied to ``x`` to the graph ``g``; returns its output."""
    fn = _lookup(m)
    if fn is None:
        s = supported()
        raise UnsupportedModuleError(
            f"onnx.export: can't convert {type(m).__name__} at {prefix or 'the model'!r}: its "
            "forward() is custom code, which the exporter doesn't trace. Supported layers: "
            f"{', '.join(s['layers'])}; built-in models: {', '.join(s['models'])}. Build the "
            "model from these (e.g. an nn.Sequential of supported layers) or use a built-in "
            "model from mg.models.get(...)"
        )
    return fn(g, m, x, prefix)


# ------------------------------------------------------------------ export
def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "onnx.export needs the onnx package: pip install onnx (or manygrad[onnx])"
        ) from None
    return onnx


def _axes(spec, name: str) -> dict[int, str]:
    if spec is None:
        return {}
    if isinstance(spec, dict):
        return {int(k): str(v) for k, v in spec.items()}
    return {int(k): f"{name}_dynamic_axes_{i + 1}" for i, k in enumerate(spec)}


def _value_info(onnx, name: str, t, dyn: dict[int, str], force_float: bool):
    if t.dtype.is_floating_point or force_float:
        elem = onnx.TensorProto.FLOAT
    else:
        elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype.np))
    nd = len(t.shape)
    dyn = {a % nd: v for a, v in dyn.items()} if nd else {}
    dims = [dyn.get(i, int(n)) for i, n in enumerate(t.shape)]
    return onnx.helper.make_tensor_value_info(name, elem, dims)


def _example(args):
    from ..tensor import Tensor

    if isinstance(args, (tuple, list)):
        if len(args) != 1:
            raise ValueError(
                f"onnx.export: expected one example input, got {len(args)}; the exported "
                "models take a single tensor"
            )
        args = args[0]
    if not isinstance(args, Tensor):
        from .. import tensor

        args = tensor(np.asarray(args))
    return args


def to_model(
    model,
    args,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_axes: dict | None = None,
    opset_version: int = 17,
):
    """The ``onnx.ModelProto`` for ``model`` applied to ``args`` (see :func:`export`)."""
    onnx = _onnx()
    from .. import __version__, no_grad

    top = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset_version <= top:
        raise ValueError(
            f"onnx.export: opset_version must be between {MIN_OPSET} and {top} (the installed "
            f"onnx {onnx.__version__}), got {opset_version}"
        )
    x = _example(args)
    in_name = (input_names or ["input"])[0]
    out_name = (output_names or ["output"])[0]
    dynamic_axes = dynamic_axes or {}
    unknown = sorted(set(dynamic_axes) - {in_name, out_name})
    if unknown:
        raise ValueError(
            f"onnx.export: dynamic_axes names {unknown}, but the graph's input is {in_name!r} "
            f"and its output {out_name!r}"
        )
    half = sorted({str(p.dtype) for p in model.parameters() if p.dtype.name in _HALF})
    if half:
        warnings.warn(
            f"onnx.export: the model's {'/'.join(half)} weights are exported as float32",
            stacklevel=3,
        )
    g = Graph(opset_version)
    g.unique(in_name)
    g.unique(out_name)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            y = convert(g, model, Value(in_name, x), "")
    finally:
        model.train(was_training)
    g.nodes.append(onnx.helper.make_node("Identity", [y.name], [out_name], name="output"))
    in_dyn = _axes(dynamic_axes.get(in_name), in_name)
    if out_name in dynamic_axes:
        out_dyn = _axes(dynamic_axes[out_name], out_name)
    else:  # same axis, same size as a dynamic input axis: assume it follows that axis
        out_dyn = {
            a: v
            for a, v in in_dyn.items()
            if a < min(len(y.t.shape), len(x.shape)) and y.t.shape[a] == x.shape[a]
        }
    graph = onnx.helper.make_graph(
        g.nodes,
        type(model).__name__,
        [_value_info(onnx, in_name, x, in_dyn, False)],
        [_value_info(onnx, out_name, y.t, out_dyn, True)],
        initializer=g.initializers,
    )
    proto = onnx.helper.make_model_gen_version(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", opset_version)],
        producer_name="manygrad",
        producer_version=__version__,
    )
    recipe = getattr(model, "recipe", None)
    if recipe:
        import json

        onnx.helper.set_model_props(proto, {"manygrad.model": json.dumps(recipe)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


_HALF = {"float16", "bfloat16"}


def save_model(proto, f) -> None:
    """Write ``proto`` to a path (atomically) or to a binary file object."""
    data = proto.SerializeToString()
    if not isinstance(f, (str, os.PathLike)):
        f.write(data)
        return
    path = os.fspath(f)
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise FileNotFoundError(f"onnx.export: the directory {d} does not exist")
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".onnx")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export(
    model,
    args,
    f,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_axes: dict | None = None,
    opset_version: int = 17,
):
    """Export ``model`` as an ONNX file that runs it on inputs like ``args``.

    The model is converted layer by layer (see :func:`supported`), in eval mode (its mode is
    restored afterwards), with weights as float32 initializers. The graph is checked with
    ``onnx.checker`` before it is written.

    Args:
        model: a built-in model (``mg.models.get(...)``), a supported layer, or an
            ``nn.Sequential`` of supported layers.
        args: an example input tensor (or a tuple holding one); it fixes the input's rank,
            dtype and the sizes of the axes that are not dynamic.
        f: a path or a binary file object to write to.
        input_names: name of the graph input (default ``["input"]``).
        output_names: name of the graph output (default ``["output"]``).
        dynamic_axes: axes of variable size, e.g. ``{"input": {0: "batch"}}`` or
            ``{"input": [0]}``; output axes follow the same input axis unless given too
            (default: none, all sizes fixed).
        opset_version: ONNX opset (default 17, at least 13; LayerNorm needs 17).

    Returns:
        The exported ``onnx.ModelProto``.

    Example:
        >>> model = mg.models.get("mlp", in_features=64, hidden=[32])
        >>> mg.onnx.export(model, mg.randn(1, 64), "mlp.onnx",
        ...                dynamic_axes={"input": {0: "batch"}})
    """
    proto = to_model(model, args, input_names, output_names, dynamic_axes, opset_version)
    save_model(proto, f)
    return proto


__all__ = ["export", "supported", "UnsupportedModuleError"]
