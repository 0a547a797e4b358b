"""Datasets over files: IDX, image folders and lists, videos, and scientific arrays.

Each import of a third-party decoder (Pillow, PyAV, h5py, zarr) happens on first use, with
an error that names the extra to install (``pip install 'manygrad[images]'`` and so on).
"""

from .arrays import HDF5, ArrayDataset, Npy, Npz, Zarr
from .idx import IDX, read_idx
from .images import IMG_EXTENSIONS, ImageFolder, ImageList, load_image
from .video import VIDEO_EXTENSIONS, VideoFolder, VideoList

__all__ = [
    "HDF5",
    "IDX",
    "IMG_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ArrayDataset",
    "ImageFolder",
    "ImageList",
    "Npy",
    "Npz",
    "VideoFolder",
    "VideoList",
    "Zarr",
    "load_image",
    "read_idx",
]
