"""``torch.utils.data.dataloader``: the loader and its collate functions (CPU Tensors)."""

from ...data import DataLoader, get_worker_info  # noqa: F401
from ._utils.collate import default_collate, default_convert  # noqa: F401
