"""``torch.utils.model_zoo``: ``load_url``, the older name of
``manygrad.hub.load_state_dict_from_url`` (a state dict downloaded once, then read from
the hub's cache directory).

Example:
    >>> from manygrad.utils.model_zoo import load_url
    >>> sd = load_url("https://example.org/resnet18.pth", map_location="cpu")
"""

from __future__ import annotations

from ..hub import load_state_dict_from_url as load_url

__all__ = ["load_url"]
