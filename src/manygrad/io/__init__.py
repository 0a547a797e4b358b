"""Files: state dicts and checkpoints as safetensors (``mg.save`` / ``mg.load``).

Example:
    >>> mg.save(model.state_dict(), "model.safetensors")
    >>> model.load_state_dict(mg.load("model.safetensors"))
"""

from . import safetensors
from .serialization import load, save

__all__ = ["save", "load", "safetensors"]
