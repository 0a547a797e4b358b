"""The evaluation preprocessing that pretrained models expect (torchvision's
``transforms._presets``, what ``weights.transforms()`` builds): ``ImageClassification``
resizes the shorter side, center-crops, scales to [0, 1] floats and normalizes;
``SemanticSegmentation`` resizes and normalizes without a crop; ``ObjectDetection`` only
scales to [0, 1] floats (detection models normalize and resize inside).

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


class SemanticSegmentation(nn.Module):
    """Resize the shorter side to ``resize_size`` (no crop: the masks cover the whole
    image), scale to [0, 1] floats and normalize with ``mean`` / ``std``.

    Args:
        resize_size: the shorter side after resizing, or None to keep the size (keyword
            only).
        mean, std: per channel (default ImageNet's).
        interpolation: ``"bilinear"`` (default) or ``"bicubic"``, or torchvision's
            ``InterpolationMode``.
        antialias: smooth when shrinking (default True).

    Example:
        >>> preprocess = FCN_ResNet50_Weights.DEFAULT.transforms()
        >>> batch = preprocess(img).unsqueeze(0)
    """

    def __init__(
        self,
        *,
        resize_size: int | None,
        mean: tuple[float, ...] = (0.485, 0.456, 0.406),
        std: tuple[float, ...] = (0.229, 0.224, 0.225),
        interpolation=F.InterpolationMode.BILINEAR,
        antialias: bool | None = True,
    ):
        super().__init__()
        mode = _mode_name(interpolation)
        if mode not in _MODES:
            raise ValueError(
                f"SemanticSegmentation: interpolation {interpolation!r} is not supported; "
                "use 'bilinear' or 'bicubic'"
            )
        self.resize_size = [resize_size] if resize_size is not None else None
        self.mean = list(mean)
        self.std = list(std)
        self.interpolation = interpolation
        self.antialias = antialias
        self._mode = mode

    def forward(self, img):
        if isinstance(img, mg.Tensor) and img.ndim < 3:
            raise ValueError(
                f"SemanticSegmentation: expected a (..., C, H, W) image tensor, got shape "
                f"{tuple(img.shape)}"
            )
        if self.resize_size is not None:
            img = F.resize(img, self.resize_size, F.InterpolationMode(self._mode),
                           antialias=self.antialias)  # fmt: skip
        if not isinstance(img, mg.Tensor):
            img = F.pil_to_tensor(img)
        img = F.convert_image_dtype(img, mg.float32)
        return F.normalize(img, self.mean, self.std)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(\n    resize_size={self.resize_size}\n"
            f"    mean={self.mean}\n    std={self.std}\n"
            f"    interpolation={F.InterpolationMode(self._mode)}\n)"
        )

    def describe(self) -> str:
        return (
            "Accepts ``PIL.Image``, batched ``(B, C, H, W)`` and single ``(C, H, W)`` image "
            "``torch.Tensor`` objects. The images are resized to "
            f"``resize_size={self.resize_size}`` using "
            f"``interpolation={F.InterpolationMode(self._mode)}``. Finally the values are "
            "first rescaled to ``[0.0, 1.0]`` and then normalized using "
            f"``mean={self.mean}`` and ``std={self.std}``."
        )


class ObjectDetection(nn.Module):
    """Scale an image to [0, 1] floats; detection models resize and normalize inside
    (``GeneralizedRCNNTransform``), so this is all their weights ask for.

    Example:
        >>> preprocess = FasterRCNN_ResNet50_FPN_Weights.DEFAULT.transforms()
        >>> predictions = model([preprocess(img)])
    """

    def forward(self, img):
        if not isinstance(img, mg.Tensor):
            img = F.pil_to_tensor(img)
        return F.convert_image_dtype(img, mg.float32)

    def __repr__(self) -> str:
        return self.__class__.__name__ + "()"

    def describe(self) -> str:
        return (
            "Accepts ``PIL.Image``, batched ``(B, C, H, W)`` and single ``(C, H, W)`` image "
            "``torch.Tensor`` objects. The images are rescaled to ``[0.0, 1.0]``."
        )
