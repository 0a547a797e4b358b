"""``mg.onnx``: export models to ONNX files by tracing (``mg.onnx.export``).

Example:
    >>> mg.onnx.export(model, mg.randn(1, 1, 8, 8), "model.onnx",
    ...                dynamic_axes={"input": {0: "batch"}})
"""

from .export import export, save_model, to_model
from .graph import UnsupportedOpError
from .trace import RULES, TracerWarning

UnsupportedModuleError = UnsupportedOpError  # the name of earlier releases


def supported() -> list[str]:
    """Names of the ops (Function classes) that have an ONNX export rule."""
    return sorted(RULES)


__all__ = ["export", "save_model", "supported", "to_model", "TracerWarning",
           "UnsupportedOpError", "UnsupportedModuleError"]  # fmt: skip
