"""torchvision's model registry and weights API: ``Weights``, ``WeightsEnum``,
``get_model``, ``list_models``, ``get_model_builder``, ``get_model_weights``,
``get_weight``.

A builder takes ``weights=`` (a member of its ``WeightsEnum``, its name as a string, or
None for random init). The checkpoint is read from the hub cache,
``$TORCH_HOME/hub/checkpoints/<file name of the url>``, downloaded there on first use.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from types import ModuleType
from typing import Any, get_args

from ... import nn

__all__ = [
    "WeightsEnum",
    "Weights",
    "get_model",
    "get_model_builder",
    "get_model_weights",
    "get_weight",
    "list_models",
]


@dataclass(eq=False)
class Weights:
    """Pretrained weights: where they live (``url``), the preprocessing they expect
    (``transforms()`` builds it) and facts about them (``meta``)."""

    url: str
    transforms: Callable
    meta: dict[str, Any]

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Weights):
            return NotImplemented
        if self.url != other.url or self.meta != other.meta:
            return False
        a, b = self.transforms, other.transforms
        if isinstance(a, functools.partial) and isinstance(b, functools.partial):
            return (a.func, a.args, a.keywords) == (b.func, b.args, b.keywords)
        return a == b


class WeightsEnum(Enum):
    """The base of each model's weights enum (``ResNet18_Weights``, ...); members hold a
    ``Weights`` and expose its ``url``, ``transforms`` and ``meta``."""

    @classmethod
    def verify(cls, obj: Any) -> Any:
        """``obj`` as a member of this enum: a member, its name (``"IMAGENET1K_V1"`` or
        ``"ResNet18_Weights.IMAGENET1K_V1"``), or None."""
        if obj is None:
            return None
        if type(obj) is str:
            name = obj.replace(cls.__name__ + ".", "")
            try:
                return cls[name]
            except KeyError:
                raise ValueError(
                    f"{cls.__name__} has no entry {obj!r}; choose one of "
                    f"{[m.name for m in cls] + ['DEFAULT']}"
                ) from None
        if not isinstance(obj, cls):
            raise TypeError(
                f"Invalid Weight class provided; expected {cls.__name__} but received "
                f"{obj.__class__.__name__}."
            )
        return obj

    def get_state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The checkpoint, from the hub cache (downloaded on first use)."""
        from ... import hub

        return hub.load_state_dict_from_url(self.url, *args, **kwargs)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}.{self._name_}"

    @property
    def url(self) -> str:
        return self.value.url

    @property
    def transforms(self) -> Callable:
        return self.value.transforms

    @property
    def meta(self) -> dict[str, Any]:
        return self.value.meta


BUILTIN_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str | None = None) -> Callable:
    """Register a model builder under ``name`` (default: the function's name)."""

    def wrapper(fn):
        key = name if name is not None else fn.__name__
        if key in BUILTIN_MODELS:
            raise ValueError(f"An entry is already registered under the name '{key}'.")
        BUILTIN_MODELS[key] = fn
        return fn

    return wrapper


def _as_filters(f: Iterable[str] | str) -> list[str]:
    return [f] if isinstance(f, str) else list(f)


