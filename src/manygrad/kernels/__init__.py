"""Fused GPU kernels, each one CUDA C source (math body + launch skeleton) beside its
NumPy twin.

The twins are the reference: the CPU and ``fakegpu`` run them, and tests compare the C
math bodies (built for the CPU) and the GPU launches with them. On a GPU the CuPy launch
of a kernel is a *fast path* (``fastpath.py``): off by default until a GPU run verified
it, and falling back to the twin with one warning when it cannot serve a call. The CPU
code of manygrad's ops and optimizers does not use this package.

    >>> from manygrad import kernels
    >>> y = kernels.bias_gelu(x, b, "tanh")       # twin on CPU; CuPy launch if enabled
    >>> [k.name for k in kernels.registry.kernels()]
"""

from __future__ import annotations

from . import fastpath, registry
from . import gelu as _bg
from . import norms as _nm
from . import optim_step as _os
from . import rng_dropout as _do
from . import row_softmax as _sm
from . import xent as _ce
from .fastpath import FastPath, FastPathFallback

_ENTRIES = [
    # path name, what, gpu, reference
    ("bias_gelu", "bias + GELU forward", _bg.gpu_forward, _bg.bias_gelu_forward),
    ("bias_gelu_backward", "bias + GELU backward", _bg.gpu_backward, _bg.bias_gelu_backward),
    ("cross_entropy", "softmax + cross-entropy forward (+ dlogits in the same pass)",
     None, None),
    ("cross_entropy_backward", "cross-entropy dlogits from the saved log-sum-exp",
     _ce.gpu_backward, _ce.cross_entropy_backward),
    ("layer_norm", "LayerNorm forward", _nm.gpu_layer_norm_forward, _nm.layer_norm_forward),
    ("layer_norm_backward", "LayerNorm backward (dx, dweight, dbias)",
     _nm.gpu_layer_norm_backward, _nm.layer_norm_backward),
    ("rms_norm", "RMSNorm forward", _nm.gpu_rms_norm_forward, _nm.rms_norm_forward),
    ("rms_norm_backward", "RMSNorm backward", _nm.gpu_rms_norm_backward, _nm.rms_norm_backward),
    ("softmax", "row softmax (scale, causal mask) forward", _sm.gpu_forward, _sm.softmax_forward),
    ("softmax_backward", "row softmax backward", _sm.gpu_backward, _sm.softmax_backward),
    ("dropout", "dropout (+ residual) forward", _do.gpu_forward, _do.dropout_forward),
    ("dropout_backward", "dropout backward from (seed, offset)", _do.gpu_backward,
     _do.dropout_backward),
    ("adam_step", "multi-tensor Adam/AdamW step", None, _os.adam_step),
    ("sgd_step", "multi-tensor SGD (momentum) step", None, _os.sgd_step),
]  # fmt: skip


def _ce_ref(logits, target, ignore_index=-100, label_smoothing=0.0, dloss=None):
    loss, lse = _ce.cross_entropy_forward(logits, target, ignore_index, label_smoothing)
    dx = None
    if dloss is not None:
        dx = _ce.cross_entropy_backward(logits, target, lse, dloss, ignore_index, label_smoothing)
    return loss, lse, dx


def _adam_gpu(*a, **k):
    return _os.gpu_step(True, *a, **k)


def _sgd_gpu(*a, **k):
    return _os.gpu_step(False, *a, **k)


_GPU = {"cross_entropy": _ce.gpu_forward, "adam_step": _adam_gpu, "sgd_step": _sgd_gpu}
_REF = {"cross_entropy": _ce_ref}
for _name, _what, _gpu, _ref in _ENTRIES:
    fastpath.register(FastPath(f"kernels.{_name}", _what, _gpu or _GPU[_name],
                               _ref or _REF[_name]))  # fmt: skip


def _dispatch(name):
    def run(*args, **kwargs):
        return fastpath.call(f"kernels.{name}", *args, **kwargs)

    run.__name__ = name
    run.__doc__ = f"{dict((e[0], e[1]) for e in _ENTRIES)[name]}: the CuPy kernel when the fast path is on, else the NumPy twin."  # noqa: E501
    return run


