"""``torch.export.save`` / ``load``: an exported program in one file, run without the model.

The file is a safetensors file (as ``manygrad.save`` writes): the graphs' tensors
(parameters, buffers, constants) as arrays, and in its metadata the graphs themselves, one
per input size traced so far, as node records whose ops name manygrad's op classes. Loading
rebuilds the graphs and an ``ExportedProgram`` whose ``module()`` checks its inputs as the
original's did; it needs manygrad, not the model's code. A size the file holds no graph for
is refused (there is no model to trace again): export with every size you will need first,
or save the program after running it on them.

The metadata is a pickle read with an allowlist, as ``load(weights_only=True)`` reads one:
manygrad's op classes and their geometry records, NumPy arrays and plain values; anything
else is refused before it is built.
"""

from __future__ import annotations

import base64
import io
import pickle

from . import backend
from .errors import CheckpointError
from .fx.graph import Graph
from .fx.graph_module import GraphModule, _assign_attr
from .fx.node import map_arg
from .nn import Module

FORMAT = "manygrad.export/1"
_FORMAT_KEY = "manygrad.export.format"


class _Ref:
    """A node argument in a record: the node of that name."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __reduce__(self):
        return (_Ref, (self.name,))


def _records(gm: GraphModule) -> tuple[list, dict]:
    """The nodes of ``gm``'s graph as plain records, and the tensors its get_attr nodes read."""
    from .export import _OpCall

    recs, attrs = [], {}
    for n in gm.graph.nodes:
        target = n.target
        if n.op == "call_function":
            if not isinstance(target, _OpCall):
                raise TypeError(f"torch.export.save: node {n.name} calls {target!r}, which is "
                                "not a recorded manygrad op")  # fmt: skip
            target = (target.cls, target.layout, target.hidden_kwargs)
        elif n.op == "get_attr":
            attrs[target] = _fetch(gm, target)
        elif n.op not in ("placeholder", "output"):
            raise TypeError(f"torch.export.save: node {n.name} is a {n.op!r} node; an exported "
                            "program holds placeholder, get_attr, call_function and output "
                            "nodes only")  # fmt: skip
        args = _plain(map_arg(n.args, lambda m: _Ref(m.name)))
        kwargs = _plain(map_arg(n.kwargs, lambda m: _Ref(m.name)))
        recs.append((n.op, n.name, target, args, kwargs, n.meta.get("val")))
    return recs, attrs


def _plain(a):
    """fx's immutable containers as plain lists, tuples and dicts (named tuples kept)."""
    if isinstance(a, list):
        return [_plain(x) for x in a]
    if isinstance(a, tuple) and not hasattr(a, "_fields"):
        return tuple(_plain(x) for x in a)
    if isinstance(a, dict):
        return {k: _plain(v) for k, v in a.items()}
    return a


def _fetch(root, qual: str):
    obj = root
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def _rebuild(recs: list, attrs: dict) -> GraphModule:
    from .export import _OpCall

    graph, nodes = Graph(), {}

    def resolve(a):
        if isinstance(a, _Ref):
            return nodes[a.name]
        if isinstance(a, (list, tuple)) and not hasattr(a, "_fields"):
            return type(a)(resolve(x) for x in a)
        if isinstance(a, dict):
            return {k: resolve(v) for k, v in a.items()}
        return a

    for op, name, target, args, kwargs, val in recs:
        if op == "call_function":
            cls, layout, hidden = target
            target = _OpCall(cls, layout, hidden)
        node = graph.create_node(op, target, resolve(args), resolve(kwargs), name=name)
        if val is not None:
            node.meta["val"] = val
        nodes[name] = node
    root = Module()
    for qual, t in attrs.items():
        _assign_attr(t, root, qual)
    return GraphModule(root, graph)


def save(ep, f, extra_files: dict | None = None) -> None:
    from .io import safetensors as st
    from .io.serialization import PICKLE_KEY, _path_for_write
    from .serialization import dumps

    graphs = []
    for key, gm in ep._cache.items():
        recs, attrs = _records(gm)
        graphs.append({"key": key, "nodes": recs, "attrs": attrs,
                       "first": gm is ep.graph_module})  # fmt: skip
    payload = {
        "format": FORMAT,
        "graphs": graphs,
        "example_inputs": ep.example_inputs,
        "names": ep._names,
        "dynamic": [
            [(d, dim.__name__, dim.min, dim.max) for d, dim in per.items()] for per in ep._dynamic
        ],  # fmt: skip
        "generic": ep._is_generic(),
        "signature": (ep.graph_signature.parameters, ep.graph_signature.buffers),
        "state_dict": dict(ep.state_dict),
        "extra_files": {str(k): str(v) for k, v in (extra_files or {}).items()},
    }
    data, arrays = dumps(payload, pickle.HIGHEST_PROTOCOL)
    with _path_for_write(f) as path:
        st.save_file(arrays, path, {PICKLE_KEY: data, _FORMAT_KEY: FORMAT})


