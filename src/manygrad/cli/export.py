"""``manygrad export RUN [--out model.onnx] [--opset 17]``: a trained run as an ONNX file."""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="export a trained run (e.g. to ONNX)",
        description="Rebuild the run's model from its recipe and weights and write it as an "
        "ONNX file whose batch size (and, for text models, sequence length up to the run's "
        "context) is free. "
        "The model is traced: any model whose ops have ONNX rules exports. Inputs must be "
        "preprocessed as in training; the command prints how.",
    )
    p.add_argument("run", metavar="RUN", help="run directory (from manygrad train)")
    p.add_argument("--out", help="ONNX file to write (default RUN/model.onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    return p


def _example(recipe: dict, spec: dict, model):
    """An example batch (of two samples, so that the batch size is told apart from size-1
    dims while tracing) from the run's recipe, and the dynamic axes."""
    import manygrad as mg

    shape = list((recipe.get("input") or {}).get("shape") or [])
    if spec.get("name") == "gpt" or recipe.get("task") == "language-model":
        t = shape[0] if shape else int(spec.get("kwargs", {}).get("block_size", 64))
        # NOTE: an example length that no weight's size equals, so that the tracer tells
        # the sequence length apart from the model's own sizes
        taken = {int(n) for p in model.parameters() for n in p.shape} | {1, 2}
        free = [n for n in range(t, 2, -1) if n not in taken]
        if free:
            axes = {0: "batch", 1: "sequence"}
            return mg.zeros(2, free[0], dtype=mg.int64), {"input": axes, "output": axes}
        return mg.zeros(2, t, dtype=mg.int64), {"input": {0: "batch"}, "output": {0: "batch"}}
    if not shape:
        raise SystemExit("error: the run's recipe.json has no input shape; can't export it")
    mg.manual_seed(0)
    return mg.randn(2, *shape), {"input": {0: "batch"}, "output": {0: "batch"}}


def _dims(value_info) -> str:
    dims = value_info.type.tensor_type.shape.dim
    return "[" + ", ".join(d.dim_param or str(d.dim_value) for d in dims) + "]"


def _elem(value_info) -> str:
    import onnx

    return onnx.helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type).name


def _check_out(path: str) -> None:
    """The ONNX file's path must be a file in a folder that exists and can be written."""
    if os.path.isdir(path):
        raise SystemExit(
            f"error: --out {path} is a folder; give the file to write, e.g. "
            f"{os.path.join(path, 'model.onnx')}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SystemExit(f"error: --out {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise SystemExit(f"error: --out {path}: no permission to write there")


def export_run(run_dir: str, out: str | None = None, opset: int = 17):
    """Write ``run_dir``'s model as ONNX; returns ``(path, onnx.ModelProto)``."""
    import onnx

    from .. import models
    from .. import onnx as ox

    path = out or os.path.join(run_dir, "model.onnx")
    _check_out(path)
    recipe = models.read_recipe(run_dir)
    spec = recipe.get("model") or {}
    model = models.load(run_dir)
    x, axes = _example(recipe, spec, model)
    proto = ox.to_model(model, x, dynamic_axes=axes, opset_version=opset)
    props = {
        "manygrad.recipe": json.dumps(
            {k: recipe.get(k) for k in ("model", "task", "input", "classes")}
        )
    }
    for p in proto.metadata_props:
        props.setdefault(p.key, p.value)
    onnx.helper.set_model_props(proto, props)
    ox.save_model(proto, path)
    return path, proto


def run(args) -> int:
    from ..errors import ManygradError

    try:
        path, proto = export_run(args.run, args.out, args.opset)
    except ManygradError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        from .main import missing_package

        print(missing_package(e), file=sys.stderr)
        return 2
    except (ValueError, OSError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = os.path.getsize(path)
    print(f"wrote {path} (ONNX opset {args.opset}, {size / 1024:.1f} KiB)")
    for kind, vi in (("input ", proto.graph.input[0]), ("output", proto.graph.output[0])):
        print(f"  {kind} {vi.name!r}: {_elem(vi)} {_dims(vi)}")
    from .. import models

    recipe = models.read_recipe(args.run)
    pre = (recipe.get("input") or {}).get("preprocessing")
    if pre:
        mean = ", ".join(f"{v:.6g}" for v in pre["mean"])
        std = ", ".join(f"{v:.6g}" for v in pre["std"])
        print(f"  preprocess inputs as in training: (x - mean) / std per channel, with "
              f"mean=[{mean}], std=[{std}]")  # fmt: skip
    if recipe.get("task") == "language-model":
        vocab = len(recipe.get("classes") or [])
        print(f"  input: token ids (int64) of the run's {vocab} characters (listed in the "
              "file's metadata, manygrad.recipe); output: next-token logits per position")  # fmt: skip
    elif recipe.get("classes"):
        classes = [str(c) for c in recipe["classes"]]
        shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
        print(f"  output: logits over {len(classes)} classes ({shown})")
    return 0
