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
import time
from io import StringIO
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
    from ..io.safetensors import atomic_write  # temp file + fsync + rename, mode kept

    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_recipe(run_dir: str, recipe: dict) -> None:
    """Write ``recipe.json`` atomically, as strict JSON (a NaN or Inf becomes null)."""
    from .guard import finite_or_none

    text = json.dumps(finite_or_none(recipe), indent=2, allow_nan=False)
    _atomic_write_text(os.path.join(run_dir, RECIPE), text + "\n")


def _write_metrics(run_dir: str, rows: list[dict]) -> None:
    """Rewrite ``metrics.csv`` with ``rows`` atomically (an interruption keeps the old file)."""
    buf = StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: _fmt(row.get(k)) for k in METRIC_FIELDS})
    _atomic_write_text(os.path.join(run_dir, METRICS), buf.getvalue())


def append_metrics(run_dir: str, row: dict) -> None:
    """Add one epoch's row to ``metrics.csv``; the file is rewritten atomically."""
    _write_metrics(run_dir, [*read_metrics(run_dir), row])


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def read_metrics(run_dir: str) -> list[dict]:
    """Rows of ``metrics.csv`` as dicts of floats (ints for epoch and step); cells that are
    not numbers (a damaged file) read as None."""
    path = os.path.join(run_dir, METRICS)
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for r in csv.DictReader(f):
            row: dict[str, Any] = {}
            for k, v in r.items():
                if k not in METRIC_FIELDS:
                    continue
                try:
                    row[k] = (
                        None if v in ("", None) else (int if k in ("epoch", "step") else float)(v)
                    )
                except (TypeError, ValueError):
                    row[k] = None
            rows.append(row)
    return rows


def truncate_metrics(run_dir: str, max_step: int) -> None:
    """Drop rows logged after ``max_step`` (a resumed run logs them again); atomic."""
    if not os.path.exists(os.path.join(run_dir, METRICS)):
        return
    rows = [r for r in read_metrics(run_dir) if (r.get("step") or 0) <= max_step]
    _write_metrics(run_dir, rows)


def build_recipe(t) -> dict:
    """``recipe.json`` for a :class:`~manygrad.train.Trainer` in its current state."""
    from .. import __version__

    spec = getattr(t.model, "recipe", None) or {
        "name": type(t.model).__name__.lower(),
        "kwargs": {},
    }
    rec = {
        "format": "manygrad-recipe/1",
        "manygrad_version": __version__,
        "model": spec,
        "task": ("language-model" if t.data_extra.get("kind") == "text" else "classification")
        if t.classification
        else "regression",
        "input": {
            "shape": list(t.train.sample_shape),
            "dtype": str(np.dtype(t.train.dtype)),
            "range": list(t.input_range) if t.input_range else None,
            "preprocessing": {"mean": t.train.mean, "std": t.train.std} if t.train.mean else None,
        },
        "classes": t.classes,
        "data": {
            "name": t.data_name,
            "fingerprint": t.fingerprint,
            "train_samples": t.train.n,
            "test_samples": t.test.n if t.test else 0,
            **t.data_extra,
        },
        "training": {
            "epochs": t.epochs,
            "batch_size": t.batch_size,
            "lr": t.lr,
            "optimizer": t.optimizer_name,
            "scheduler": t.scheduler_name,
            "weight_decay": t.weight_decay,
            "precision": t.precision,
            "augment": t.augment,
            "label_smoothing": t.label_smoothing,
            "seed": t.seed,
            "stream": not hasattr(t.train, "x"),
            "device": str(t.device),
            "world_size": getattr(t, "world_size", 1),
            "steps": t.step,
        },
        "metrics": t.history[-1] if t.history else {},
    }
    rec.update(t.extra_recipe)
    return rec


# ------------------------------------------------------------------ checkpoints
_FORMAT = "manygrad-checkpoint/1"


def save_checkpoint(path: str, state: dict) -> None:
    """Save a nested training state (tensors + JSON-able values) as one safetensors file.

    Args:
        path: the file to write (atomically).
        state: e.g. ``{"model": ..., "optimizer": ..., "step": 120, "rng": {...}}``.

    Example:
        >>> save_checkpoint("run/checkpoint.safetensors", trainer.state())
    """
    from .. import io

    io.save({"format": _FORMAT, "state": state}, path)


def load_checkpoint(path: str, device=None) -> dict:
    """Load what :func:`save_checkpoint` wrote; clear errors for missing or foreign files.

    Args:
        path: a ``checkpoint.safetensors``.
        device: where to put the tensors (default cpu).

    Example:
        >>> state = load_checkpoint("run/checkpoint.safetensors")
    """
    from .. import io
    from ..errors import CheckpointError

    if not os.path.isfile(path):
        raise CheckpointError(f"{path} does not exist: nothing to resume from")
    obj = io.load(path, map_location=device)
    if not isinstance(obj, dict) or obj.get("format") != _FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not a manygrad training checkpoint; "
            "pass a run directory written by `manygrad train`"
        )
    return obj["state"]


def event_writer(run_dir: str):
    """An :class:`~manygrad.train.events.EventWriter` for ``run_dir`` (None if it can't be
    created, e.g. a read-only directory: TensorBoard logging is optional)."""
    from .events import EventWriter

    try:
        return EventWriter(run_dir)
    except OSError:
        return None