def list_models(
    module: ModuleType | None = None,
    include: Iterable[str] | str | None = None,
    exclude: Iterable[str] | str | None = None,
) -> list[str]:
    """The names of the registered models, sorted.

    Args:
        module: keep only the models of this package (default None: all), e.g.
            ``torchvision.models``.
        include: ``fnmatch`` patterns to keep (default None: all).
        exclude: ``fnmatch`` patterns to drop after ``include`` (default None).

    Example:
        >>> list_models(include="resnet*")[:2]
        ['resnet101', 'resnet152']
    """
    _load_all()
    names = {
        k
        for k, v in BUILTIN_MODELS.items()
        if module is None or v.__module__.rsplit(".", 1)[0] == module.__name__
    }
    if include:
        kept: set[str] = set()
        for pat in _as_filters(include):
            kept |= set(fnmatch.filter(names, pat))
        names = kept
    if exclude:
        for pat in _as_filters(exclude):
            names -= set(fnmatch.filter(names, pat))
    return sorted(names)


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder function registered under ``name`` (case-insensitive)."""
    _load_all()
    try:
        return BUILTIN_MODELS[name.lower()]
    except KeyError:
        raise ValueError(
            f"Unknown model {name}; list_models() names the {len(BUILTIN_MODELS)} available"
        ) from None


def get_model(name: str, **config: Any) -> nn.Module:
    """Build the model registered under ``name`` with the builder's keyword arguments.

    Example:
        >>> model = get_model("resnet18", num_classes=10)
    """
    return get_model_builder(name)(**config)


def get_model_weights(name: Callable | str) -> type[WeightsEnum]:
    """The weights enum of a builder (the function or its registered name).

    Example:
        >>> get_model_weights("resnet18").DEFAULT
        ResNet18_Weights.IMAGENET1K_V1
    """
    fn = get_model_builder(name) if isinstance(name, str) else name
    fn = inspect.unwrap(fn)
    sig = inspect.signature(fn)
    if "weights" not in sig.parameters:
        raise ValueError(f"{getattr(fn, '__name__', fn)!r} has no 'weights' argument")
    ann = sig.parameters["weights"].annotation
    if isinstance(ann, str):  # postponed annotations: resolve in the builder's module
        ann = eval(ann, fn.__globals__)  # noqa: S307 (the module's own annotation)
    for t in (ann, *get_args(ann)):
        if isinstance(t, type) and issubclass(t, WeightsEnum):
            return t
    raise ValueError(f"{fn.__name__}: its 'weights' annotation names no WeightsEnum class")


_TASKS = ("detection", "segmentation", "video", "optical_flow", "quantization")


def get_weight(name: str) -> WeightsEnum:
    """A weights entry by its full name, e.g. ``"ResNet50_Weights.IMAGENET1K_V2"``."""
    try:
        enum_name, value_name = name.split(".")
    except ValueError:
        raise ValueError(
            f"Invalid weight name provided: '{name}' (expected '<Enum>.<entry>', e.g. "
            "'ResNet50_Weights.IMAGENET1K_V2')"
        ) from None
    pkg = importlib.import_module(__name__.rsplit(".", 1)[0])
    cls = getattr(pkg, enum_name, None)
    for sub in _TASKS:  # NOTE: the task packages' enums, as torchvision finds them
        if isinstance(cls, type) and issubclass(cls, WeightsEnum):
            break
        try:
            cls = getattr(importlib.import_module(f"{pkg.__name__}.{sub}"), enum_name, None)
        except ImportError:
            continue
    if not (isinstance(cls, type) and issubclass(cls, WeightsEnum)):
        raise ValueError(
            f"The weight enum '{enum_name}' for the specific method couldn't be retrieved."
        )
    return cls[value_name]


def _load_all() -> None:
    importlib.import_module(__name__.rsplit(".", 1)[0])


# ---------------------------------------------------------------- builder helpers


def _ovewrite_named_param(kwargs: dict[str, Any], param: str, new_value: Any) -> None:
    """Set ``kwargs[param]``, refusing a conflicting value the caller passed."""
    if param in kwargs:
        if kwargs[param] != new_value:
            raise ValueError(
                f"The parameter '{param}' expected value {new_value} but got {kwargs[param]} "
                "instead (the pretrained weights fix it; drop the argument or pass weights=None)."
            )
    else:
        kwargs[param] = new_value


def _set_num_classes(kwargs: dict[str, Any], weights: WeightsEnum | None) -> None:
    """Fix ``num_classes`` to the checkpoint's (when it has a classifier)."""
    if weights is not None and weights.meta["num_classes"] is not None:
        _ovewrite_named_param(kwargs, "num_classes", weights.meta["num_classes"])


def _load_weights(model: nn.Module, weights: WeightsEnum, progress: bool) -> None:
    model.load_state_dict(weights.get_state_dict(progress=progress, check_hash=True))


def _build(
    make: Callable[[], nn.Module],
    weights: WeightsEnum | None,
    progress: bool,
    load: Callable[[nn.Module, WeightsEnum, bool], None] = _load_weights,
) -> nn.Module:
    """``make()``, with ``weights`` loaded when given.

    With weights, the model is built on the meta device and its storage allocated after:
    the random init that the checkpoint overwrites would cost seconds (VGG's 130M values
    take manygrad's generator ~30 s). The strict load then fills every parameter and buffer.
    """
    if weights is None:
        return make()
    import manygrad as mg

    device = mg.get_default_device()
    with mg.device("meta"):
        model = make()
    model = model.to_empty(device=device)
    load(model, weights, progress)
    return model


