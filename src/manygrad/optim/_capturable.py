"""Device-side hyperparameters for ``capturable=True`` optimizers (CUDA graphs).

A captured step bakes every Python float into the graph, so a learning rate changed by a
scheduler would never reach a replay. Capturable updates read their hyperparameters from
0-d device buffers instead: eager steps refresh a buffer with a fill kernel when its host
value changed, and a step captured into a CUDA graph registers a prologue that refreshes it
before every replay (outside the graph). The step count lives on the device as well.
"""

from __future__ import annotations

from .. import backend
from ..cuda import graphs
from ..errors import CaptureError

F64 = "float64"


def hyper(opt, like, key, get, dtype=None):
    """The device buffer of hyperparameter ``key`` (its host value is ``get()``).

    NOTE: in ``like``'s dtype by default, as a Python float meets an array in an eager
    update (NumPy and CuPy cast it to the array's dtype), so that the capturable update
    gives the eager one's bits; scalars that only combine with each other (bias
    corrections) use ``dtype=F64``, as Python floats do.
    """
    store = opt.__dict__.setdefault("_device_hypers", {})
    dt = like.dtype if dtype is None else dtype
    k = (key, backend.device_of(like), dt)
    e = store.get(k)
    g = graphs.current_capture()
    if e is None:
        v = float(get())
        e = store[k] = [graphs.device_scalar(v, dt, like), v]
    elif g is None:
        v = float(get())
        if v != e[1]:
            e[0].fill(v)
            e[1] = v
    if g is not None:
        g.register_prologue(lambda e=e: _refresh(e, get), key=id(e))
    return e[0]


def _refresh(e, get) -> None:
    v = float(get())
    e[0].fill(v)
    e[1] = v


def device_step(state: dict, like):
    """``state["step"]`` as a 0-d float32 array on ``like``'s device (PyTorch's capturable
    step count; exact up to 2**24 steps), moved there from the host on first use."""
    step = state["step"]
    dev = backend.device_of(like)
    data = getattr(step, "_data", None)
    if data is not None and backend.device_of(data) == dev:
        return data
    if graphs.current_capture() is not None:
        raise CaptureError(
            "CUDA graph capture: the optimizer's step count is on the host; build the "
            "optimizer with capturable=True and run warm-up steps before capture"
        )
    from ..tensor import Tensor

    value = float(step._data.item()) if data is not None else float(step)
    with backend.device_scope(dev):
        arr = backend.array_module(like).full((), value, "float32")
    state["step"] = Tensor._wrap(arr, dev)
    return arr


def check_capturable(opt, group) -> None:
    """As PyTorch: a step captured into a graph needs ``capturable=True``."""
    if not group.get("capturable") and graphs.current_capture() is not None:
        raise CaptureError(
            f"CUDA graph capture of {type(opt).__name__}.step() needs capturable=True "
            "(its step count and bias corrections would be baked into the graph); build it "
            f"as {type(opt).__name__}(..., capturable=True)"
        )
