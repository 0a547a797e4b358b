"""``manygrad.fx.experimental`` (``torch.fx.experimental``): graph passes built on fx;
``optimization.fuse`` folds BatchNorm layers into the layers before them."""

from . import optimization

__all__ = ["optimization"]
