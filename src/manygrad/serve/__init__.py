"""``manygrad serve RUN``: a trained run as an HTTP service (extra ``manygrad[serve]``).

Example:
    >>> from manygrad.serve import create_app
    >>> app = create_app("runs/mlp", max_batch=32, max_wait_ms=5)
"""

from .app import create_app
from .batcher import Batcher
from .decode import BadRequestError

__all__ = ["BadRequestError", "Batcher", "create_app"]
