"""``recipe.json`` as untrusted input: read with limits, typed field by field, and checked
against the weights file's tensor shapes before a model is built.

A recipe names an architecture and its sizes; a hostile or damaged one could ask for a
hidden layer of 10**12 units, nest its JSON 100,000 deep, or hold invalid UTF-8. Each
problem becomes one :class:`RecipeError` line naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from ..errors import CheckpointError

MAX_BYTES = 16 << 20  # a recipe is a few KiB; a class list of 100k names is ~2 MiB
MAX_DEPTH = 32
MAX_DIM = 1 << 31


class RecipeError(CheckpointError):
    """A run's ``recipe.json`` is missing, damaged, or disagrees with its weights."""


def printable(s: Any, limit: int = 200) -> str:
    """``s`` as text safe for a terminal: control characters escaped, long text cut."""
    text = str(s)
    out = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:limit])
    return out + ("..." if len(text) > limit else "")


def _depth(obj) -> int:
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        if isinstance(o, dict):
            stack += [(v, d + 1) for v in o.values()]
        elif isinstance(o, list):
            stack += [(v, d + 1) for v in o]
    return deepest


def read_recipe(run_dir: str | os.PathLike) -> dict:
    """The checked ``recipe.json`` of a run directory (see :func:`check_fields`).

    Example:
        >>> recipe = read_recipe("runs/20260101-120000-mlp")
    """
    run_dir = os.fspath(run_dir)
    path = os.path.join(run_dir, "recipe.json")
    if not os.path.isfile(path):
        if os.path.exists(path):
            raise RecipeError(f"{path} is not a regular file; the run is damaged")
        what = "does not exist" if not os.path.exists(run_dir) else "has no recipe.json"
        raise RecipeError(
            f"{run_dir} {what}: expected a run directory written by `manygrad train` or "
            "mg.train.fit(..., out=DIR)"
        )
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise RecipeError(f"{path} is {size:,} bytes, too large for a recipe (damaged?)")
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise RecipeError(f"{path} can't be read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecipeError(
            f"{path} is not UTF-8 text (byte {e.start} is invalid); the run is damaged"
        ) from None
    try:
        recipe = json.loads(text)
    except RecursionError:
        raise RecipeError(f"{path} nests its JSON too deeply; the run is damaged") from None
    except json.JSONDecodeError as e:
        raise RecipeError(f"{path} is not valid JSON ({e}); the run is damaged") from None
    if _depth(recipe) > MAX_DEPTH:
        raise RecipeError(f"{path} nests its JSON more than {MAX_DEPTH} deep; the run is damaged")
    check_fields(recipe, path)
    return recipe


def _fail(path: str, field: str, what: str):
    raise RecipeError(f"{path}: field {field} {what}")


def _type(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(
        type(v), "null" if v is None else "a number"
    )


def check_fields(recipe, path: str = "recipe.json") -> None:
    """Types of the fields that manygrad reads: one error naming the first bad field."""
    if not isinstance(recipe, dict):
        raise RecipeError(f"{path}: expected a JSON object, got {_type(recipe)}")
    for key in ("model", "input", "data", "training", "metrics"):
        if key in recipe and recipe[key] is not None and not isinstance(recipe[key], dict):
            _fail(path, key, f"must be an object, got {_type(recipe[key])}")
    model = recipe.get("model")
    if not isinstance(model, dict):
        _fail(path, "model", "is missing: the recipe names no architecture")
    if not isinstance(model.get("name"), str) or not model["name"]:
        _fail(path, "model.name", f"must be an architecture name, got {_type(model.get('name'))}")
    if not isinstance(model.get("kwargs", {}), dict):
        _fail(path, "model.kwargs", f"must be an object, got {_type(model.get('kwargs'))}")
    builtin = "import" not in model and model["name"].lower() in SHAPES
    for k, v in (model.get("kwargs") or {}).items():
        vals = v if isinstance(v, list) else [v]
        for x in vals:
            if builtin and isinstance(x, (dict, list)):  # NOTE: user models take any JSON
                _fail(path, f"model.kwargs.{printable(k)}", "must be a number, string or list")
            if isinstance(x, int) and not isinstance(x, bool) and not -MAX_DIM < x < MAX_DIM:
                _fail(path, f"model.kwargs.{printable(k)}", f"holds {x}, far beyond any size")
    shape = (recipe.get("input") or {}).get("shape")
    if shape is not None:
        ok = isinstance(shape, list) and all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d < MAX_DIM for d in shape
        )
        if not ok:
            _fail(path, "input.shape", f"must be a list of positive sizes, got {printable(shape)}")
    rng = (recipe.get("input") or {}).get("range")
    if rng is not None and not (
        isinstance(rng, list) and len(rng) == 2 and all(_num(v) for v in rng)
    ):
        _fail(path, "input.range", f"must be [low, high], got {printable(rng)}")
    tr = recipe.get("training") or {}
    for key, ok, what in _TRAINING:
        if key in tr and tr[key] is not None and not ok(tr[key]):
            _fail(path, f"training.{key}", f"must be {what}, got {printable(tr[key])}")
    classes = recipe.get("classes")
    if classes is not None and (
        not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
    ):
        _fail(path, "classes", "must be a list of class names (strings)")
    pre = (recipe.get("input") or {}).get("preprocessing")
    if pre is not None:
        ok = isinstance(pre, dict) and all(
            isinstance(pre.get(k), list)
            and pre[k]
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pre[k])
            for k in ("mean", "std")
        )
        if not ok:
            _fail(path, "input.preprocessing", "must hold lists of numbers mean and std")


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v < MAX_DIM


