"""The evaluation preprocessing of the video models' weights (torchvision's
``VideoClassification``, what ``weights.transforms()`` builds for a video entry)."""

from __future__ import annotations

import functools

import manygrad as mg

from .... import nn
from ...transforms import functional as F
from .._api import Weights
from ._meta import _KINETICS400_CATEGORIES


class VideoClassification(nn.Module):
    """Resize every frame, center-crop, scale to [0, 1] floats, normalize, and put the
    channels before the time axis: ``(..., T, C, H, W)`` frames in, ``(..., C, T, H, W)``
    clips out (what the video models take).

    Args:
        crop_size: (h, w) of the crop (keyword only).
        resize_size: ``(side,)`` for the shorter side, or ``(h, w)``.
        mean, std: per channel (default Kinetics-400's).
        interpolation: default bilinear (torchvision's ``InterpolationMode`` or its name).

    Example:
        >>> preprocess = R3D_18_Weights.DEFAULT.transforms()
        >>> clip = preprocess(frames)  # frames: (T, C, H, W) uint8
    """

    def __init__(
        self,
        *,
        crop_size: tuple[int, int],
        resize_size: tuple[int] | tuple[int, int],
        mean: tuple[float, ...] = (0.43216, 0.394666, 0.37645),
        std: tuple[float, ...] = (0.22803, 0.22145, 0.216989),
        interpolation=F.InterpolationMode.BILINEAR,
    ):
        super().__init__()
        self.crop_size = list(crop_size)
        self.resize_size = list(resize_size)
        self.mean = list(mean)
        self.std = list(std)
        self.interpolation = F.InterpolationMode(getattr(interpolation, "value", interpolation))

    def forward(self, vid):
        if not isinstance(vid, mg.Tensor) or vid.ndim not in (4, 5):
            shape = tuple(vid.shape) if isinstance(vid, mg.Tensor) else type(vid).__name__
            raise ValueError(
                f"VideoClassification: expected a (T, C, H, W) or (N, T, C, H, W) tensor of "
                f"frames, got {shape}"
            )
        single = vid.ndim == 4
        if single:
            vid = vid.unsqueeze(0)
        n, t, c, h, w = vid.shape
        vid = vid.reshape(-1, c, h, w)
        # NOTE: no antialiasing, as torchvision keeps for these weights (they were
        # evaluated before its default changed)
        vid = F.resize(vid, self.resize_size, interpolation=self.interpolation, antialias=False)
        vid = F.center_crop(vid, self.crop_size)
        vid = F.convert_image_dtype(vid, mg.float32)
        vid = F.normalize(vid, mean=self.mean, std=self.std)
        ch, cw = self.crop_size
        vid = vid.view(n, t, c, ch, cw).permute(0, 2, 1, 3, 4)
        return vid.squeeze(0) if single else vid

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(\n    crop_size={self.crop_size}\n"
            f"    resize_size={self.resize_size}\n    mean={self.mean}\n    std={self.std}\n"
            f"    interpolation={self.interpolation}\n)"
        )

    def describe(self) -> str:
        return (
            "Accepts batched ``(B, T, C, H, W)`` and single ``(T, C, H, W)`` video frame "
            "``torch.Tensor`` objects. The frames are resized to "
            f"``resize_size={self.resize_size}`` using ``interpolation={self.interpolation}``, "
            f"followed by a central crop of ``crop_size={self.crop_size}``. Finally the values "
            "are first rescaled to ``[0.0, 1.0]`` and then normalized using "
            f"``mean={self.mean}`` and ``std={self.std}``. Finally the output dimensions are "
            "permuted to ``(..., C, T, H, W)`` tensors."
        )


def _kinetics_weights(url: str, preset: dict, **meta) -> Weights:
    """A ``Weights`` entry of a Kinetics-400 video classifier: its ``VideoClassification``
    preset (``preset``: the keyword arguments) and ``meta`` with the 400 categories."""
    meta = {"categories": _KINETICS400_CATEGORIES, **meta}
    return Weights(url=url, transforms=functools.partial(VideoClassification, **preset), meta=meta)
