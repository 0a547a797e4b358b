"""The quantized checkpoints' ``Weights`` entries (torchvision's metadata, with the float
weights each was made from under ``meta["unquantized"]``)."""

from __future__ import annotations

import functools

from .._api import Weights
from .._meta import _IMAGENET_CATEGORIES
from .._presets import ImageClassification

_URL = "https://download.pytorch.org/models/quantized/"
_PTQ_RECIPE = (
    "https://github.com/pytorch/vision/tree/main/references/classification"
    "#post-training-quantized-models"
)
_QAT_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#"
_PTQ_DOCS = (
    "These weights were produced by doing Post Training Quantization (eager mode) on top of "
    "the unquantized weights listed below."
)
_QAT_DOCS = (
    "These weights were produced by doing Quantization Aware Training (eager mode) on top of "
    "the unquantized weights listed below."
)


def _quantized_weights(
    file: str,
    num_params: int,
    unquantized,
    acc1: float,
    acc5: float,
    ops: float,
    size: float,
    *,
    crop_size: int = 224,
    resize_size: int = 256,
    min_size: tuple[int, int] = (1, 1),
    backend: str = "fbgemm",
    recipe: str = _PTQ_RECIPE,
    docs: str = _PTQ_DOCS,
) -> Weights:
    """A ``Weights`` entry of an ImageNet-1K quantized checkpoint (``ImageClassification``
    preset)."""
    kw = {"crop_size": crop_size}
    if resize_size != 256:
        kw["resize_size"] = resize_size
    meta = {
        "num_params": num_params,
        "min_size": min_size,
        "categories": _IMAGENET_CATEGORIES,
        "backend": backend,
        "recipe": recipe,
        "unquantized": unquantized,
        "_metrics": {"ImageNet-1K": {"acc@1": acc1, "acc@5": acc5}},
        "_ops": ops,
        "_file_size": size,
        "_docs": docs,
    }
    return Weights(
        url=_URL + file, transforms=functools.partial(ImageClassification, **kw), meta=meta
    )
