"""``mg.data``: datasets, samplers and the DataLoader, with PyTorch's names.

Sources of real data live in ``mg.data.sources`` and are re-exported here: ``IDX``
(MNIST-format files), ``ImageFolder``/``ImageList`` (Pillow), ``VideoFolder``/
``VideoList`` (PyAV) and ``Npy``/``Npz``/``HDF5``/``Zarr``/``ArrayDataset`` (scientific
arrays, with windows). ``transforms`` run per sample on the host; ``device_transforms``
run on whole batches with the device's array module after the copy.

With ``device="cuda"`` the loader packs each batch into page-locked host buffers and copies
it on a separate CuPy stream while the previous step computes (``staging.py``). That CUDA
path has not yet run on a GPU; the same protocol is tested on the ``fakegpu`` device.

Example:
    >>> ds = mg.data.ImageFolder("train/", transform=transforms.ToTensor())
    >>> for x, y in mg.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2):
    ...     ...
"""

from . import device_transforms, sources, transforms  # noqa: F401
from .collate import default_collate, default_convert
from .dataloader import DataLoader, SkippedSamplesWarning
from .dataset import (
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    get_worker_info,
    random_split,
    sample_rng,
)
from .detect import describe
from .sampler import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
)
from .sources import (
    HDF5,
    IDX,
    ArrayDataset,
    ImageFolder,
    ImageList,
    Npy,
    Npz,
    VideoFolder,
    VideoList,
    Zarr,
)
from .weighted import ChainDataset, StackDataset, WeightedRandomSampler

__all__ = [
    "ChainDataset",
    "StackDataset",
    "WeightedRandomSampler",
    "HDF5",
    "IDX",
    "ArrayDataset",
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "ImageFolder",
    "ImageList",
    "IterableDataset",
    "Npy",
    "Npz",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "SkippedSamplesWarning",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "VideoFolder",
    "VideoList",
    "Zarr",
    "default_collate",
    "default_convert",
    "describe",
    "device_transforms",
    "get_worker_info",
    "random_split",
    "sample_rng",
    "sources",
    "transforms",
]
