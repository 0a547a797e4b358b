"""``torch.utils.data.sampler``: the samplers."""

from ...data import (  # noqa: F401
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
)


def __getattr__(name):
    from ... import data

    if name == "WeightedRandomSampler" and hasattr(data, name):
        return getattr(data, name)
    raise AttributeError(f"module 'manygrad.utils.data.sampler' has no attribute {name!r}")
