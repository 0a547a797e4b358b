"""manygrad: deep learning on NVIDIA GPUs (CuPy) and CPUs (NumPy), with PyTorch's API.

Example:
    >>> import manygrad as mg
    >>> x = mg.randn(3, 4, requires_grad=True)
    >>> (x.exp() * 2).sum().backward()
"""
# isort: skip_file
# NOTE: the order matters: tensor first (ops and autograd build on Tensor), then the rest.

__version__ = "0.1.0"

import warnings as _warnings

# NOTE: inf and NaN results come silently, as from PyTorch's (and CuPy's) kernels: NumPy's
# floating-point RuntimeWarnings are ignored when raised inside manygrad only, so the
# user's own NumPy code keeps its warnings
_warnings.filterwarnings(
    "ignore",
    message=r"(divide by zero|invalid value|overflow|underflow) encountered",
    category=RuntimeWarning,
    module=r"manygrad(\.|$)",
)

from . import tensor
from . import autograd, backend, cuda, dtypes, ops
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .backend import Device, device
from .creation import *
from .compat.torch_api import *
from .compat.torch_functions import *
from .compat.torch_functions_more import *
from .compat.torch_foreach import *
from .compat.torch_low_level import *
from .compat.torch_low_level_rnn import *
from .compat.torch_low_level_misc import *
from .compat.torch_low_level_norm import *
from .compat.torch_checks import *
from .compat.torch_names_extra import *
from .dtypes import (
    bfloat16,
    cdouble,
    cfloat,
    complex64,
    complex128,
    double,
    dtype,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int8,
    int16,
    int32,
    int64,
    long,
    set_default_dtype,
    short,
    uint8,
    uint16,
    uint32,
    uint64,
)
from .dtypes import bool_ as bool
from .dtypes import float_ as float
from .dtypes import int_ as int
from .dtypes import float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz, float8_e8m0fnu
from .dtypes import qint8, qint32, quint4x2, quint8
from .errors import ManygradError, OutOfMemoryError
from .ops import *
from .ops import abs, all, any, max, min, pow, sum
from .ops.decompositions import svd_legacy as svd
from .ops.linalg_legacy import lu, lu_solve, triangular_solve
from .compat.torch_functions import embedding  # torch's (weight, indices) order
from .tensor import Size, Tensor
from . import nn
from . import sparse
from ._sparse_extra import (
    ccol_indices_copy,
    col_indices_copy,
    crow_indices_copy,
    hsmm,
    hspmm,
    indices_copy,
    row_indices_copy,
    smm,
    sspaddmm,
    values_copy,
)
from .sparse import (
    _mkldnn,
    jagged,
    layout,
    sparse_bsc,
    sparse_bsc_tensor,
    sparse_bsr,
    sparse_bsr_tensor,
    sparse_compressed_tensor,
    sparse_coo,
    sparse_coo_tensor,
    sparse_csc,
    sparse_csc_tensor,
    sparse_csr,
    sparse_csr_tensor,
    spmm,
    strided,
)
from . import amp, io, optim
from .amp import GradScaler, autocast
import math as _math

inf, nan, pi, e = _math.inf, _math.nan, _math.pi, _math.e
newaxis = None
from .io import load, save
from .spectral import istft, stft
from .threads import get_num_threads, set_num_threads
from .memory_format import (  # noqa: E402
    channels_last,
    channels_last_3d,
    contiguous_format,
    memory_format,
    preserve_format,
)
from .control_flow import cond, while_loop  # noqa: E402
from . import _higher_order_ops  # noqa: E402, F401
from .ops.lobpcg import lobpcg  # noqa: E402
from .ops.segment import segment_reduce  # noqa: E402

# Heavier subsystems load on first use: mg.data, mg.models, mg.distributed, ...
_LAZY = {"data", "models", "datasets", "distributed", "train", "bench", "onnx", "func", "utils"}
_LAZY |= {"distributions", "accelerator", "backends", "serialization", "compat", "compiler"}
_LAZY |= {"linalg", "special", "random", "fft", "jit", "profiler", "signal", "cpu", "overrides"}
_LAZY |= {"masked", "quasirandom", "hub", "nested", "futures", "fx", "library", "export"}


# quantized tensors (manygrad.ao.qtensor: quantize_per_tensor, per_tensor_affine, ...),
# imported at first use
_QUANTIZED = {
    "QTensor", "qscheme", "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
    "per_channel_symmetric", "per_channel_affine_float_qparams", "quantize_per_tensor",
    "quantize_per_tensor_dynamic", "quantize_per_channel", "dequantize", "int_repr", "q_scale",
    "q_zero_point", "q_per_channel_scales", "q_per_channel_zero_points", "q_per_channel_axis",
}  # fmt: skip


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    if name in _QUANTIZED:
        from .ao import qtensor

        return getattr(qtensor, name)
    if name == "fused_moving_avg_obs_fake_quant":
        from .ao.quantization._fused_fq import fused_moving_avg_obs_fake_quant

        return fused_moving_avg_obs_fake_quant
    raise AttributeError(f"module 'manygrad' has no attribute {name!r}")


# PyTorch's out= keyword on the functions that take it there
from . import _out  # noqa: E402

_out.add_out(__import__(__name__), _out.TORCH)
_out.add_dim_aliases(__import__(__name__))  # and NumPy's axis= / keepdims= names
_out.add_dim_aliases(Tensor)
