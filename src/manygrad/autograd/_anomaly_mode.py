"""Anomaly detection: ``with mg.autograd.detect_anomaly():`` keeps the stack of each op's
forward call and checks every gradient for NaN, naming the op whose backward made it."""

from __future__ import annotations

import traceback
import warnings

from .. import backend
from ..errors import AutogradError


def _ag():
    from .. import autograd

    return autograd


def remember(node) -> None:
    node.__dict__["_stack"] = traceback.format_stack()[:-2]


def check(node, grads) -> None:
    """Raise when ``node``'s backward returned NaN (a host sync: anomaly mode only)."""
    for i, g in enumerate(grads):
        if g is None:
            continue
        if getattr(g, "is_sparse", False):  # a sparse gradient: its values
            g = g._values()
        a = g._data if hasattr(g, "_data") else g
        if a.dtype.kind not in "fc" and a.dtype.kind != "V":
            continue
        xp = backend.array_module(a)
        if bool(xp.isnan(a.astype("float32") if a.dtype.kind == "V" else a).any()):
            stack = node.__dict__.get("_stack")
            where = ""
            if stack:
                where = "\nThe forward call that made it:\n" + "".join(stack[-6:])
                warnings.warn(
                    f"Error detected in {node.name()}. Traceback of forward call that "
                    f"caused the error:\n{''.join(stack)}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            raise AutogradError(
                f"Function '{node.name()}' returned nan values in its {i}th output.{where}"
            )


class set_detect_anomaly:  # noqa: N801 - PyTorch's name
    """Turn anomaly detection on or off (a context manager, or call it and keep the mode).

    Args:
        mode: True to record each op's forward stack and check gradients for NaN.
        check_nan: check gradients for NaN (default True).
    """

    def __init__(self, mode: bool, check_nan: bool = True):
        ag = _ag()
        self.prev = ag._anomaly
        ag._anomaly = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _ag()._anomaly = self.prev
        return False


class detect_anomaly:  # noqa: N801 - PyTorch's name
    """``with mg.autograd.detect_anomaly():`` names the forward op behind a NaN gradient.

    It slows every op (a stack trace each) and syncs with the GPU after each backward node:
    for debugging only.

    Example:
        >>> with mg.autograd.detect_anomaly():
        ...     loss.backward()   # raises, naming e.g. SqrtBackward and where sqrt was called
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan
        # NOTE: PyTorch's words, when the object is made (as PyTorch warns)
        warnings.warn(
            "Anomaly Detection has been enabled. This mode will increase the runtime and "
            "should only be enabled for debugging (every op records its stack and every "
            "gradient is checked for NaN).",
            UserWarning,
            stacklevel=2,
        )

    def __enter__(self):
        ag = _ag()
        self.prev = ag._anomaly
        ag._anomaly = True
        return self

    def __exit__(self, *exc):
        _ag()._anomaly = self.prev
        return False

    def __call__(self, fn):
        def wrapped(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapped


def is_anomaly_enabled() -> bool:
    return _ag()._anomaly
