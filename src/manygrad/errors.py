"""Exceptions raised by manygrad; each also derives from the matching builtin."""


class ManygradError(Exception):
    """Base of every error manygrad raises on purpose."""


class DeviceError(ManygradError, RuntimeError):
    """A device is unknown, unusable, or operands sit on different devices."""


class ShapeError(ManygradError, ValueError, RuntimeError):
    """Operand shapes do not fit the op (also a ``RuntimeError``, which PyTorch raises)."""


class DimError(ShapeError, IndexError):
    """A dim or an index is out of range (also an ``IndexError``, as in PyTorch)."""


class DTypeError(ManygradError, TypeError, RuntimeError):
    """A dtype is unsupported or cannot take part in the op (also a ``RuntimeError``, which
    PyTorch raises)."""


class DTypeNotImplementedError(DTypeError, NotImplementedError):
    """A dtype an op does not take where PyTorch raises ``NotImplementedError`` (``sign`` of
    complex values: ``sgn`` is the op for them)."""


class AutogradError(ManygradError, RuntimeError):
    """Backward cannot run as asked."""


class CheckpointError(ManygradError, ValueError, RuntimeError):
    """A saved file is missing, corrupt or does not fit the model."""


class CaptureError(ManygradError, RuntimeError):
    """A call cannot run while a CUDA graph captures (a host read, an upload, cuBLAS...)."""


class OutOfMemoryError(ManygradError, RuntimeError, MemoryError):
    """A device ran out of memory (``torch.OutOfMemoryError``; also a ``MemoryError``)."""


class LayoutError(ManygradError, NotImplementedError):
    """A sparse tensor where only dense ones are taken, or the reverse (a sparse gradient
    reaching an optimizer without sparse updates); also a ``RuntimeError``, which PyTorch
    raises (``NotImplementedError`` derives from it)."""


class DivisionByZeroError(ManygradError, ZeroDivisionError, RuntimeError):
    """Integer division (``//``, ``%``, ``fmod``) by zero on the CPU: a ``RuntimeError``, as
    PyTorch raises there, and Python's ``ZeroDivisionError``."""
