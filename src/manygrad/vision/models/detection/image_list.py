"""``ImageList``: images of several sizes padded into one batch tensor, with the size of
each before padding (torchvision.models.detection.image_list)."""

from __future__ import annotations

from manygrad import Tensor


class ImageList:
    """A padded batch ``tensors`` (N, C, H, W) and each image's ``(height, width)`` in
    ``image_sizes``.

    Example:
        >>> images = ImageList(batch, [(480, 640), (500, 375)])
    """

    def __init__(self, tensors: Tensor, image_sizes: list[tuple[int, int]]) -> None:
        self.tensors = tensors
        self.image_sizes = image_sizes

    def to(self, device) -> ImageList:
        return ImageList(self.tensors.to(device), self.image_sizes)