bias_gelu = _dispatch("bias_gelu")
bias_gelu_backward = _dispatch("bias_gelu_backward")
cross_entropy = _dispatch("cross_entropy")
cross_entropy_backward = _dispatch("cross_entropy_backward")
layer_norm = _dispatch("layer_norm")
layer_norm_backward = _dispatch("layer_norm_backward")
rms_norm = _dispatch("rms_norm")
rms_norm_backward = _dispatch("rms_norm_backward")
softmax = _dispatch("softmax")
softmax_backward = _dispatch("softmax_backward")
dropout = _dispatch("dropout")
dropout_backward = _dispatch("dropout_backward")
adam_step = _dispatch("adam_step")
sgd_step = _dispatch("sgd_step")
reduce_loss = _ce.reduce_loss
hyper, flags = _os.hyper, _os.flags

__all__ = ["FastPath", "FastPathFallback", "fastpath", "registry", "bias_gelu",
           "bias_gelu_backward", "cross_entropy", "cross_entropy_backward", "layer_norm",
           "layer_norm_backward", "rms_norm", "rms_norm_backward", "softmax",
           "softmax_backward", "dropout", "dropout_backward", "adam_step", "sgd_step",
           "reduce_loss", "hyper", "flags"]  # fmt: skip


def _lazy(module: str, attr: str):
    """``manygrad.cuda.<module>.<attr>``, imported on first call (``cuda`` imports us)."""

    def run(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(f"manygrad.cuda.{module}"), attr)(*args, **kwargs)

    return run


def _lazy_op(module: str, attr: str):
    """``manygrad.ops.<module>.<attr>``, imported on first call."""

    def run(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(f"manygrad.ops.{module}"), attr)(*args, **kwargs)

    return run


def _register_library_paths() -> None:
    """The vendor-library fast paths of ``manygrad.cuda`` (cuBLASLt, cuDNN), off by default."""
    fastpath.register(FastPath("cublaslt.matmul", "GEMMs on cuBLASLt (nvmath), fused epilogues",
                               _lazy("gemm", "matmul"), _lazy("gemm", "reference"),
                               requires=_lazy("gemm", "nvmath_missing")))  # fmt: skip
    fastpath.register(FastPath("rnn.sequence", "LSTM/GRU layers as one op per layer over the "
                               "whole sequence (CPU and fakegpu always)",
                               _lazy_op("rnn", "fused_layers"), _lazy_op("rnn", "rnn_layer")))  # fmt: skip
    fastpath.register(FastPath("cublaslt.direct", "bf16/fp16 products on cuBLASLt, no float32 "
                               "copies (the capture-safe path)", _lazy("ltgemm", "matmul"),
                               _lazy("ltgemm", "reference"),
                               requires=_lazy("ltgemm", "nvmath_missing")))  # fmt: skip
    for name, what, mod, fn in (
        ("conv2d", "conv2d forward (+ bias, ReLU) as a cuDNN graph", "cudnn_graphs", "conv2d"),
        ("conv2d_dgrad", "conv2d input gradient as a cuDNN graph", "cudnn_train",
         "conv2d_backward_data"),
        ("conv2d_wgrad", "conv2d weight gradient as a cuDNN graph", "cudnn_train",
         "conv2d_backward_weight"),
        ("sdpa", "flash attention forward (cuDNN SDPA, bf16/fp16)", "cudnn_graphs", "sdpa"),
        ("sdpa_train", "flash attention forward with softmax stats (training)", "cudnn_train",
         "sdpa_train"),
        ("sdpa_grad", "flash attention backward (cuDNN SDPA, bf16/fp16)", "cudnn_train",
         "sdpa_grad"),
    ):  # fmt: skip
        fastpath.register(FastPath(f"cudnn.{name}", what, _lazy(mod, fn),
                                   _lazy(mod, f"{fn}_reference"),
                                   requires=_lazy("cudnn_graphs", "cudnn_missing")))  # fmt: skip


_register_library_paths()
