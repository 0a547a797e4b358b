"""Pillow for manygrad.vision (as torchvision, its datasets, image files and drawings need
it), or an ImportError that says how to install it."""

try:
    from PIL import Image, ImageColor, ImageDraw, ImageFont, ImageOps, ImageSequence
except ModuleNotFoundError as e:  # pragma: no cover - Pillow is a dev dependency
    raise ImportError(
        "manygrad.vision's datasets, image files and drawings need Pillow, which is not "
        "installed: pip install 'manygrad[images]' (or pip install Pillow)"
    ) from e

__all__ = ["Image", "ImageColor", "ImageDraw", "ImageFont", "ImageOps", "ImageSequence"]
