"""Run directories: recipe, weights, resumable checkpoint, metrics CSV, TensorBoard events.

A run directory holds::

    recipe.json               architecture + kwargs, input shape and preprocessing, classes,
                              manygrad version, data fingerprint, training settings, metrics
    model.safetensors         the weights (``mg.save(model.state_dict())``)
    checkpoint.safetensors    model + optimizer + scheduler + scaler + step + RNG state
    metrics.csv               one row per epoch
    events.out.tfevents.*     the same scalars for TensorBoard
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
import time
from typing import Any

import numpy as np

RECIPE = "recipe.json"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.csv"
METRIC_FIELDS = [
    "epoch",
    "step",
    "lr",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "samples_per_s",
    "wall_s",
]
_META_KEY = "__manygrad_checkpoint__"


def default_run_dir(model_name: str, root: str = "runs") -> str:
    """``runs/<YYYYmmdd-HHMMSS>-<model>``, made unique with a suffix if it exists."""
    base = os.path.join(root, f"{time.strftime('%Y%m%d-%H%M%S')}-{model_name}")
    path, i = base, 1
    while os.path.exists(path):
        i += 1
        path = f"{base}-{i}"
    return path


def fingerprint(*arrays: np.ndarray) -> str:
    """``sha256:<hex>`` over the dtype, shape and bytes of each array."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


def _atomic_write_text(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_recipe(run_dir: str, recipe: dict) -> None:
    """Write ``recipe.json`` atomically."""
    _atomic_write_text(os.path.join(run_dir, RECIPE), json.dumps(recipe, indent=2) + "\n")


def append_metrics(run_dir: str, row: dict) -> None:
    """Append one epoch's row to ``metrics.csv`` (header written with the first row)."""
    path = os.path.join(run_dir, METRICS)
    new = not os.path.exists(path)
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: _fmt(row.get(k)) for k in METRIC_FIELDS})


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def read_metrics(run_dir: str) -> list[dict]:
    """Rows of ``metrics.csv`` as dicts of floats (ints for epoch and step)."""
    path = os.path.join(run_dir, METRICS)
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            row: dict[str, Any] = {}
            for k, v in r.items():
                if v in ("", None):
                    row[k] = None
                elif k in ("epoch", "step"):
                    row[k] = int(v)
                else:
                    row[k] = float(v)
            rows.append(row)
    return rows


def truncate_metrics(run_dir: str, max_step: int) -> None:
    """Drop rows logged after ``max_step`` (a resumed run logs them again)."""
    rows = [r for r in read_metrics(run_dir) if (r.get("step") or 0) <= max_step]
    path = os.path.join(run_dir, METRICS)
    if os.path.exists(path):
        os.unlink(path)
        for r in rows:
            append_metrics(run_dir, r)


# ------------------------------------------------------------------ checkpoint (de)flattening
def flatten_state(state: Any, prefix: str, tensors: dict) -> Any:
    """Move every tensor of a nested state into ``tensors`` under a dotted key.

    Returns the JSON skeleton: tensors become ``{"__tensor__": key}``, dicts keep key types
    as ``{"__dict__": [[key, value], ...]}``.
    """
    from ..tensor import Tensor

    if isinstance(state, Tensor):
        tensors[prefix] = state.detach()
        return {"__tensor__": prefix}
    if isinstance(state, np.ndarray):
        from ..creation import tensor

        tensors[prefix] = tensor(state)
        return {"__tensor__": prefix, "numpy": True}
    if isinstance(state, dict):
        return {
            "__dict__": [[k, flatten_state(v, f"{prefix}.{k}", tensors)] for k, v in state.items()]
        }
    if isinstance(state, (list, tuple)):
        items = [flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(state)]
        return {"__tuple__": items} if isinstance(state, tuple) else items
    if isinstance(state, np.generic):
        return state.item()
    return state


def unflatten_state(skel: Any, tensors: dict, device=None) -> Any:
    """Inverse of :func:`flatten_state`; tensors are moved to ``device`` if given."""
    if isinstance(skel, dict):
        if "__tensor__" in skel:
            t = tensors[skel["__tensor__"]]
            if skel.get("numpy"):
                return t.numpy()
            return t if device is None else t.to(device)
        if "__dict__" in skel:
            return {k: unflatten_state(v, tensors, device) for k, v in skel["__dict__"]}
        if "__tuple__" in skel:
            return tuple(unflatten_state(v, tensors, device) for v in skel["__tuple__"])
        return {k: unflatten_state(v, tensors, device) for k, v in skel.items()}
    if isinstance(skel, list):
        return [unflatten_state(v, tensors, device) for v in skel]
    return skel


def save_checkpoint(path: str, state: dict) -> None:
    """Save a nested training state (tensors + JSON-able values) as one safetensors file."""
    from .. import io
    from ..creation import tensor

    tensors: dict = {}
    skel = flatten_state(state, "s", tensors)
    meta = json.dumps({"format": 1, "state": skel}).encode()
    tensors[_META_KEY] = tensor(np.frombuffer(meta, dtype=np.uint8).copy())
    io.save(tensors, path)


def load_checkpoint(path: str, device=None) -> dict:
    """Load what :func:`save_checkpoint` wrote; clear errors for missing or foreign files."""
    from .. import io
    from ..errors import CheckpointError

    if not os.path.isfile(path):
        raise CheckpointError(f"{path} does not exist: nothing to resume from")
    tensors = io.load(path)
    if _META_KEY not in tensors:
        raise CheckpointError(
            f"{path} is a safetensors file but not a manygrad training checkpoint "
            f"(no {_META_KEY!r} entry); pass a run directory written by `manygrad train`"
        )
    meta = json.loads(bytes(tensors.pop(_META_KEY).numpy().tobytes()).decode())
    return unflatten_state(meta["state"], tensors, device)


def event_writer(run_dir: str):
    """An :class:`~manygrad.train.events.EventWriter` for ``run_dir`` (None if it can't be
    created, e.g. a read-only directory: TensorBoard logging is optional)."""
    from .events import EventWriter

    try:
        return EventWriter(run_dir)
    except OSError:
        return None
