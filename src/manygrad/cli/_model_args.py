"""``manygrad train --model ... --model-args JSON``: arguments of the model to build."""

from __future__ import annotations


def parse(text: str | None) -> dict:
    import json

    if not text:
        return {}
    try:
        v = json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"error: --model-args is not valid JSON ({e}): {text!r}") from None
    if not isinstance(v, dict):
        raise SystemExit(f"error: --model-args must be a JSON object like '{{\"width\": 64}}', "
                         f"got {text!r}")  # fmt: skip
    return v


def user_spec(target: str, model_args: str | None, data) -> dict:
    """The recipe entry of a user model, with data-dependent arguments filled in."""
    import math

    from ..models import user

    kw = parse(model_args)
    spec = user.spec(target, kw)
    names = user.signature_names(spec)
    shape = tuple(data.train.sample_shape)
    known = {"num_classes": len(data.classes or []) or None,
             "in_channels": shape[0] if len(shape) == 3 else None,
             "in_features": int(math.prod(shape)) if shape else None}  # fmt: skip
    for k, v in known.items():
        if k in names and k not in kw and v is not None:
            spec["kwargs"][k] = v
    return spec


def check_resumed(model_args: str | None, spec: dict) -> None:
    given = parse(model_args)
    if model_args is not None and given != {
        k: v for k, v in spec.get("kwargs", {}).items() if k in given
    }:
        raise SystemExit(
            f"error: --model-args {model_args} differs from the run being resumed "
            f"({spec.get('kwargs')}); only --epochs can change on --resume"
        )


def run_name(spec: dict) -> str:
    """A short name for the default run directory: the class of a user model."""
    return (spec.get("import") or {}).get("class") or spec["name"]
