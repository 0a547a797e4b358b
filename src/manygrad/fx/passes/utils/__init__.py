"""Helpers of the graph passes (``matcher_utils``: subgraph matching)."""
