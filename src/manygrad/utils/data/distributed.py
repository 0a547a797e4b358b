"""``torch.utils.data.distributed``: ``DistributedSampler``."""

from ...data import DistributedSampler  # noqa: F401
