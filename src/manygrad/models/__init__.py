"""``mg.models``: built-in architectures addressable by name, and run directories.

Example:
    >>> model = mg.models.get("cnn", image_size=8)
    >>> mg.models.available()
    ['cnn', 'gpt', 'mlp', 'resnet']
    >>> model = mg.models.load("runs/20260101-120000-mlp")   # rebuilt from its recipe
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from ..errors import CheckpointError

# name -> (module, class); modules import lazily so that `import manygrad` stays light.
_BUILTIN: dict[str, tuple[str, str]] = {
    "mlp": ("manygrad.models.mlp", "MLP"),
    "cnn": ("manygrad.models.cnn", "CNN"),
    "resnet": ("manygrad.models.resnet", "ResNet"),
    "gpt": ("manygrad.models.gpt", "GPT"),
}
_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(**kwargs)`` buildable as ``mg.models.get(name, **kwargs)``.

    Args:
        name: the name recipes use.
        factory: a Module class or a function returning a Module.

    Example:
        >>> mg.models.register("tiny", lambda: mg.nn.Linear(4, 2))
    """
    _REGISTRY[name.lower()] = factory


def available() -> list[str]:
    """Names accepted by :func:`get`, sorted."""
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def _factory(name: str) -> Callable[..., Any]:
    key = name.lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    if key in _BUILTIN:
        mod, cls = _BUILTIN[key]
        return getattr(importlib.import_module(mod), cls)
    raise ValueError(f"unknown model {name!r}; available models: {', '.join(available())}")


def get(name: str, **kwargs: Any):
    """Build the architecture ``name`` with ``kwargs``; remembers both for its recipe.

    Args:
        name: one of :func:`available` (``"mlp"``, ``"cnn"``, ``"resnet"``, ``"gpt"``).
        **kwargs: the architecture's arguments, e.g. ``hidden=(128,)`` for ``mlp``.

    Example:
        >>> model = mg.models.get("mlp", in_features=64, num_classes=10)
    """
    factory = _factory(name)
    try:
        model = factory(**kwargs)
    except TypeError as e:
        raise TypeError(f"models.get({name!r}): bad arguments {kwargs}: {e}") from None
    # NOTE: kept as a plain attribute (not a parameter or buffer) for run recipes.
    object.__setattr__(model, "recipe", {"name": name.lower(), "kwargs": _jsonable(kwargs)})
    return model


def from_spec(spec: dict):
    """The model a recipe's ``"model"`` entry describes: a built-in or registered name with
    its kwargs, or a user class recorded by ``manygrad train --model file.py:Class``."""
    if "import" in spec:
        from . import user

        return user.build(spec)
    return get(spec["name"], **spec.get("kwargs", {}))


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    raise TypeError(f"model argument {v!r} can't be stored in a JSON recipe")


def read_recipe(run_dir: str | os.PathLike) -> dict:
    """The parsed ``recipe.json`` of a run directory, with a clear error if absent or damaged
    (see ``manygrad.io.recipes``)."""
    from ..io.recipes import read_recipe as read

    return read(run_dir)


def load(run_dir: str | os.PathLike, device=None, weights: str = "model.safetensors"):
    """Rebuild a trained model from a run directory's recipe and load its weights.

    Args:
        run_dir: directory holding ``recipe.json`` and ``model.safetensors``.
        device: where to put the model (default: cpu).
        weights: the weights file inside ``run_dir`` (default ``"model.safetensors"``).

    Example:
        >>> model = mg.models.load("runs/20260101-120000-mlp").eval()
    """
    from .. import io

    recipe = read_recipe(run_dir)
    spec = recipe.get("model") or {}
    if "name" not in spec:
        raise CheckpointError(f"{run_dir}/recipe.json names no model architecture")
    path = os.path.join(os.fspath(run_dir), weights)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path} is missing: the run has no saved weights yet")
    if "import" not in spec:  # NOTE: a built-in's sizes are checked before it is built
        from ..io.recipes import check_weights

        check_weights(recipe, path, os.path.join(os.fspath(run_dir), "recipe.json"))
    model = from_spec(spec)
    try:
        model.load_state_dict(io.load(path))
    except (KeyError, ValueError, RuntimeError) as e:
        if "import" not in spec:
            raise
        from . import user

        raise user.load_error(os.fspath(run_dir), spec, e) from e
    if device is not None:
        model.to(device)
    return model.eval()


__all__ = ["available", "from_spec", "get", "load", "read_recipe", "register"]
