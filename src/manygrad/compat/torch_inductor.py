"""``torch._inductor``: PyTorch's code generator, of which programs touch the settings
(``torch._inductor.config``). manygrad generates no code from them; they are recorded.

Example:
    >>> import torch._inductor.config
    >>> torch._inductor.config.fx_graph_cache = True
"""

from __future__ import annotations

from . import torch_inductor_config as config

__all__ = ["config"]
