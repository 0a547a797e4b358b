"""``torch.utils.data._utils``: the collate module that custom collate functions extend."""

from . import collate  # noqa: F401
