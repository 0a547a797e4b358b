"""Fixtures of the data tests; the file builders live in datafiles.py."""

import os

import pytest

from datafiles import image_array


@pytest.fixture
def image_folder(tmp_path):
    """root/{cat,dog}/*.png (lossless) with known pixel values; returns (root, arrays)."""
    from PIL import Image

    root = tmp_path / "imgs"
    arrays = {}
    for c, cls in enumerate(["cat", "dog"]):
        os.makedirs(root / cls)
        for j in range(3):
            k = c * 3 + j
            a = image_array(k)
            p = root / cls / f"{j}.png"
            Image.fromarray(a).save(p)
            arrays[str(p)] = (a, c)
    return str(root), arrays