# what ``manygrad train --resume`` reads back from ``training``
_TRAINING = [
    ("epochs", _count, "a whole number of at least 1"),
    ("batch_size", _count, "a whole number of at least 1"),
    ("lr", lambda v: _num(v) and v > 0, "a positive number"),
    ("weight_decay", lambda v: _num(v) and v >= 0, "a number of at least 0"),
    ("label_smoothing", lambda v: _num(v) and 0 <= v <= 1, "a number in [0, 1]"),
    ("seed", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a seed"),
    ("optimizer", lambda v: isinstance(v, str), "an optimizer's name"),
    ("scheduler", lambda v: isinstance(v, str), "a schedule's name"),
    ("precision", lambda v: v in ("fp32", "fp16", "bf16"), "fp32, fp16 or bf16"),
    ("stream", lambda v: isinstance(v, bool), "true or false"),
]


# ------------------------------------------------------------------ sizes vs weights


def _linear(prefix: str, i: int, o: int, bias: bool = True) -> dict:
    d = {f"{prefix}.weight": (o, i)}
    if bias:
        d[f"{prefix}.bias"] = (o,)
    return d


def _bn(prefix: str, c: int) -> dict:
    d = {f"{prefix}.{k}": (c,) for k in ("weight", "bias", "running_mean", "running_var")}
    d[f"{prefix}.num_batches_tracked"] = ()
    return d


def _mlp(in_features=64, hidden=(256, 128), num_classes=10, dropout=0.0):
    shapes, width, k = {}, in_features, 0
    for h in hidden:
        shapes.update(_linear(f"layers.{k}", width, h))
        width, k = h, k + (3 if dropout else 2)
    shapes.update(_linear(f"layers.{k}", width, num_classes))
    return shapes


def _cnn(in_channels=1, num_classes=10, image_size=28, channels=(32, 64), hidden=128, dropout=0.0):
    c1, c2 = channels
    side = image_size // 4
    return {
        "conv1.weight": (c1, in_channels, 3, 3), "conv1.bias": (c1,),
        "conv2.weight": (c2, c1, 3, 3), "conv2.bias": (c2,),
        **_linear("fc1", c2 * side * side, hidden), **_linear("fc2", hidden, num_classes),
    }  # fmt: skip


def _resnet(num_blocks=(1, 1, 1), widths=(16, 32, 64), in_channels=3, num_classes=10):
    shapes = {"conv1.weight": (widths[0], in_channels, 3, 3), **_bn("bn1", widths[0])}
    planes = widths[0]
    for i, (n, w) in enumerate(zip(num_blocks, widths)):
        for j in range(n):
            p = f"layer{i + 1}.{j}"
            shapes.update({f"{p}.conv1.weight": (w, planes, 3, 3), **_bn(f"{p}.bn1", w)})
            shapes.update({f"{p}.conv2.weight": (w, w, 3, 3), **_bn(f"{p}.bn2", w)})
            if (i > 0 and j == 0) or planes != w:
                shapes[f"{p}.downsample.0.weight"] = (w, planes, 1, 1)
                shapes.update(_bn(f"{p}.downsample.1", w))
            planes = w
    shapes.update(_linear("fc", planes, num_classes))
    return shapes


def _gpt(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=128, dropout=0.0, bias=True):
    e = n_embd
    shapes = {"transformer.wte.weight": (vocab_size, e), "transformer.wpe.weight": (block_size, e)}
    for i in range(n_layer):
        p = f"transformer.h.{i}"
        for ln in ("ln_1", "ln_2"):
            shapes.update({f"{p}.{ln}.weight": (e,), f"{p}.{ln}.bias": (e,)})
        shapes.update(_linear(f"{p}.attn.c_attn", e, 3 * e, bias))
        shapes.update(_linear(f"{p}.attn.c_proj", e, e, bias))
        shapes.update(_linear(f"{p}.mlp.c_fc", e, 4 * e, bias))
        shapes.update(_linear(f"{p}.mlp.c_proj", 4 * e, e, bias))
    shapes.update({"transformer.ln_f.weight": (e,), "transformer.ln_f.bias": (e,)})
    shapes["lm_head.weight"] = (vocab_size, e)
    return shapes


SHAPES = {"mlp": _mlp, "cnn": _cnn, "resnet": _resnet, "gpt": _gpt}
_OUTPUTS = {
    "mlp": "num_classes",
    "cnn": "num_classes",
    "resnet": "num_classes",
    "gpt": "vocab_size",
}


def _length(v) -> int:
    return len(v) if isinstance(v, list) else -1


def _total(v) -> int:
    ok = isinstance(v, list) and all(type(x) is int for x in v)
    return sum(v) if ok else -1


# kwargs that repeat layers: bounded by the weights file's tensor count before the shapes
# are worked out (n_layer = 10**9 would otherwise loop for minutes)
_COUNTS = {
    "mlp": {"hidden": _length},
    "resnet": {"num_blocks": _total},
    "gpt": {"n_layer": lambda v: v if type(v) is int else -1},
}


def _channels(name: str, kw: dict) -> int:
    return kw.get("in_channels", 1 if name == "cnn" else 3)


def expected_shapes(name: str, kwargs: dict) -> dict[str, tuple] | None:
    """The state-dict shapes that built-in architecture ``name`` has with ``kwargs``, worked
    out without building it (None for an architecture registered by the user)."""
    f = SHAPES.get(name.lower())
    return None if f is None else f(**kwargs)


def _culprit(kwargs: dict, dims: tuple) -> str:
    for k, v in kwargs.items():
        vals = v if isinstance(v, list) else [v]
        if any(isinstance(x, int) and x in dims for x in vals):
            return f"model.kwargs.{k}"
    return "model.kwargs"


def check_weights(recipe: dict, weights: str, path: str = "recipe.json") -> None:
    """The recipe's sizes (architecture kwargs, input shape, classes) must be the weights
    file's tensor shapes; only headers are read, nothing is allocated."""
    from .. import models
    from . import safetensors as st

    spec = recipe["model"]
    name, kwargs = spec["name"], dict(spec.get("kwargs") or {})
    if name.lower() not in models.available():
        raise RecipeError(f"{path}: field model.name {printable(name)!r} is not an architecture "
                          f"manygrad knows (available: {', '.join(models.available())})")  # fmt: skip
    have = {k: v[1] for k, v in st.read_header(weights)[0].items()}
    for field, count in _COUNTS.get(name.lower(), {}).items():
        n = count(kwargs.get(field, 1))
        if not isinstance(n, int) or n > len(have):
            raise RecipeError(f"{path}: field model.kwargs.{field} asks for more layers than "
                              f"{weights} holds tensors ({len(have)})")  # fmt: skip
    try:
        want = expected_shapes(name, kwargs)
    except (TypeError, ValueError, IndexError, ZeroDivisionError) as e:
        raise RecipeError(
            f"{path}: field model.kwargs does not fit {printable(name)}: {e}"
        ) from None
    if want is None:
        return
    bad = [(k, s) for k, s in want.items() for d in s if type(d) is not int or not 0 <= d < MAX_DIM]
    if bad:
        raise RecipeError(f"{path}: field {_culprit(kwargs, bad[0][1])} gives tensor "
                          f"{bad[0][0]} the impossible shape {bad[0][1]}")  # fmt: skip
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    if missing or extra:
        raise RecipeError(
            f"{path}: field model.kwargs ({printable(json.dumps(kwargs))}) builds a model whose "
            f"tensors differ from {weights}: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for k, s in want.items():
        if tuple(have[k]) != tuple(s):
            diff = tuple(d for d, h in zip(s, have[k]) if d != h) or tuple(s)
            raise RecipeError(
                f"{path}: field {_culprit(kwargs, diff)} disagrees with {weights}: tensor {k} "
                f"has shape {tuple(have[k])} there, but the recipe builds {tuple(s)}"
            )
    out_dim = kwargs.get(_OUTPUTS[name.lower()])
    classes = recipe.get("classes")
    if classes is not None and out_dim is not None and name.lower() != "gpt":
        if len(classes) != out_dim:
            raise RecipeError(f"{path}: field classes lists {len(classes)} names but the model "
                              f"has {out_dim} outputs")  # fmt: skip
    elif classes is not None and out_dim is not None and len(classes) != out_dim:
        raise RecipeError(f"{path}: field classes lists {len(classes)} characters but the "
                          f"model has a vocabulary of {out_dim}")  # fmt: skip
    shape = (recipe.get("input") or {}).get("shape")
    if shape:
        _check_input(name.lower(), kwargs, tuple(shape), path)


def _check_input(name: str, kw: dict, shape: tuple, path: str) -> None:
    if name == "mlp" and math.prod(shape) != kw.get("in_features", 64):
        why = f"has {math.prod(shape)} values but model.kwargs.in_features is {kw.get('in_features', 64)}"
    elif name in ("cnn", "resnet") and (len(shape) != 3 or shape[0] != _channels(name, kw)):
        why = f"is not (C, H, W) with C = model.kwargs.in_channels ({_channels(name, kw)})"
    elif name == "cnn" and shape[1] != kw.get("image_size", 28):
        why = f"is not of model.kwargs.image_size ({kw.get('image_size', 28)})"
    elif name == "gpt" and (len(shape) != 1 or shape[0] > kw.get("block_size", 64)):
        why = f"is not (T,) with T <= model.kwargs.block_size ({kw.get('block_size', 64)})"
    else:
        return
    raise RecipeError(f"{path}: field input.shape {list(shape)} {why}")