def load(f, extra_files: dict | None = None):
    from .export import Dim, ExportedProgram, _ExportedModule
    from .io import safetensors as st
    from .io.serialization import PICKLE_KEY, _name_of, _path_for_read

    name = _name_of(f)
    with _path_for_read(f) as path:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head == b"PK\x03\x04":
            raise CheckpointError(
                f"torch.export.load: {name} is a zip archive (PyTorch's .pt2 format, graphs "
                "of PyTorch's aten ops), which manygrad does not read; export the model with "
                "manygrad (mg.export.export, then mg.export.save), or to ONNX"
            )
        try:
            arrays, meta = st.read_arrays(path)
        except Exception as e:
            raise CheckpointError(f"torch.export.load: {name} is not an exported-program "
                                  f"file written by manygrad ({e})") from None  # fmt: skip
    if meta.get(_FORMAT_KEY) != FORMAT or PICKLE_KEY not in meta:
        raise CheckpointError(
            f"torch.export.load: {name} holds no exported program (format "
            f"{meta.get(_FORMAT_KEY)!r}, expected {FORMAT!r}); files from mg.save load with "
            "mg.load"
        )
    raw = base64.b64decode(meta[PICKLE_KEY].encode("ascii"))
    dev = backend.device("cpu")
    payload = _Unpickler(io.BytesIO(raw), arrays, dev, name, True).load()
    if extra_files is not None:
        for k in list(extra_files):
            extra_files[k] = payload["extra_files"].get(k, "")
    ep = ExportedProgram.__new__(ExportedProgram)
    ep._model = None
    ep._names = payload["names"]
    ep._dynamic = [{d: Dim(n, min=lo, max=hi) for d, n, lo, hi in per}
                   for per in payload["dynamic"]]  # fmt: skip
    ep.example_inputs = payload["example_inputs"]
    ep._cache = {}
    ep._generic = bool(payload.get("generic", False))
    ep._signature = payload["signature"]
    ep._state_dict = payload["state_dict"]
    for g in payload["graphs"]:
        gm = _rebuild(g["nodes"], g["attrs"])
        ep._cache[g["key"]] = gm
        if g["first"]:
            ep.graph_module = gm
    ep._module = _ExportedModule(ep)
    return ep


def _unpickler_base():
    from .serialization import _Unpickler as base

    return base


class _Unpickler(_unpickler_base()):
    """Rebuilds an archive's records: manygrad's op classes and the plain classes of
    ``manygrad.ops`` (geometry records), NumPy arrays, and what ``weights_only`` allows."""

    _NUMPY = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
              ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
              ("numpy._core.multiarray", "scalar"), ("builtins", "Ellipsis"),
              ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
              ("manygrad.dtypes", "from_any")}  # fmt: skip

    def find_class(self, module: str, name: str):
        from .autograd import Function
        from .serialization import WeightsOnlyError

        if (module, name) in self._NUMPY:
            return pickle.Unpickler.find_class(self, module, name)
        if (module, name) == (__name__, "_Ref"):
            return _Ref
        if (module, name) == ("manygrad.autograd", "_op_by_ref"):
            from .autograd import _op_by_ref  # NOTE: imports and returns manygrad's ops only

            return _op_by_ref
        if module.startswith("manygrad.") and "." not in name:
            obj = pickle.Unpickler.find_class(self, module, name)
            if isinstance(obj, type) and (
                issubclass(obj, Function) or module.startswith("manygrad.ops.")
                or module == "manygrad.dtypes"
            ):  # fmt: skip
                return obj
        try:
            return super().find_class(module, name)
        except WeightsOnlyError:
            raise WeightsOnlyError(
                f"{self.path}: an exported program may hold manygrad's ops and plain values, "
                f"not {module}.{name}; the file was not written by torch.export.save of "
                "manygrad, or it was altered"
            ) from None
