"""torchvision's API on manygrad: image transforms, datasets, models, box and region ops,
image grids and image files.

Under ``manygrad run`` a program's ``import torchvision`` (and every ``torchvision.*``)
resolves here, as its ``import torch`` resolves to manygrad; the package is also usable
directly (``import manygrad.vision as torchvision``). Submodules load on first use:

- ``transforms``: PIL-image and tensor transforms (``Compose``, ``ToTensor``,
  ``Normalize``, ``RandomResizedCrop``, ...) and ``transforms.functional``;
- ``datasets``: the MNIST family, CIFAR-10/100, SVHN, STL10, CelebA, VOC, ImageNet,
  ImageFolder, DatasetFolder, FakeData, read from local files (``root``) in torchvision's
  layouts (or downloaded from its mirrors);
- ``models``: ResNet, VGG, AlexNet, SqueezeNet, MobileNet, DenseNet, ShuffleNet,
  EfficientNet with torchvision's parameter names, so that its checkpoints load;
- ``ops``: ``nms``, box conversions and IoUs, ``roi_align``, ``roi_pool``, focal loss and
  the layers torchvision's models share;
- ``utils``: ``make_grid``, ``save_image``;
- ``io``: ``read_image``, ``decode_image``, ``write_png``, ``write_jpeg``;
- ``tv_tensors``: ``Image``, ``Mask``, ``BoundingBoxes`` for ``transforms.v2``.
"""

from __future__ import annotations

import importlib

__version__ = "0.28.0+manygrad"  # the torchvision API level served

_SUBMODULES = ("transforms", "datasets", "models", "ops", "utils", "io", "tv_tensors")

__all__ = list(_SUBMODULES)


def __getattr__(name: str):
    if name in _SUBMODULES:
        mod = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = mod
        return mod
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_image_backend() -> str:
    """The image backend that datasets load files with: always ``"PIL"``."""
    return "PIL"


def set_image_backend(backend: str) -> None:
    """Accept torchvision's ``"PIL"`` backend (the one manygrad has)."""
    if backend != "PIL":
        raise ValueError(
            f"set_image_backend: manygrad loads images with Pillow only; got {backend!r} "
            "(pass 'PIL')"
        )


def get_video_backend() -> str:
    """torchvision's name for the video decoder: manygrad decodes with PyAV."""
    return "pyav"