def handle_legacy_interface(default: WeightsEnum | None) -> Callable:
    """Let a builder take torchvision's pre-0.13 arguments: ``pretrained=True`` (or a
    positional bool) means ``default`` (torchvision's legacy weights, the ``IMAGENET1K_V1``
    entry); both warn as torchvision does."""

    def outer(builder):
        @functools.wraps(builder)
        def inner(*args: Any, **kwargs: Any):
            if args:
                names = ["weights", "progress"][: len(args)]
                if len(args) > 2:
                    raise TypeError(f"{builder.__name__}() takes at most 2 positional arguments")
                warnings.warn(
                    f"Using {' and '.join(repr(n) for n in names)} as positional parameter(s) is "
                    "deprecated since 0.13 and may be removed in the future. Please use keyword "
                    "parameter(s) instead.",
                    stacklevel=2,
                )
                for n, a in zip(names, args):
                    if n in kwargs:
                        raise TypeError(f"{builder.__name__}() got multiple values for {n!r}")
                    kwargs[n] = a
                if "weights" in kwargs and isinstance(kwargs["weights"], bool):
                    kwargs["pretrained"] = kwargs.pop("weights")
                    positional = True
                else:
                    positional = False
            else:
                positional = False
            if "pretrained" in kwargs:
                w = kwargs.get("weights")
                if w is not None and not (isinstance(w, str) and w == "legacy"):
                    raise TypeError(f"{builder.__name__}(): pass weights= or pretrained=, not both")
                pretrained = kwargs.pop("pretrained")
                if pretrained and default is None:
                    raise ValueError(f"No weights available for model {builder.__name__}")
                chosen = default if pretrained else None
                if not positional:
                    warnings.warn(
                        "The parameter 'pretrained' is deprecated since 0.13 and may be removed "
                        "in the future, please use 'weights' instead.",
                        stacklevel=2,
                    )
                msg = (
                    "Arguments other than a weight enum or `None` for 'weights' are deprecated "
                    "since 0.13 and may be removed in the future. The current behavior is "
                    f"equivalent to passing `weights={chosen}`."
                )
                if pretrained:
                    msg += (
                        f" You can also use `weights={type(default).__name__}.DEFAULT` to get "
                        "the most up-to-date weights."
                    )
                warnings.warn(msg, stacklevel=2)
                kwargs["weights"] = chosen
            return builder(**kwargs)

        return inner

    return outer


def _make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """Round ``v`` to a multiple of ``divisor``, never more than 10% below ``v``."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _imagenet_weights(
    url: str,
    num_params: int,
    acc1: float,
    acc5: float,
    *,
    min_size: tuple[int, int] = (1, 1),
    crop_size: int = 224,
    resize_size: int = 256,
    interpolation: str = "bilinear",
    recipe: str = "https://github.com/pytorch/vision/tree/main/references/classification",
    num_classes: int | None = 1000,
    **extra: Any,
) -> Weights:
    """A ``Weights`` entry for an ImageNet-1K classifier (1000 classes) with its preset;
    ``meta["categories"]`` names the classes (default: ImageNet's 1000 when ``num_classes``
    is 1000, else None, as for a checkpoint without a classifier)."""
    from ._meta import _IMAGENET_CATEGORIES
    from ._presets import ImageClassification

    kw: dict[str, Any] = {"crop_size": crop_size}
    if resize_size != 256:
        kw["resize_size"] = resize_size
    if interpolation != "bilinear":
        kw["interpolation"] = interpolation
    for k in ("mean", "std"):
        if k in extra:
            kw[k] = extra.pop(k)
    categories = extra.pop("categories", _IMAGENET_CATEGORIES if num_classes == 1000 else None)
    meta = dict(
        categories=categories,
        num_classes=num_classes,
        num_params=num_params,
        min_size=min_size,
        recipe=recipe,
        _metrics={"ImageNet-1K": {"acc@1": acc1, "acc@5": acc5}},
        **extra,
    )
    return Weights(url=url, transforms=functools.partial(ImageClassification, **kw), meta=meta)
