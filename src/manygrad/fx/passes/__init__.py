"""``torch.fx.passes``: analyses and rewrites of graphs (``shape_prop.ShapeProp``,
``utils.matcher_utils.SubgraphMatcher``)."""

from . import shape_prop

__all__ = ["shape_prop"]
