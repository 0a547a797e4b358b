"""manygrad: deep learning on NVIDIA GPUs (CuPy) and CPUs (NumPy), with PyTorch's API.

Example:
    >>> import manygrad as mg
    >>> x = mg.randn(3, 4, requires_grad=True)
    >>> (x.exp() * 2).sum().backward()
"""

from . import (  # noqa: F401, I001  # noqa: F401, E402
    amp,
    autograd,
    backend,
    cuda,
    dtypes,
    io,
    nn,  # noqa: F401, E402
    ops,
    optim,
    tensor,  # noqa: F401  (first: ops and autograd build on Tensor)
)
from .amp import autocast  # noqa: F401, E402
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .backend import Device, device
from .creation import *  # noqa: F403
from .dtypes import (  # noqa: F401
    bfloat16,
    double,
    dtype,  # noqa: F401
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
)
from .dtypes import bool_ as bool  # noqa: A004
from .dtypes import float_ as float  # noqa: A004
from .dtypes import int_ as int  # noqa: A004
from .errors import ManygradError  # noqa: F401
from .io import load, save  # noqa: F401, E402
from .ops import *  # noqa: F403
from .ops import abs, all, any, max, min, pow, sum  # noqa: F401, A004

# Heavier subsystems load on first use: mg.data, mg.models, mg.distributed, ...
_LAZY = {"data", "models", "datasets", "distributed", "train", "bench"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'manygrad' has no attribute {name!r}")
from .tensor import Size, Tensor  # noqa: F401

__version__ = "0.1.0"
