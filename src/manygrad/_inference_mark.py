"""The mark of inference tensors (their ``_meta``) and the errors PyTorch raises for them;
the checks themselves are in ``autograd._inference``.

A tensor made under ``inference_mode`` gets ``INFERENCE_META`` (``Tensor._wrap`` reads it
from ``tensor._NEW_META``), as do its views; ``detach()`` and ``.data`` of one get
``INFERENCE_DETACHED``: an inference tensor that PyTorch lets change in place (whose views
may not).
"""

from __future__ import annotations

from .errors import AutogradError


class InferenceMark(dict):
    """The ``_meta`` of inference tensors (``t._meta.__class__ is InferenceMark``)."""


INFERENCE_META = InferenceMark(inference=True)
INFERENCE_DETACHED = InferenceMark(inference=True, detached=True)


def inplace_error(name: str) -> AutogradError:
    """The error for an in-place change of an inference tensor outside ``inference_mode``."""
    return AutogradError(
        f"{name}: Inplace update to inference tensor outside InferenceMode is not allowed. "
        "You can make a clone to get a normal tensor before doing inplace update "
        "(t = t.clone()), or do the update inside inference_mode()."
    )


def requires_grad_error() -> AutogradError:
    """The error for ``requires_grad_()`` on an inference tensor outside ``inference_mode``."""
    return AutogradError(
        "Setting requires_grad=True on inference tensor outside InferenceMode is not allowed; "
        "use a clone (t.clone().requires_grad_()) or make the tensor under no_grad()"
    )
