"""``mg.onnx.export``: trace a model once and write the ops it ran as an ONNX file."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from ..errors import ManygradError
from ..tensor import Tensor
from . import rules, rules_index, rules_loss, rules_nn  # noqa: F401 - registers the rules
from .graph import Graph, onnx_dtype
from .trace import Tracer, run_traced

MIN_OPSET = 17


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "onnx.export needs the onnx package: pip install 'manygrad[onnx]'"
        ) from None
    return onnx


def _flat(v, what: str) -> list:
    if isinstance(v, Tensor):
        return [v]
    if isinstance(v, (tuple, list)) and v and all(isinstance(t, Tensor) for t in v):
        return list(v)
    raise TypeError(f"onnx.export: {what} must be a Tensor or a tuple of Tensors, got "
                    f"{type(v).__name__}")  # fmt: skip


def _names(given, n: int, base: str) -> list[str]:
    if given is None:
        return [base] if n == 1 else [f"{base}_{i}" for i in range(n)]
    given = list(given)
    if len(given) != n or len(set(given)) != n:
        raise ValueError(f"onnx.export: expected {n} distinct {base} names, got {given}")
    return given


def _axes(spec, name: str, ndim: int) -> dict[int, str]:
    if spec is None:
        return {}
    items = spec.items() if isinstance(spec, dict) else ((a, f"{name}_dim{a}") for a in spec)
    out = {}
    for a, label in items:
        if not isinstance(a, int) or not -ndim <= a < ndim:
            raise ValueError(f"onnx.export: dynamic_axes[{name!r}] names axis {a!r}, but "
                             f"{name!r} has {ndim} dims")  # fmt: skip
        out[a % ndim] = str(label)
    return out


def _value_info(onnx, name: str, t, dyn: dict[int, str]):
    shape = [dyn.get(i, int(n)) for i, n in enumerate(t.shape)]
    return onnx.helper.make_tensor_value_info(name, onnx_dtype(t._data.dtype), shape)


def to_model(model, args, input_names=None, output_names=None, dynamic_axes=None,
             opset_version: int = 17):  # fmt: skip
    """The ``onnx.ModelProto`` of ``model`` traced on ``args`` (see :func:`export`)."""
    onnx = _onnx()
    from .. import __version__, no_grad

    top = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset_version <= top:
        raise ValueError(f"onnx.export: opset_version must be between {MIN_OPSET} and {top} "
                         f"(the installed onnx {onnx.__version__}), got {opset_version}")  # fmt: skip
    xs = _flat(args, "args")
    in_names = _names(input_names, len(xs), "input")
    dynamic_axes = dict(dynamic_axes or {})
    in_dyn = [_axes(dynamic_axes.get(n), n, x.ndim) for n, x in zip(in_names, xs)]
    sizes = {x.shape[a] for x, d in zip(xs, in_dyn) for a in d}
    g = Graph(opset_version)
    named = {}  # NOTE: by tensor and by array: some ops get a buffer's raw array
    if hasattr(model, "named_parameters"):
        for n, t in list(model.named_parameters()) + list(model.named_buffers()):
            named.setdefault(id(t), n)
            named.setdefault(id(t._data), n)
    seq = {}  # NOTE: the batch (first) axis is left out: its size may be any small number
    for n, x, d in zip(in_names, xs, in_dyn):
        for a in sorted(d):
            if a > 0 and x.shape[a] > 1:
                seq.setdefault(int(x.shape[a]), (n, a))
    tracer = Tracer(g, named, sizes, seq)
    for n, x in zip(in_names, xs):
        g.unique(n)
        tracer.bind(x, n)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            ys = run_traced(tracer, model, *xs)
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    ys = _flat(ys, "the model's output")
    out_names = _names(output_names, len(ys), "output")
    unknown = sorted(set(dynamic_axes) - set(in_names) - set(out_names))
    if unknown:
        raise ValueError(f"onnx.export: dynamic_axes names {unknown}, but the inputs are "
                         f"{in_names} and the outputs {out_names}")  # fmt: skip
    outputs = []
    for n, y in zip(out_names, ys):
        g.unique(n)
        g.nodes.append(onnx.helper.make_node("Identity", [tracer.name(y)], [n], name=f"{n}.out"))
        if n in dynamic_axes:
            dyn = _axes(dynamic_axes[n], n, y.ndim)
        else:  # NOTE: an output axis as large as a dynamic input axis is taken to follow it
            dyn = {a: v for d, x in zip(in_dyn, xs) for a, v in d.items()
                   if a < y.ndim and y.shape[a] == x.shape[a]}  # fmt: skip
        outputs.append(_value_info(onnx, n, y, dyn))
    inputs = [_value_info(onnx, n, x, d) for n, x, d in zip(in_names, xs, in_dyn)]
    graph = onnx.helper.make_graph(g.nodes, type(model).__name__, inputs, outputs,
                                   initializer=g.initializers)  # fmt: skip
    proto = onnx.helper.make_model_gen_version(
        graph, opset_imports=[onnx.helper.make_opsetid("", opset_version)],
        producer_name="manygrad", producer_version=__version__,
    )  # fmt: skip
    recipe = getattr(model, "recipe", None)
    if recipe:
        import json

        onnx.helper.set_model_props(proto, {"manygrad.model": json.dumps(recipe)})
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ManygradError(f"onnx.export: the traced graph fails onnx's checker: {e}") from e
    return proto


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


def export(model, args, f, input_names=None, output_names=None, dynamic_axes=None,
           opset_version: int = 17, *, export_params: bool = True, verbose: bool = False,
           do_constant_folding: bool = True, training=None,
           keep_initializers_as_inputs: bool = False, dynamo: bool = False):  # fmt: skip
    """Export ``model`` as an ONNX file by running it once on ``args`` and recording its ops.

    Any Module (or function of tensors) works as long as each op it runs has an export rule;
    an op without one raises :class:`UnsupportedOpError` naming it. The model runs in eval
    mode (its mode is restored afterwards). Python control flow is fixed at trace time: the
    graph holds the branch that ran for ``args``; code that reads a traced value on the host
    (``.item()``, ``bool(t)``) gets a :class:`TracerWarning`. Parameters and buffers become
    initializers under their names in the model. The graph is checked with ``onnx.checker``.

    Args:
        model: a Module or a callable taking the tensors in ``args``.
        args: an example input tensor, or a tuple of them; it fixes ranks, dtypes and the
            sizes of the axes that are not dynamic.
        f: a path (written atomically) or a binary file object.
        input_names: graph input names (default ``["input"]``, or ``input_0, ...``).
        output_names: graph output names (default ``["output"]``, or ``output_0, ...``).
        dynamic_axes: axes of variable size, e.g. ``{"input": {0: "batch"}}`` or
            ``{"input": [0]}``; an output axis follows a dynamic input axis of the same index
            and size unless the output is given too (default: all sizes fixed).
        opset_version: ONNX opset, 17 or later (default 17).
        export_params, verbose, do_constant_folding, training, keep_initializers_as_inputs,
            dynamo: ``torch.onnx.export``'s options, accepted so that calls written for it
            run; weights are always stored in the file, and the model is traced in eval
            mode.

    Returns:
        The exported ``onnx.ModelProto``.

    Example:
        >>> mg.onnx.export(model, mg.randn(1, 3, 32, 32), "model.onnx",
        ...                dynamic_axes={"input": {0: "batch"}})
    """
    if not export_params or keep_initializers_as_inputs:
        raise ValueError(
            "onnx.export: the weights are always stored in the file as initializers; "
            "export_params=False and keep_initializers_as_inputs=True are not supported"
        )
    if isinstance(args, np.ndarray):
        args = Tensor(args)
    if isinstance(args, tuple) and len(args) > 1 and isinstance(args[-1], dict) and not args[-1]:
        args = args[:-1]  # NOTE: torch.onnx.export's trailing (empty) keyword-argument dict
    proto = to_model(model, args, input_names, output_names, dynamic_axes, opset_version)
    save_model(proto, f)
    return proto


__all__ = ["export", "save_model", "to_model"]
