"""The ``meta`` device: tensors with a shape and a dtype but no data.

A model built on ``meta`` (``with mg.device("meta"): model = Net()``) costs no memory and no
random draws; ``model.to_empty(device="cpu")`` then gives it real (uninitialised) storage,
or ``model.load_state_dict(sd, assign=True)`` takes the checkpoint's tensors as they are.
Ops on meta tensors give meta tensors of the right shape and dtype.

Storage is a ``MetaArray``: a NumPy array whose elements all share one slot (zero
strides), so views, reshapes and in-place writes cost no memory. Elementwise ufuncs on
meta arrays only work out the result's shape and dtype; other ops run on the (zero) data
and their result is dropped back to one slot when it becomes a tensor, so their time is
that of the op on real data. Anything that reads values (``item()``, ``tolist()``,
copies to another device) refuses, as PyTorch does.
"""

from __future__ import annotations

import numpy as np

_NO_DATA = "Cannot copy out of meta tensor; no data!"
_TO_EMPTY = (
    " Please use torch.nn.Module.to_empty() instead of torch.nn.Module.to() when moving "
    "module from meta to a different device."
)


class MetaArray(np.ndarray):
    """Storage of a meta tensor: every element is one shared slot."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        if method == "__call__" and ufunc.signature is None:
            if all(type(x) is MetaArray or _is_scalar(x) for x in inputs):
                if out is not None and all(type(o) is MetaArray for o in out):
                    return out[0] if len(out) == 1 else out  # written in place: no data
                if out is None:
                    return _shape_only(ufunc, inputs, kwargs)
        args = [x.view(np.ndarray) if type(x) is MetaArray else x for x in inputs]
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if type(o) is MetaArray else o for o in out)
        with np.errstate(all="ignore"):
            r = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return r

    def item(self, *args):
        raise RuntimeError("Tensor.item() cannot be called on meta tensors")

    def tolist(self):
        raise NotImplementedError(_NO_DATA)

    def __float__(self):
        self.item()

    __int__ = __index__ = __bool__ = __complex__ = __float__

    def __reduce__(self):
        raise NotImplementedError(_NO_DATA)


def _is_scalar(x) -> bool:
    return isinstance(x, (int, float, complex, bool, np.generic))


def _shape_only(ufunc, inputs, kwargs):
    """A ufunc's result on meta arrays: worked out on one element, then broadcast."""
    shape = np.broadcast_shapes(*[np.shape(x) for x in inputs])
    one = [np.zeros((), x.dtype) if type(x) is MetaArray else x for x in inputs]
    with np.errstate(all="ignore"):
        r = ufunc(*one, **kwargs)
    if isinstance(r, tuple):
        return tuple(empty(shape, np.asarray(a).dtype) for a in r)
    return empty(shape, np.asarray(r).dtype)


def empty(shape, dtype) -> MetaArray:
    """Meta storage of ``shape`` and ``dtype`` (one element of memory)."""
    slot = np.zeros(1, dtype)
    shape = tuple(int(n) for n in shape)
    a = np.lib.stride_tricks.as_strided(slot, shape, (0,) * len(shape), writeable=True)
    return a.view(MetaArray)


def storage(a) -> MetaArray:
    """``a`` (any array) as meta storage: itself when it already is, else a new slot."""
    if type(a) is MetaArray and not any(a.strides):
        return a
    return empty(a.shape, a.dtype)


def no_data(to_module: bool = True) -> NotImplementedError:
    """The error for a copy out of a meta tensor (with Module.to's hint)."""
    return NotImplementedError(_NO_DATA + (_TO_EMPTY if to_module else ""))


def refuse_data_dependent(t, op: str) -> None:
    """Raise for ``op`` on a meta tensor when its result's shape depends on the values."""
    from . import backend

    if getattr(t, "_device", None) is backend.META:
        raise NotImplementedError(
            f"{op}: the result's shape depends on the input's values, and a meta tensor has "
            "none (PyTorch has no meta implementation of it either); run it on a real device"
        )
