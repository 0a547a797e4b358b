"""PASCAL VOC (2007-2012) segmentation and detection, in the devkit's layout
(``root/VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,Annotations,ImageSets}``)."""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import Any

from .._pil import Image
from .utils import download_and_extract_archive, verify_str_arg
from .vision import VisionDataset

try:  # NOTE: hardened against entity expansion when installed, as torchvision does
    from defusedxml.ElementTree import parse as _parse_xml
except ImportError:
    from xml.etree.ElementTree import parse as _parse_xml

__all__ = ["VOCDetection", "VOCSegmentation"]

_HOST = "https://thor.robots.ox.ac.uk/pascal/VOC/"
DATASET_YEAR_DICT = {
    "2012": (_HOST + "voc2012/VOCtrainval_11-May-2012.tar", "VOCtrainval_11-May-2012.tar",
             "6cd6e144f989b92b3379bac3b3de84fd", os.path.join("VOCdevkit", "VOC2012")),
    "2011": (_HOST + "voc2011/VOCtrainval_25-May-2011.tar", "VOCtrainval_25-May-2011.tar",
             "6c3384ef61512963050cb5d687e5bf1e", os.path.join("TrainVal", "VOCdevkit", "VOC2011")),
    "2010": (_HOST + "voc2010/VOCtrainval_03-May-2010.tar", "VOCtrainval_03-May-2010.tar",
             "da459979d0c395079b5c75ee67908abb", os.path.join("VOCdevkit", "VOC2010")),
    "2009": (_HOST + "voc2009/VOCtrainval_11-May-2009.tar", "VOCtrainval_11-May-2009.tar",
             "a3e00b113cfcfebf17e343f59da3caa1", os.path.join("VOCdevkit", "VOC2009")),
    "2008": (_HOST + "voc2008/VOCtrainval_14-Jul-2008.tar", "VOCtrainval_11-May-2012.tar",
             "2629fa636546599198acfcfbfcf1904a", os.path.join("VOCdevkit", "VOC2008")),
    "2007": (_HOST + "voc2007/VOCtrainval_06-Nov-2007.tar", "VOCtrainval_06-Nov-2007.tar",
             "c52e279531787c972589f7e41ab4ae64", os.path.join("VOCdevkit", "VOC2007")),
    "2007-test": (_HOST + "voc2007/VOCtest_06-Nov-2007.tar", "VOCtest_06-Nov-2007.tar",
                  "b6e924de25625d8de591ea690078ad9f", os.path.join("VOCdevkit", "VOC2007")),
}  # fmt: skip


class _VOCBase(VisionDataset):
    _SPLITS_DIR: str
    _TARGET_DIR: str
    _TARGET_FILE_EXT: str

    def __init__(
        self,
        root: str | os.PathLike,
        year: str = "2012",
        image_set: str = "train",
        download: bool = False,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        transforms: Callable | None = None,
    ):
        super().__init__(root, transforms, transform, target_transform)
        self.year = verify_str_arg(year, "year", valid_values=[str(y) for y in range(2007, 2013)])
        valid = ["train", "trainval", "val"] + (["test"] if year == "2007" else [])
        self.image_set = verify_str_arg(image_set, "image_set", valid)
        key = "2007-test" if year == "2007" and image_set == "test" else year
        self.url, self.filename, self.md5, base_dir = DATASET_YEAR_DICT[key]
        voc_root = os.path.join(self.root, base_dir)
        if download and not os.path.isdir(voc_root):
            download_and_extract_archive(self.url, self.root, filename=self.filename, md5=self.md5)
        if not os.path.isdir(voc_root):
            raise RuntimeError(
                "Dataset not found or corrupted. You can use download=True to download it "
                f"(looked for {voc_root})"
            )
        split_file = os.path.join(voc_root, "ImageSets", self._SPLITS_DIR, image_set + ".txt")
        with open(split_file) as f:
            names = [x.strip() for x in f.readlines()]
        self.images = [os.path.join(voc_root, "JPEGImages", x + ".jpg") for x in names]
        target_dir = os.path.join(voc_root, self._TARGET_DIR)
        self.targets = [os.path.join(target_dir, x + self._TARGET_FILE_EXT) for x in names]

    def __len__(self) -> int:
        return len(self.images)


class VOCSegmentation(_VOCBase):
    """PASCAL VOC segmentation: items are ``(RGB image, class-index mask)`` PIL images (the
    mask in palette mode, 255 on object borders).

    Args:
        root: the folder holding ``VOCdevkit``.
        year: ``"2007"`` to ``"2012"`` (default ``"2012"``).
        image_set: ``"train"`` (default), ``"trainval"`` or ``"val"`` (``"test"`` for 2007).
        download: fetch and unpack the year's archive when its folder is missing.
        transform: callable on the image.
        target_transform: callable on the mask.
        transforms: callable on ``(image, mask)`` (instead of the two above).

    Example:
        >>> ds = VOCSegmentation("data", image_set="val")
    """

    _SPLITS_DIR = "Segmentation"
    _TARGET_DIR = "SegmentationClass"
    _TARGET_FILE_EXT = ".png"

    @property
    def masks(self) -> list[str]:
        return self.targets

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img = Image.open(self.images[index]).convert("RGB")
        target = Image.open(self.masks[index])
        if self.transforms is not None:
            img, target = self.transforms(img, target)
        return img, target


class VOCDetection(_VOCBase):
    """PASCAL VOC detection: items are ``(RGB image, annotation)``, the annotation the
    XML file as nested dicts (``target["annotation"]["object"]`` is a list of objects).

    Args: as :class:`VOCSegmentation`.

    Example:
        >>> img, target = VOCDetection("data", year="2007", image_set="test")[0]
    """

    _SPLITS_DIR = "Main"
    _TARGET_DIR = "Annotations"
    _TARGET_FILE_EXT = ".xml"

    @property
    def annotations(self) -> list[str]:
        return self.targets

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img = Image.open(self.images[index]).convert("RGB")
        target = self.parse_voc_xml(_parse_xml(self.annotations[index]).getroot())
        if self.transforms is not None:
            img, target = self.transforms(img, target)
        return img, target

    @staticmethod
    def parse_voc_xml(node) -> dict[str, Any]:
        """An XML element as nested dicts: repeated tags become lists, leaves their text."""
        out: dict[str, Any] = {}
        children = list(node)
        if children:
            merged: dict[str, Any] = collections.defaultdict(list)
            for child in map(VOCDetection.parse_voc_xml, children):
                for tag, value in child.items():
                    merged[tag].append(value)
            if node.tag == "annotation":  # NOTE: keeps "object" a list for one object too
                merged["object"] = [merged["object"]]
            out = {node.tag: {t: v[0] if len(v) == 1 else v for t, v in merged.items()}}
        if node.text:
            text = node.text.strip()
            if not children:
                out[node.tag] = text
        return out
