"""The evaluation preprocessing that pretrained classifiers expect (torchvision's
``transforms._presets.ImageClassification``, what ``weights.transforms()`` builds):
resize the shorter side, center-crop, scale to [0, 1] floats, normalize.

Images are PIL images or ``(..., C, H, W)`` tensors. PIL images are resized by Pillow
(as torchvision does); tensors by an antialiased separable filter, the one PyTorch's
``interpolate(..., antialias=True)`` uses (Pillow's), computed in NumPy.
"""

from __future__ import annotations

import numpy as np

import manygrad as mg

from ... import nn

_FILTERS = {
    # support radius, kernel; bicubic with a = -0.5 as Pillow's and PyTorch's antialias paths
    "bilinear": (1.0, lambda x: np.clip(1.0 - np.abs(x), 0.0, None)),
    "bicubic": (
        2.0,
        lambda x: np.where(
            np.abs(x) < 1.0,
            ((1.5 * np.abs(x) - 2.5) * np.abs(x)) * np.abs(x) + 1.0,
            np.where(
                np.abs(x) < 2.0,
                ((-0.5 * np.abs(x) + 2.5) * np.abs(x) - 4.0) * np.abs(x) + 2.0,
                0.0,
            ),
        ),
    ),
}


def _mode_name(interpolation) -> str:
    name = getattr(interpolation, "value", interpolation)
    return str(name).lower()


def _resample_matrix(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """``(n_out, n_in)`` weights of an antialiased 1-D resize (align_corners=False)."""
    support, kernel = _FILTERS[mode]
    scale = n_in / n_out
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    radius = support * scale if scale >= 1.0 else support
    m = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - radius + 0.5), 0)
        hi = min(int(center + radius + 0.5), n_in)
        w = kernel((np.arange(lo, hi) - center + 0.5) * inv)
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0 else w
    return m


def _resized_size(h: int, w: int, size: int) -> tuple[int, int]:
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_long, new_short) if w <= h else (new_short, new_long)


def _resize_array(a: np.ndarray, size: int, mode: str) -> np.ndarray:
    h, w = a.shape[-2:]
    oh, ow = _resized_size(h, w, size)
    if (oh, ow) == (h, w):
        return a
    mh = _resample_matrix(h, oh, mode)
    mw = _resample_matrix(w, ow, mode)
    out = mh @ a.astype(np.float64) @ mw.T  # separable: rows, then columns
    if a.dtype == np.uint8:
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out.astype(a.dtype)


def _center_crop_array(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[-2:]
    if size > h or size > w:  # pad with zeros to the crop size first, as torchvision
        ph, pw = max(size - h, 0), max(size - w, 0)
        pad = [(0, 0)] * (a.ndim - 2) + [(ph // 2, (ph + 1) // 2), (pw // 2, (pw + 1) // 2)]
        a = np.pad(a, pad)
        h, w = a.shape[-2:]
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return a[..., top : top + size, left : left + size]


def _pil_resize_crop(img, size: int, crop: int, mode: str) -> np.ndarray:
    from PIL import Image

    w, h = img.size
    oh, ow = _resized_size(h, w, size)
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[mode]
    if (oh, ow) != (h, w):
        img = img.resize((ow, oh), resample)
    a = np.asarray(img)
    a = a[:, :, None] if a.ndim == 2 else a
    return _center_crop_array(np.ascontiguousarray(a.transpose(2, 0, 1)), crop)


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
        if mode not in _FILTERS:
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
        if isinstance(img, mg.Tensor):
            if img.ndim < 3:
                raise ValueError(
                    f"ImageClassification: expected a (..., C, H, W) image tensor, got shape "
                    f"{tuple(img.shape)}"
                )
            device = img.device
            a = img.detach().cpu().numpy()
            a = _resize_array(a, self.resize_size[0], self._mode)
            a = _center_crop_array(a, self.crop_size[0])
        else:
            device = None
            a = _pil_resize_crop(img, self.resize_size[0], self.crop_size[0], self._mode)
        if a.dtype == np.uint8:
            a = a.astype(np.float32) / np.float32(255)
        elif not np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float32) / np.float32(np.iinfo(a.dtype).max)
        mean = np.asarray(self.mean, dtype=a.dtype)[:, None, None]
        std = np.asarray(self.std, dtype=a.dtype)[:, None, None]
        out = mg.tensor(np.ascontiguousarray((a - mean) / std))
        return out if device is None else out.to(device)

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
