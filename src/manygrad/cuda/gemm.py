"""cuBLASLt GEMMs through nvmath-python: fp32 (TF32 only by explicit choice), fp16 and bf16
with fp32 accumulation, batched, with fused bias/ReLU/GELU epilogues; plans cached per shape.

UNVERIFIED: the nvmath calls here have never run on a GPU. The fast path ``cublaslt.matmul``
is off by default (see ``manygrad.kernels.fastpath``); CuPy's matmul (``backend.matmul``)
stays the reference. What runs without a GPU: :func:`spec` (the plan's description: compute
type, epilogue, its inputs and outputs), :func:`linear_specs` (how ``Linear`` maps onto
cuBLASLt's layout) and :func:`reference` (the epilogues in ``xp``), which the tests check.

TF32: fp32 GEMMs use ``COMPUTE_32F`` (full fp32) unless ``MANYGRAD_TF32=1`` or ``tf32=True``
asks for ``COMPUTE_32F_FAST_TF32`` (tensor cores, 10-bit mantissa inputs), as PyTorch's
``allow_tf32`` default for matmul is off.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass

from .. import backend
from ..kernels.launch import UnsupportedCallError

INSTALL = "pip install 'manygrad[cuda12]' (or [cuda13]: CuPy, nvmath-python, cuDNN)"
TF32_ENV = "MANYGRAD_TF32"
DTYPES = ("float32", "float16", "bfloat16")

# epilogue -> (inputs it takes, outputs it adds), as nvmath names them
EPILOGS = {
    "DEFAULT": ((), ()),
    "RELU": ((), ()),
    "GELU": ((), ()),
    "BIAS": (("bias",), ()),
    "RELU_BIAS": (("bias",), ()),
    "GELU_BIAS": (("bias",), ()),
    "RELU_AUX": ((), ("relu_aux",)),
    "GELU_AUX": ((), ("gelu_aux",)),
    "RELU_AUX_BIAS": (("bias",), ("relu_aux",)),
    "GELU_AUX_BIAS": (("bias",), ("gelu_aux",)),
    "DRELU": (("relu_aux",), ()),
    "DGELU": (("gelu_aux",), ()),
    "DRELU_BGRAD": (("relu_aux",), ("drelu_bgrad",)),
    "DGELU_BGRAD": (("gelu_aux",), ("dgelu_bgrad",)),
    "BGRADA": ((), ("bgrada",)),
    "BGRADB": ((), ("bgradb",)),
}


@dataclass(frozen=True)
class GemmSpec:
    """One cuBLASLt plan: ``(..., M, K) @ (..., K, N) -> (..., M, N)`` with an epilogue."""

    batch: tuple[int, ...]
    m: int
    n: int
    k: int
    dtype: str
    compute_type: str
    epilog: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (*self.batch, self.m, self.n)


def tf32_enabled(tf32: bool | None = None) -> bool:
    return os.environ.get(TF32_ENV, "") == "1" if tf32 is None else bool(tf32)


def spec(a_shape, b_shape, dtype, epilog: str = "DEFAULT", tf32: bool | None = None) -> GemmSpec:
    """Describe the plan for ``a @ b``; ``UnsupportedCallError`` when cuBLASLt should not
    take it (the caller falls back to CuPy's matmul).

    Args:
        a_shape, b_shape: ``(..., M, K)`` and ``(..., K, N)``; batch dims equal, or b 2-D.
        dtype: "float32", "float16" or "bfloat16" (both operands).
        epilog: one of ``EPILOGS`` (default "DEFAULT").
        tf32: fp32 on TF32 tensor cores (default: the ``MANYGRAD_TF32`` variable, off).

    Example: ``spec((64, 768), (768, 3072), "bfloat16", "GELU_AUX_BIAS")``.
    """
    dtype = str(dtype)
    if dtype not in DTYPES:
        raise UnsupportedCallError(f"cuBLASLt path takes {', '.join(DTYPES)}, not {dtype}")
    if epilog not in EPILOGS:
        raise ValueError(f"gemm: unknown epilog {epilog!r}; choose from {', '.join(EPILOGS)}")
    a_shape, b_shape = tuple(a_shape), tuple(b_shape)
    if len(a_shape) < 2 or len(b_shape) < 2 or a_shape[-1] != b_shape[-2]:
        raise UnsupportedCallError(
            f"shapes {a_shape} @ {b_shape} are not (..., M, K) @ (..., K, N)"
        )
    batch = a_shape[:-2]
    if len(b_shape) > 2 and b_shape[:-2] != batch:
        raise UnsupportedCallError(f"batch dims differ: {a_shape} @ {b_shape} (broadcast b only)")
    if batch and epilog not in ("DEFAULT", "RELU", "GELU", "BIAS", "RELU_BIAS", "GELU_BIAS"):
        raise UnsupportedCallError(f"epilog {epilog} with batch dims {batch}")
    if dtype == "float32":
        compute = "COMPUTE_32F_FAST_TF32" if tf32_enabled(tf32) else "COMPUTE_32F"
    else:
        compute = "COMPUTE_32F"  # fp16/bf16 inputs, fp32 accumulation, fp16/bf16 output
    ins, outs = EPILOGS[epilog]
    m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
    return GemmSpec(batch, m, n, k, dtype, compute, epilog, ins, outs)


def linear_specs(x_shape, out_features: int, dtype, activation=None, bias=True, training=True):
    """The three GEMMs of ``Linear`` (+ activation) as cuBLASLt plans.

    ``y = act(x Wᵀ + b)`` runs as ``yᵀ = act(W xᵀ + b)``: cuBLASLt's bias has M entries
    (one per row of the result), so M = out_features. Returns ``{"forward", "dgrad",
    "wgrad"}`` specs: forward ``W @ xᵀ`` with ``{act}_AUX_BIAS`` when training (the aux keeps
    what the activation's backward needs); dgrad ``gy @ W`` (the dX product; the previous
    layer's dGELU/dReLU fuses into *its* dgrad as ``DGELU_BGRAD``); wgrad ``gyᵀ @ x`` with
    ``BGRADA``, whose reduction over K of ``gyᵀ`` is the bias gradient.
    """
    *lead, in_f = tuple(x_shape)
    rows = math.prod(lead) if lead else 1
    act = {None: "", "relu": "RELU", "gelu": "GELU"}.get(activation)
    if act is None:
        raise ValueError(f"linear: activation must be None, 'relu' or 'gelu', got {activation!r}")
    parts = [p for p in (act, "AUX" if act and training else "", "BIAS" if bias else "") if p]
    fwd = "_".join(parts) or "DEFAULT"
    return {
        "forward": spec((out_features, in_f), (in_f, rows), dtype, fwd),
        "dgrad": spec((rows, out_features), (out_features, in_f), dtype, "DEFAULT"),
        "wgrad": spec((out_features, rows), (rows, in_f), dtype, "BGRADA" if bias else "DEFAULT"),
    }


def _gelu_tanh(xp, v):
    return 0.5 * v * (1.0 + xp.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v * v * v)))


def _mm32(xp, a, b):
    """The product in float32 (fp32 accumulation, as the cuBLASLt plans)."""
    return backend.matmul(a.astype(xp.float32, copy=False), b.astype(xp.float32, copy=False))


def reference(a, b, epilog: str = "DEFAULT", bias=None):
    """The epilogues without aux outputs, in ``xp`` (the reference the fast path matches):
    returns the result, plus the bias gradient for ``BGRADA``/``BGRADB``.

    NOTE: cuBLASLt's GELU epilogue is the tanh approximation.
    """
    xp = backend.array_module(a)
    if epilog in ("BGRADA", "BGRADB"):
        src = a if epilog == "BGRADA" else b
        axis = -1 if epilog == "BGRADA" else -2
        g = src.astype(xp.float32).sum(axis=axis).astype(a.dtype, copy=False)
        return _mm32(xp, a, b).astype(a.dtype, copy=False), g
    ins, outs = EPILOGS.get(epilog, (None, None))
    if outs is None or outs or any(i.endswith("_aux") for i in ins):
        raise UnsupportedCallError(f"epilog {epilog} has no reference outside cuBLASLt")
    d = _mm32(xp, a, b)
    if "BIAS" in epilog:
        d = d + bias.astype(xp.float32)[:, None]
    if epilog.startswith("RELU"):
        d = xp.maximum(d, 0)
    elif epilog.startswith("GELU"):
        d = _gelu_tanh(xp, d)
    return d.astype(a.dtype, copy=False)


def nvmath_missing() -> str:
    """ "" when nvmath-python imports, else why not and what to install."""
    try:
        import nvmath.linalg.advanced  # noqa: F401
    except Exception as e:
        return f"nvmath-python is not usable ({type(e).__name__}: {e}); {INSTALL}"
    return ""


def options(s: GemmSpec):
    """nvmath ``MatmulOptions`` for a spec (no GPU needed to build them)."""
    from nvmath.linalg import ComputeType
    from nvmath.linalg.advanced import MatmulOptions

    return MatmulOptions(compute_type=ComputeType[s.compute_type])


class PlanCache:
    """Planned nvmath ``Matmul`` objects per (spec, stream), least recently used first out.

    UNVERIFIED on a GPU: ``get`` builds ``Matmul(a, b)`` and plans it once per key; later
    calls swap the operands with ``reset_operands`` and ``execute`` on the current stream.
    """

    def __init__(self, maxsize: int = 64):
        self.maxsize = maxsize
        self._plans: OrderedDict = OrderedDict()
        self.plans_built = 0

    def __len__(self) -> int:
        return len(self._plans)

    def get(self, s: GemmSpec, a, b, epilog_inputs=None, stream=None):
        from nvmath.linalg.advanced import Matmul, MatmulEpilog

        key = (s, stream)
        mm = self._plans.get(key)
        if mm is None:
            mm = Matmul(a, b, options=options(s), stream=stream)
            # NOTE: a plain product is planned with no epilog: nvmath refuses DEFAULT there
            # ("Not supported."; seen on the H200), though MatmulEpilog lists it
            epilog = None if s.epilog == "DEFAULT" else MatmulEpilog[s.epilog]
            mm.plan(epilog=epilog, epilog_inputs=epilog_inputs, stream=stream)
            self.plans_built += 1
            self._plans[key] = mm
            if len(self._plans) > self.maxsize:
                _, old = self._plans.popitem(last=False)
                old.free()
        else:
            self._plans.move_to_end(key)
            mm.reset_operands(a=a, b=b, epilog_inputs=epilog_inputs, stream=stream)
        return mm


_CACHE = PlanCache()


def matmul(a, b, epilog: str = "DEFAULT", bias=None, aux=None, tf32: bool | None = None):
    """``a @ b`` with an epilogue on cuBLASLt (UNVERIFIED): the result, or ``(result,
    outputs)`` when the epilogue adds outputs (aux, bias gradient)."""
    if backend.device_of(a).type != "cuda":
        raise UnsupportedCallError(f"{backend.device_of(a)} has no cuBLASLt")
    why = nvmath_missing()
    if why:
        raise UnsupportedCallError(why)
    s = spec(a.shape, b.shape, a.dtype, epilog, tf32)
    inputs = {}
    if "bias" in s.inputs:
        inputs["bias"] = bias
    for name in ("relu_aux", "gelu_aux"):
        if name in s.inputs:
            inputs[name] = aux
    stream = backend.cuda_module().cuda.get_current_stream().ptr
    mm = _CACHE.get(s, a, b, inputs or None, stream)
    out = mm.execute(stream=stream)
    return out if not s.outputs else (out[0], out[1])
