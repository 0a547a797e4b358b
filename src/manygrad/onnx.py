"""``mg.onnx``: export trained models to ONNX files (``mg.onnx.export``).

Example:
    >>> mg.onnx.export(model, mg.randn(1, 1, 8, 8), "model.onnx",
    ...                dynamic_axes={"input": {0: "batch"}})
"""

from .io.onnx import UnsupportedModuleError, export, supported

__all__ = ["export", "supported", "UnsupportedModuleError"]
