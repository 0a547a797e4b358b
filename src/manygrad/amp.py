"""Mixed precision, as ``torch.amp``: ``autocast`` and ``GradScaler``.

Inside ``mg.autocast("cuda")`` the matmul-like ops (``matmul``, ``linear``, convolutions,
``addmm``/``baddbmm``, attention) compute in float16 (bfloat16 on the CPU) while parameters
stay float32; as in PyTorch, losses, ``prod`` and ``cdist`` (and on GPUs the rest of
PyTorch's CUDA float32 list: ``exp``, ``log``, ``pow``, ``sum``, softmax, layer_norm, the
norms, ...) take 16-bit inputs in float32. ``GradScaler``
scales the loss so that small float16 gradients do not flush to zero, unscales them before
the optimizer step, and skips steps whose gradients overflowed.

Example:
    >>> scaler = mg.amp.GradScaler("cuda")
    >>> with mg.autocast("cuda"):
    ...     loss = loss_fn(model(x), y)
    >>> scaler.scale(loss).backward()
    >>> scaler.step(opt); scaler.update(); opt.zero_grad()
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from . import autograd, backend
from . import dtypes as D
from .errors import DTypeError
from .tensor import Tensor

_DEFAULT_DTYPES = {"cuda": D.float16, "cpu": D.bfloat16, "fakegpu": D.float16}
_DTYPES = dict(_DEFAULT_DTYPES)  # the dtype autocast uses per device (PyTorch's state)
NESTING = [0]  # open autocast blocks (``torch.autocast_increment_nesting``'s count)


class autocast:  # noqa: N801 - PyTorch's name
    """Run matmul-like ops of ``device_type`` in a lower precision (context or decorator).

    Args:
        device_type: "cuda", "cpu" (or "fakegpu" in tests).
        dtype: float16 or bfloat16; default float16 on cuda, bfloat16 on cpu.
        enabled: False turns autocast off inside the block (default True).
        cache_enabled: accepted for PyTorch compatibility; ignored.

    Example:
        >>> with mg.autocast("cpu"):
        ...     y = mg.nn.functional.linear(x, w)   # y.dtype is mg.bfloat16
    """

    def __init__(self, device_type: str, dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None):  # fmt: skip
        if not isinstance(device_type, str) or device_type not in _DEFAULT_DTYPES:
            raise ValueError(
                f"autocast: device_type must be 'cuda' or 'cpu' (or 'fakegpu'), got "
                f"{device_type!r}; write e.g. mg.autocast('cuda')"
            )
        dt = _DTYPES[device_type] if dtype is None else D.from_any(dtype)
        if dt not in (D.float16, D.bfloat16):
            raise DTypeError(
                f"autocast: dtype must be mg.float16 or mg.bfloat16, got {dt}; for full "
                "precision leave the code outside autocast (or pass enabled=False)"
            )
        self.device_type = device_type
        self.fast_dtype = dt
        self.enabled = bool(enabled)
        self._saved: list = []

    def __enter__(self) -> autocast:
        table = autograd.autocast_dtypes
        self._saved.append((table.get(self.device_type), _DTYPES[self.device_type]))
        NESTING[0] += 1
        _DTYPES[self.device_type] = self.fast_dtype
        if self.enabled:
            table[self.device_type] = self.fast_dtype
        else:
            table.pop(self.device_type, None)
        return self

    def __exit__(self, *exc) -> bool:
        prev, _DTYPES[self.device_type] = self._saved.pop()
        NESTING[0] -= 1
        if prev is None:
            autograd.autocast_dtypes.pop(self.device_type, None)
        else:
            autograd.autocast_dtypes[self.device_type] = prev
        return False

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        return wrapped


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """True inside an enabled ``autocast`` block for ``device_type``."""
    return device_type in autograd.autocast_dtypes


def get_autocast_dtype(device_type: str):
    """The dtype ``autocast`` uses on ``device_type``: the active block's, else the one
    ``set_autocast_dtype`` set (float16 on cuda, bfloat16 on cpu until then)."""
    return _DTYPES.get(device_type)


def _autocast_device(device_type: str, what: str) -> str:
    if device_type not in _DEFAULT_DTYPES:
        raise ValueError(f"{what}: device_type must be 'cuda' or 'cpu', got {device_type!r}")
    return device_type


def set_autocast_enabled(device_type, enabled=None) -> None:
    """Turn autocast on or off for ``device_type`` outside a ``with autocast`` block (what
    the block does on entry; ``set_autocast_enabled(True)`` alone means cuda, PyTorch's old
    form). Prefer ``with mg.autocast(...)``, which restores the state on exit."""
    if enabled is None:  # NOTE: PyTorch's old signature: set_autocast_enabled(enabled)
        device_type, enabled = "cuda", device_type
    dev = _autocast_device(device_type, "set_autocast_enabled")
    if enabled:
        autograd.autocast_dtypes[dev] = _DTYPES[dev]
    else:
        autograd.autocast_dtypes.pop(dev, None)


def set_autocast_dtype(device_type: str, dtype) -> None:
    """The dtype autocast uses on ``device_type`` (float16 or bfloat16), now and for blocks
    that name none."""
    dev = _autocast_device(device_type, "set_autocast_dtype")
    dt = D.from_any(dtype)
    if dt not in (D.float16, D.bfloat16):
        raise DTypeError(f"set_autocast_dtype: dtype must be mg.float16 or mg.bfloat16, got {dt}")
    _DTYPES[dev] = dt
    if dev in autograd.autocast_dtypes:
        autograd.autocast_dtypes[dev] = dt


_READY, _UNSCALED, _STEPPED = 0, 1, 2


class GradScaler:
    """Dynamic loss scaling for float16 training.

    ``scale(loss)`` multiplies the loss by the scale; ``step(opt)`` unscales the
    gradients (unless ``unscale_`` already did), then runs ``opt.step()`` only if they are
    all finite; ``update()`` halves the scale after an overflow and doubles it after
    ``growth_interval`` clean steps. Checking the gradients costs one host read of a
    single flag per ``step`` (as in PyTorch); everything else stays on the device. With a
    ``capturable=True`` optimizer, or inside a CUDA graph capture, there is no host read:
    the step runs and is undone on the device where the flag is set, so that it can be
    captured (``step`` then returns the optimizer's result either way).

    Args:
        device: device type of the training ("cuda", "cpu", or "fakegpu"); on "cuda"
            without a GPU the scaler disables itself with a warning.
        init_scale: starting scale (default 2**16).
        growth_factor: scale multiplier after ``growth_interval`` clean steps (default 2).
        backoff_factor: scale multiplier after an overflow (default 0.5).
        growth_interval: clean steps between growths (default 2000).
        enabled: False makes every method a pass-through (default True).

    Example:
        >>> scaler = mg.amp.GradScaler("cuda")
        >>> scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
    """

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ):
        self._device = str(device)
        self._enabled = enabled
        if enabled and self._device.startswith("cuda") and not backend.cuda_available():
            warnings.warn(
                "GradScaler is enabled, but CUDA is not available; disabling it. Pass "
                "enabled=False, or device='cpu' to scale on the CPU",
                UserWarning,
                stacklevel=2,
            )
            self._enabled = False
        if growth_factor <= 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}")
        if not isinstance(growth_interval, int) or growth_interval <= 0:
            raise ValueError(
                f"GradScaler: growth_interval must be a positive int, got {growth_interval}"
            )
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        self._scale: Tensor | None = None  # 0-d float32 on the training device
        self._growth_tracker = None  # 0-d int32 array beside it
        self._per_optimizer: dict[int, dict[str, Any]] = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def _lazy_init(self, dev: backend.Device) -> None:
        xp = backend.xp_of(dev)
        with backend.device_scope(dev):
            self._scale = Tensor._wrap(xp.full((), self._init_scale, np.float32), dev)
            self._growth_tracker = xp.full((), self._init_growth_tracker, np.int32)

    def _opt_state(self, optimizer) -> dict[str, Any]:
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf": {}})

    def scale(self, outputs):
        """``outputs * scale`` (a tensor, or lists/tuples of them)."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._lazy_init(outputs._device)
            s = self._scale
            if s._device != outputs._device:
                s = s.to(outputs._device)
            return outputs * s
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(
            f"GradScaler.scale: expected a Tensor or a list/tuple of them, got "
            f"{type(outputs).__name__}"
        )

    def unscale_(self, optimizer) -> None:
        """Divide the gradients of ``optimizer``'s parameters by the scale, in place.

        Call it before clipping gradients; ``step`` then won't unscale again.
        """
        if not self._enabled:
            return
        st = self._opt_state(optimizer)
        if st["stage"] == _UNSCALED:
            raise RuntimeError(
                "unscale_() has already been called on this optimizer since the last update()"
            )
        if st["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step(); call update() first")
        if self._scale is None:
            raise RuntimeError("GradScaler: call scale(loss) before unscale_() or step()")
        inv = {}
        found = st["found_inf"]
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                # NOTE: a sparse gradient (nn.Embedding(sparse=True)) unscales its values
                gt = p.grad._values() if p.grad.is_sparse else p.grad
                g = gt._data
                if g.dtype == np.float16:
                    raise ValueError(
                        "GradScaler: attempting to unscale float16 gradients; keep the "
                        "parameters in float32 and let mg.autocast run the ops in float16"
                    )
                dev = gt._device
                xp = backend.array_module(g)
                with backend.device_scope(dev):  # NOTE: CuPy works on the current GPU
                    if dev not in inv:
                        s = backend.to_device(self._scale._data, dev)
                        inv[dev] = (1.0 / s.astype(np.float64)).astype(np.float32)
                        found[dev] = xp.zeros((), np.float32)
                    g *= inv[dev]
                    # NOTE: device-side flag, no host read here
                    bad = xp.logical_not(xp.isfinite(g).all())
                    xp.maximum(found[dev], bad, out=found[dev])
        st["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale if needed, then ``optimizer.step()`` unless a gradient is inf/nan.

        Returns what ``optimizer.step`` returned, or None when the step was skipped.
        This reads one flag from the device (the only host sync of the scaler).
        """
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("closures are not supported with GradScaler.step")
        st = self._opt_state(optimizer)
        if st["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update()")
        if st["stage"] == _READY:
            self.unscale_(optimizer)
        if not st["found_inf"]:
            raise RuntimeError("GradScaler.step: the optimizer's parameters have no gradients")
        if _on_device(optimizer):
            result = self._step_on_device(optimizer, st["found_inf"], args, kwargs)
        else:
            skipped = sum(f.item() for f in st["found_inf"].values())  # the one host sync
            result = None if skipped else optimizer.step(*args, **kwargs)
        st["stage"] = _STEPPED
        return result

    def _step_on_device(self, optimizer, found_inf: dict, args, kwargs):
        """``optimizer.step()`` undone on the device where a gradient was inf/NaN.

        NOTE: no host read, so the step can be captured into a CUDA graph: the parameters
        and the optimizer's state are copied first and copied back where the flag is set
        (``p = where(found_inf, p_old, p_new)``). States are created before the copy.
        """
        from .optim._capturable import device_step

        saved = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                dev = p._device
                with backend.device_scope(dev):
                    st = optimizer.state.get(p)
                    if not st:
                        st = optimizer.init_state(p._data, group)
                        if st:
                            optimizer.state[p] = st
                    if st and "step" in st and group.get("capturable"):
                        device_step(st, p._data)  # NOTE: a Tensor, so that it is restored
                    flag = None
                    for f in found_inf.values():
                        f = backend.to_device(f, dev)
                        flag = f if flag is None else flag + f
                    bad = flag > 0
                    arrays = [p._data] + [
                        v._data
                        for v in (st or {}).values()
                        # NOTE: a host step count (non-capturable) stays as the step left it
                        if isinstance(v, Tensor) and v._device == dev
                    ]
                    saved += [(dev, a, a.copy(), bad) for a in arrays]
        result = optimizer.step(*args, **kwargs)
        for dev, a, old, bad in saved:
            with backend.device_scope(dev):
                backend.array_module(a).copyto(a, old, where=bad)
        return result

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Adjust the scale for the next iteration (call once per iteration, after step).

        Args:
            new_scale: set this scale instead of the automatic adjustment.
        """
        if not self._enabled or self._scale is None:
            return
        with backend.device_scope(self._scale._device):  # NOTE: CuPy works on the current GPU
            self._update(new_scale)
        self._per_optimizer = {}

    def _update(self, new_scale) -> None:
        scale = self._scale._data
        xp = backend.array_module(scale)
        dev = self._scale._device
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                v = backend.to_device(new_scale._data, dev).astype(np.float32).reshape(())
            else:
                v = float(new_scale)
            xp.copyto(scale, v)
        else:
            flags = [
                backend.to_device(f, dev)
                for st in self._per_optimizer.values()
                for f in st["found_inf"].values()
            ]
            if not flags:
                raise RuntimeError(
                    "GradScaler.update: no inf checks were recorded; call step() first"
                )
            found = flags[0]
            for f in flags[1:]:
                found = found + f
            found = found > 0
            tracker = self._growth_tracker
            grown = tracker + 1
            grow = xp.logical_and(xp.logical_not(found), grown == self._growth_interval)
            bigger = scale * self._growth_factor
            grow_ok = xp.logical_and(grow, xp.isfinite(bigger))
            new = xp.where(found, scale * self._backoff_factor, xp.where(grow_ok, bigger, scale))
            new_tracker = xp.where(xp.logical_or(found, grow), 0, grown)
            xp.copyto(scale, new.astype(np.float32))
            xp.copyto(tracker, new_tracker.astype(np.int32))

    # ------------------------------------------------------------------ accessors
    def get_scale(self) -> float:
        """The current scale as a Python float (a host read); 1.0 when disabled."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(self._scale._data.item())

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def _get_growth_tracker(self) -> int:
        if self._growth_tracker is None:
            return self._init_growth_tracker
        return int(self._growth_tracker.item())

    def state_dict(self) -> dict[str, Any]:
        """The scaler's state as PyTorch lays it out ({} when disabled)."""
        if not self._enabled:
            return {}
        return {
            "scale": self.get_scale(),
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._get_growth_tracker(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from ``state_dict()``."""
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError(
                "the GradScaler state dict is empty: it was saved from a disabled GradScaler"
            )
        self._init_scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._scale is not None:
            xp = backend.array_module(self._scale._data)
            xp.copyto(self._scale._data, self._init_scale)
            xp.copyto(self._growth_tracker, self._init_growth_tracker)


def _on_device(optimizer) -> bool:
    """Skip a step on the device (no host read): inside a CUDA graph capture, or for an
    optimizer built with ``capturable=True``."""
    from .cuda import graphs

    if graphs.current_capture() is not None or getattr(optimizer, "capturable", False):
        return True
    groups = optimizer.param_groups
    return bool(groups) and all(g.get("capturable") for g in groups)


def is_autocast_available(device_type: str) -> bool:
    """Whether ``autocast`` supports ``device_type`` ("cuda", "cpu", and the fake GPU)."""
    return device_type in _DEFAULT_DTYPES


def _cast_floating(value, device_type: str, dtype):
    """``value`` with its floating tensors of ``device_type`` (not float64) cast to
    ``dtype``; lists, tuples and dicts are walked."""
    if isinstance(value, Tensor):
        if (
            value._device.type == device_type
            and value.is_floating_point()
            and value.dtype is not D.float64
        ):
            return value.to(dtype)
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_floating(v, device_type, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast_floating(v, device_type, dtype) for k, v in value.items()}
    return value


def custom_fwd(fwd: Callable | None = None, *, device_type: str, cast_inputs=None):
    """Decorator for a custom ``autograd.Function``'s ``forward`` under autocast.

    With ``cast_inputs`` None the forward runs in the autocast state around it, and
    ``custom_bwd`` runs the backward in that same state. With ``cast_inputs`` (a dtype),
    inside an autocast region the floating tensors of ``device_type`` among the arguments
    are cast to it and the forward runs with autocast off.

    Example:
        >>> class MyMM(mg.autograd.Function):
        ...     @staticmethod
        ...     @mg.amp.custom_fwd(device_type="cuda", cast_inputs=mg.float32)
        ...     def forward(ctx, a, b): ...
    """
    if not isinstance(device_type, str):
        raise TypeError(
            f"custom_fwd: device_type must be a string such as 'cuda', got {device_type!r}"
        )
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        ctx = args[0]
        active = autograd.autocast_dtypes.get(device_type)
        if cast_inputs is None:
            ctx._fwd_autocast_dtype = active
            return fwd(*args, **kwargs)
        ctx._fwd_autocast_dtype = None
        if active is None:
            return fwd(*args, **kwargs)
        want = D.from_any(cast_inputs)
        args = (ctx, *_cast_floating(args[1:], device_type, want))
        kwargs = _cast_floating(kwargs, device_type, want)
        with autocast(device_type, enabled=False):
            return fwd(*args, **kwargs)

    return decorate_fwd


def custom_bwd(bwd: Callable | None = None, *, device_type: str):
    """Decorator for a custom ``autograd.Function``'s ``backward``: it runs in the autocast
    state its ``custom_fwd`` forward ran in."""
    if not isinstance(device_type, str):
        raise TypeError(
            f"custom_bwd: device_type must be a string such as 'cuda', got {device_type!r}"
        )
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        dt = getattr(args[0], "_fwd_autocast_dtype", None)
        with autocast(device_type, dtype=dt, enabled=dt is not None):
            return bwd(*args, **kwargs)

    return decorate_bwd
