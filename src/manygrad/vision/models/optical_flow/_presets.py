"""The preprocessing of the optical-flow weights (torchvision's ``OpticalFlow``, what
``weights.transforms()`` builds for RAFT)."""

from __future__ import annotations

import manygrad as mg

from .... import nn
from ...transforms import functional as F


class OpticalFlow(nn.Module):
    """Both images to float tensors in [-1, 1] (RAFT's input range).

    Example:
        >>> img1, img2 = Raft_Small_Weights.DEFAULT.transforms()(img1, img2)
    """

    def forward(self, img1, img2):
        out = []
        for img in (img1, img2):
            if not isinstance(img, mg.Tensor):
                img = F.pil_to_tensor(img)
            img = F.convert_image_dtype(img, mg.float32)
            # [0, 1] -> [-1, 1]
            img = F.normalize(img, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
            out.append(img.contiguous())
        return out[0], out[1]

    def __repr__(self) -> str:
        return self.__class__.__name__ + "()"

    def describe(self) -> str:
        return (
            "Accepts ``PIL.Image``, batched ``(B, C, H, W)`` and single ``(C, H, W)`` image "
            "``torch.Tensor`` objects. The images are rescaled to ``[-1.0, 1.0]``."
        )
