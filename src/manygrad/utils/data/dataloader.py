"""``torch.utils.data.dataloader``: the loader and its collate functions."""

from ...data import DataLoader, default_collate, default_convert, get_worker_info  # noqa: F401
