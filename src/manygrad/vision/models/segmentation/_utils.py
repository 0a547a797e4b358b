"""Pieces the segmentation and detection models share: ``IntermediateLayerGetter`` (a
backbone cut after the layers whose outputs a head needs), the segmentation model base,
and torchvision's builder helpers for two weights arguments (``weights`` and
``weights_backbone``, with their pre-0.13 ``pretrained`` / ``pretrained_backbone``)."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from manygrad import nn
from manygrad.nn import functional as F

from .._api import WeightsEnum


class IntermediateLayerGetter(nn.ModuleDict):
    """The direct children of ``model`` up to the last one named in ``return_layers``,
    run in order; ``forward`` returns the outputs of the named ones under their new names.

    The children must be registered in the order ``model.forward`` calls them, each used
    once (true of torchvision's ResNet, MobileNet and VGG).

    Args:
        model: the backbone.
        return_layers: ``{child name: output name}``, e.g. ``{"layer4": "out"}``.

    Example:
        >>> body = IntermediateLayerGetter(resnet18(), {"layer1": "feat1", "layer3": "feat2"})
        >>> [(k, v.shape) for k, v in body(mg.rand(1, 3, 224, 224)).items()]
        [('feat1', manygrad.Size([1, 64, 56, 56])), ('feat2', manygrad.Size([1, 256, 14, 14]))]
    """

    _version = 2

    def __init__(self, model: nn.Module, return_layers: dict[str, str]) -> None:
        names = [name for name, _ in model.named_children()]
        if not set(return_layers).issubset(names):
            missing = sorted(set(return_layers) - set(names))
            raise ValueError(
                f"return_layers are not present in model: {missing} are not among its "
                f"children {names}"
            )
        wanted = {str(k) for k in return_layers}
        layers = OrderedDict()
        for name, module in model.named_children():
            layers[name] = module
            wanted.discard(name)
            if not wanted:
                break
        super().__init__(layers)
        self.return_layers = return_layers

    def forward(self, x):
        out = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out


class _SimpleSegmentationModel(nn.Module):
    """Backbone -> classifier on its ``"out"`` features (and an auxiliary classifier on
    ``"aux"``), each upsampled bilinearly to the input's size."""

    __constants__ = ["aux_classifier"]

    def __init__(
        self, backbone: nn.Module, classifier: nn.Module, aux_classifier: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier
        self.aux_classifier = aux_classifier

    def forward(self, x):
        size = x.shape[-2:]
        features = self.backbone(x)
        result = OrderedDict()
        out = self.classifier(features["out"])
        result["out"] = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        if self.aux_classifier is not None:
            aux = self.aux_classifier(features["aux"])
            result["aux"] = F.interpolate(aux, size=size, mode="bilinear", align_corners=False)
        return result


def _ovewrite_value_param(param: str, actual: Any, expected: Any) -> Any:
    """``expected``, refusing a conflicting ``actual`` that the caller passed."""
    if actual is not None and actual != expected:
        raise ValueError(
            f"The parameter '{param}' expected value {expected} but got {actual} instead "
            "(the pretrained weights fix it; drop the argument or pass weights=None)."
        )
    return expected


def _quoted(names: list[str]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b', and 'c'`` (torchvision's wording)."""
    if len(names) == 1:
        return f"'{names[0]}'"
    head = ", ".join(f"'{n}'" for n in names[:-1])
    return f"{head}{'' if len(names) == 2 else ','} and '{names[-1]}'"


def _legacy_value(builder, kwargs, param: str, legacy: str, default) -> None:
    """Replace ``kwargs[legacy]`` (a bool, or the bool passed positionally as ``param``)
    by the weights it stands for, warning as torchvision does."""
    value = kwargs.get(param, inspect.Parameter.empty)
    positional = value is not inspect.Parameter.empty
    if positional:
        kwargs[legacy] = kwargs.pop(param)
    flag = kwargs[legacy]
    if flag:
        chosen = default(kwargs) if callable(default) else default
        if not isinstance(chosen, WeightsEnum):
            raise ValueError(f"No weights available for model {builder.__name__}")
    else:
        chosen = None
    if not positional:
        warnings.warn(
            f"The parameter '{legacy}' is deprecated since 0.13 and may be removed in the "
            f"future, please use '{param}' instead.",
            stacklevel=3,
        )
    msg = (
        f"Arguments other than a weight enum or `None` for '{param}' are deprecated since 0.13 "
        "and may be removed in the future. The current behavior is equivalent to passing "
        f"`{param}={chosen}`."
    )
    if flag:
        msg += (
            f" You can also use `{param}={type(chosen).__name__}.DEFAULT` to get the most "
            "up-to-date weights."
        )
    warnings.warn(msg, stacklevel=3)
    del kwargs[legacy]
    kwargs[param] = chosen


def handle_legacy_interface(**weights: tuple[str, Any]) -> Callable:
    """Let a builder take torchvision's pre-0.13 arguments: keyword-only parameters passed
    positionally, and ``pretrained=True`` / ``pretrained_backbone=True`` (or those bools in
    place of ``weights`` / ``weights_backbone``) for the default weights; each warns.

    Args:
        **weights: ``param=(legacy name, default)``; ``default`` is a weights entry or a
            function of the keyword arguments that picks one.

    Example:
        >>> @handle_legacy_interface(weights=("pretrained", FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1))
        ... def fcn_resnet50(*, weights=None, progress=True): ...
    """

    def outer(builder: Callable) -> Callable:
        params = inspect.signature(builder).parameters
        kwonly = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]

        @functools.wraps(builder)
        def inner(*args: Any, **kwargs: Any):
            if args:
                if len(args) > len(kwonly):
                    raise TypeError(
                        f"{builder.__name__}() takes at most {len(kwonly)} positional arguments "
                        f"({len(args)} given)"
                    )
                named = dict(zip(kwonly, args))
                warnings.warn(
                    f"Using {_quoted(list(named))} as positional parameter(s) is deprecated "
                    "since 0.13 and may be removed in the future. Please use keyword "
                    "parameter(s) instead.",
                    stacklevel=2,
                )
                for k in named:
                    if k in kwargs:
                        raise TypeError(f"{builder.__name__}() got multiple values for {k!r}")
                kwargs.update(named)
            for param, (legacy, default) in weights.items():
                value = kwargs.get(param, inspect.Parameter.empty)
                given = param in kwargs or legacy in kwargs
                modern = (
                    isinstance(value, WeightsEnum)
                    or (isinstance(value, str) and value != "legacy")
                    or value is None
                )
                if given and not modern:
                    _legacy_value(builder, kwargs, param, legacy, default)
            return builder(**kwargs)

        return inner

    return outer


def _load_state(model: nn.Module, weights: WeightsEnum, progress: bool) -> None:
    model.load_state_dict(weights.get_state_dict(progress=progress, check_hash=True))
