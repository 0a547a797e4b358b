"""torchvision's optical-flow models (``torchvision.models.optical_flow``) on manygrad:
RAFT large and small (Teed & Deng, 2020), with torchvision's module trees, state-dict keys,
arguments and weights enums (``weights.transforms()`` is the ``OpticalFlow`` preset).

A model takes two batches of images ``(N, 3, H, W)`` in [-1, 1] (H and W multiples of 8)
and returns the list of its ``num_flow_updates`` flow estimates, each ``(N, 2, H, W)``
(x then y displacement in pixels), the last the best.

Example:
    >>> from manygrad.vision.models import optical_flow
    >>> model = optical_flow.raft_small().eval()
    >>> flows = model(mg.rand(1, 3, 128, 128), mg.rand(1, 3, 128, 128), num_flow_updates=4)
    >>> len(flows), flows[-1].shape
    (4, manygrad.Size([1, 2, 128, 128]))
"""

from . import raft as _raft
from .raft import *  # noqa: F403

__all__ = [*_raft.__all__]
