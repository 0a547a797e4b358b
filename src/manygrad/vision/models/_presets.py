"""The evaluation preprocessing that pretrained classifiers expect (torchvision's
``transforms._presets.ImageClassification``, what ``weights.transforms()`` builds):
resize the shorter side, center-crop, scale to [0, 1] floats, normalize.

Images are PIL images (resized by Pillow, as torchvision does) or ``(..., C, H, W)``
tensors (antialiased ``interpolate``, on their device): ``vision.transforms.functional``.
"""

from __future__ import annotations

import manygrad as mg

from ... import nn
from ..transforms import functional as F

_MODES = ("bilinear", "bicubic")


def _mode_name(interpolation) -> str:
    name = getattr(interpolation, "value", interpolation)
    return str(name).lower()


class ImageClassification(nn.Module):
    """Resize the shorter side to ``resize_size``, center-crop ``crop_size``, scale to
    [0, 1] floats and normalize with ``mean`` / ``std``.

    Args:
        crop_size: side of the square crop (keyword only).
        resize_size: the shorter side after resizing (default 256).
        mean, std: per channel (default ImageNet's).
        interpolation: ``"bilinear"`` (default) or ``"bicubic"``, or torchvision's
            ``InterpolationMode``.
        antialias: smooth when shrinking (default True; tensors are always antialiased).

    Example:
        >>> preprocess = ResNet18_Weights.DEFAULT.transforms()
        >>> batch = preprocess(img).unsqueeze(0)
    """

    def __init__(
        self,
        *,
        crop_size: int,
        resize_size: int = 256,
        mean: tuple[float, ...] = (0.485, 0.456, 0.406),
        std: tuple[float, ...] = (0.229, 0.224, 0.225),
        interpolation="bilinear",
        antialias: bool | None = True,
    ):
        super().__init__()
        mode = _mode_name(interpolation)
        if mode not in _MODES:
            raise ValueError(
                f"ImageClassification: interpolation {interpolation!r} is not supported; "
                "use 'bilinear' or 'bicubic'"
            )
        self.crop_size = [crop_size]
        self.resize_size = [resize_size]
        self.mean = list(mean)
        self.std = list(std)
        self.interpolation = interpolation
        self.antialias = antialias
        self._mode = mode

    def forward(self, img):
        if isinstance(img, mg.Tensor) and img.ndim < 3:
            raise ValueError(
                f"ImageClassification: expected a (..., C, H, W) image tensor, got shape "
                f"{tuple(img.shape)}"
            )
        img = F.resize(img, self.resize_size, F.InterpolationMode(self._mode),
                       antialias=self.antialias)  # fmt: skip
        img = F.center_crop(img, self.crop_size)
        if not isinstance(img, mg.Tensor):
            img = F.pil_to_tensor(img)
        img = F.convert_image_dtype(img, mg.float32 if not img.is_floating_point() else img.dtype)
        return F.normalize(img, self.mean, self.std)

    def __repr__(self) -> str:
        interp = self.interpolation
        if isinstance(interp, str):
            interp = f"InterpolationMode.{interp.upper()}"
        return (
            f"{self.__class__.__name__}(\n    crop_size={self.crop_size}\n"
            f"    resize_size={self.resize_size}\n    mean={self.mean}\n    std={self.std}\n"
            f"    interpolation={interp}\n)"
        )

    def describe(self) -> str:
        return (
            "Accepts ``PIL.Image``, batched ``(B, C, H, W)`` and single ``(C, H, W)`` image "
            "``torch.Tensor`` objects. The images are resized to "
            f"``resize_size={self.resize_size}`` using ``interpolation={self._mode}``, "
            f"followed by a central crop of ``crop_size={self.crop_size}``. Finally the "
            "values are first rescaled to ``[0.0, 1.0]`` and then normalized using "
            f"``mean={self.mean}`` and ``std={self.std}``."
        )
