"""Unary ops and activations on 0-d tensors (scalars), forward and gradient, against
PyTorch: NumPy hands back scalars, not arrays, for ops on 0-d arrays, which in-place steps
and device dispatch must not trip over."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import manygrad as mg
import manygrad.nn.functional as MF
from devicematrix import DEVICES

FUNCTIONAL = ["relu", "relu6", "elu", "selu", "celu", "gelu", "silu", "mish", "softplus",
              "softsign", "tanhshrink", "hardtanh", "hardswish", "hardsigmoid", "leaky_relu",
              "logsigmoid", "sigmoid", "tanh", "softshrink", "hardshrink"]  # fmt: skip
TOP = ["abs", "exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "sin",
       "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "atanh",
       "sigmoid", "erf", "erfc", "erfinv", "lgamma", "digamma", "sign", "neg", "reciprocal",
       "square", "trunc", "frac", "ceil", "floor", "round", "deg2rad", "rad2deg", "logit",
       "i0", "sinc", "nan_to_num", "special.expit", "special.ndtr", "special.ndtri",
       "special.log_ndtr", "special.erfcx", "special.i0e", "special.i1", "special.i1e",
       "special.entr"]  # fmt: skip
CASES = [("F", n) for n in FUNCTIONAL] + [("top", n) for n in TOP]


def _fn(root, name):
    for part in name.split("."):
        root = getattr(root, part)
    return root


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("where, name", CASES, ids=[n for _, n in CASES])
def test_zero_dim_forward_and_gradient(where, name, dtype, device):
    m_root, t_root = (MF, TF) if where == "F" else (mg, torch)
    x = mg.tensor(0.3, dtype=getattr(mg, dtype), device=device, requires_grad=True)
    tx = torch.tensor(0.3, dtype=getattr(torch, dtype), requires_grad=True)
    y, ty = _fn(m_root, name)(x), _fn(t_root, name)(tx)
    assert tuple(y.shape) == () and y.dtype.name == str(ty.dtype).split(".")[1]
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
    if ty.requires_grad:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ty.backward()
        y.backward()
        np.testing.assert_allclose(x.grad.cpu().numpy(), tx.grad.numpy(), rtol=1e-4, atol=tol)
