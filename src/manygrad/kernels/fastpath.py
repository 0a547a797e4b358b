"""The GPU fast paths, their state (verified / unverified / unavailable) and the dispatch
that falls back to the reference with one warning.

A path is *verified* once a run on a real GPU compared it with its reference and the
figures went into ``benchmarks/RESULTS.md``; only then is it on by default. Until then it
is *unverified* and off unless switched on with ``MANYGRAD_FAST_PATHS`` (``all``, or a
comma-separated list of names; ``none`` switches verified ones off too). A path is
*unavailable* where its library or a usable GPU is missing.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from .. import backend
from ..errors import ManygradError
from ._common import LayoutError

ENV = "MANYGRAD_FAST_PATHS"
VERIFIED_STATE, UNVERIFIED, UNAVAILABLE = "verified", "unverified", "unavailable"


class FastPathFallback(UserWarning):
    """A fast path could not serve a call; the reference path ran instead."""


@dataclass(frozen=True)
class FastPath:
    """One GPU fast path and its reference.

    Args:
        name: ``kernels.bias_gelu_forward``, ``cublaslt.matmul``, ...
        what: one line for ``doctor``.
        gpu: the fast implementation (raises to refuse a call).
        ref: the reference implementation (NumPy twin or plain CuPy code).
        requires: a callable giving "" when the path's libraries are present, else why not.
        verified_on: the GPU and date of the run that verified it ("" while unverified).
    """

    name: str
    what: str
    gpu: Callable
    ref: Callable
    requires: Callable[[], str] | None = None
    verified_on: str = ""


# Paths that a run on a real GPU verified: name -> "GPU, date". Add an entry only together
# with that run's figures in benchmarks/RESULTS.md (scripts/gpu-check.sh writes kernels.json).
# NOTE: 2026-12-04 on an H200 (benchmarks/gpu/h200-2026-12-04/kernels.json): every case of
# these matched its twin. Not listed: bias_gelu_backward, layer_norm_backward and
# rms_norm_backward (float32 max rel. error 1e-4 to 3e-4 against the 1e-5 bound) and
# cublaslt.matmul (float32 "Not supported"; bf16 matched). cuDNN's two paths ran in bf16 only.
# The three backward misses were the twins' fault: their float32 column sums (NumPy adds rows
# one after another) were 1e-4 to 3.5e-4 off the exact sums, the kernels' ~1e-5; the twins
# now sum in float64, and the next GPU run decides whether the kernels join this list.
_H200 = "NVIDIA H200, 2026-12-04"
VERIFIED: dict[str, str] = {
    "kernels.bias_gelu": _H200,
    "kernels.cross_entropy": _H200,
    "kernels.cross_entropy_backward": _H200,
    "kernels.layer_norm": _H200,
    "kernels.rms_norm": _H200,
    "kernels.softmax": _H200,
    "kernels.softmax_backward": _H200,
    "kernels.dropout": _H200,
    "kernels.dropout_backward": _H200,
    "kernels.adam_step": _H200,
    "kernels.sgd_step": _H200,
    "cudnn.conv2d": _H200,
    "cudnn.sdpa": _H200,
}

_PATHS: dict[str, FastPath] = {}
_WARNED: set[str] = set()


def register(path: FastPath) -> FastPath:
    _PATHS[path.name] = path
    return path


def paths() -> list[FastPath]:
    return list(_PATHS.values())


def _gpu_missing() -> str:
    ok, why = backend.cuda_status()
    return "" if ok else why.replace(" See `manygrad doctor`.", "")


def verified_on(name: str) -> str:
    """The GPU and date that verified path ``name`` ("" while unverified)."""
    return _PATHS[name].verified_on or VERIFIED.get(name, "")


def state(name: str) -> tuple[str, str]:
    """``(state, reason)`` of the path ``name``."""
    p = _PATHS[name]
    why = (p.requires() if p.requires else "") or _gpu_missing()
    if why:
        return UNAVAILABLE, why
    if verified_on(name):
        return VERIFIED_STATE, f"verified on {verified_on(name)}"
    return UNVERIFIED, "never run on a GPU; off unless MANYGRAD_FAST_PATHS names it"


def enabled(name: str) -> bool:
    """Whether calls on a GPU try the path (the environment's choice, else verified ones)."""
    chosen = os.environ.get(ENV, "").strip()
    if chosen == "none":
        return False
    if chosen == "all":
        return True
    if name in {c.strip() for c in chosen.split(",")}:
        return True
    return bool(verified_on(name))


# device types on which manygrad's ops and optimizers take the fused kernels (``wired``);
# the tests add ``fakegpu`` to run that wiring on the CPU
FUSED_DEVICES = ("cuda",)
FUSED_DTYPES = ("float32", "bfloat16", "float16")


# NOTE: the kernels were verified on their own on a GPU, but the ops that call them (the
# wiring) have not run on one yet: until a GPU run of scripts/fused_wiring_check.py passes,
# ops take a kernel only when MANYGRAD_FAST_PATHS names it (or says "all").
WIRING_VERIFIED = ""


_PLAIN = [0]  # > 0 inside ``plain()``: ops take their plain paths


class plain:  # noqa: N801 - a context, used as ``with fastpath.plain():``
    """Ops inside take their plain paths (a path's reference that calls ops runs in it, so
    that it never re-enters the fast path it stands in for)."""

    def __enter__(self):
        _PLAIN[0] += 1

    def __exit__(self, *exc):
        _PLAIN[0] -= 1
        return False


def wired(name: str, a) -> bool:
    """Whether an op on array ``a`` takes path ``name``: ``a`` on a GPU (``FUSED_DEVICES``),
    of a dtype the kernels take, and the path switched on (by the environment while the
    wiring is unverified). CPU and fakegpu never do."""
    # NOTE: the device first: on the CPU this is the whole cost an op pays (well under 1 us)
    if backend.device_of(a).type not in FUSED_DEVICES or a.dtype.name not in FUSED_DTYPES:
        return False
    if _PLAIN[0]:
        return False
    if not WIRING_VERIFIED:
        chosen = os.environ.get(ENV, "").strip()
        if chosen != "all" and name not in {c.strip() for c in chosen.split(",")}:
            return False
    return enabled(name)


def call(name: str, *args, **kwargs):
    """Run path ``name`` on a GPU when enabled, else (or when it refuses) its reference.

    Errors in the arguments (device, dtype, shape) propagate from either; a refusal
    (unsupported layout or shape, missing library, compile or launch error) falls back to
    the reference with one ``FastPathFallback`` warning per path naming the reason.
    """
    p = _PATHS[name]
    first = next((a for a in args if backend.is_array(a)), None)
    if first is None:
        first = next((a[0] for a in args if isinstance(a, list) and a), None)
    if first is None or backend.device_of(first).type == "cpu" or not enabled(name):
        return p.ref(*args, **kwargs)
    try:
        return p.gpu(*args, **kwargs)
    except LayoutError as e:
        reason = str(e)
    except ManygradError:
        raise
    except Exception as e:  # UnsupportedCallError, a missing library, NVRTC or a launch failing
        reason = f"{type(e).__name__}: {e}"
    if name not in _WARNED:
        _WARNED.add(name)
        warnings.warn(f"fast path {name} fell back to the reference: {reason}",
                      FastPathFallback, stacklevel=3)  # fmt: skip
    return p.ref(*args, **kwargs)


def reset_warnings() -> None:
    """Forget which paths warned already (tests)."""
    _WARNED.clear()


def report() -> list[dict]:
    """One dict per path: name, what, state, enabled, reason (``manygrad doctor``)."""
    out = []
    for p in paths():
        st, why = state(p.name)
        out.append({"name": p.name, "what": p.what, "state": st,
                    "enabled": st != UNAVAILABLE and enabled(p.name), "reason": why})  # fmt: skip
    return out
