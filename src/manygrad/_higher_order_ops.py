"""``torch._higher_order_ops``: where PyTorch also keeps ``cond`` and ``while_loop``."""

from .control_flow import cond, while_loop

__all__ = ["cond", "while_loop"]
