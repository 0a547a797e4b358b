"""Products, linear layers and convolutions take operands of one dtype, as in PyTorch: a
float64 input (a NumPy array) into a float32 model is an error naming both dtypes, not a
silent float64 computation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import manygrad as mg
import manygrad.nn.functional as MF

F64 = "float64"
CASES = {
    "matmul": lambda lib, fn, d: lib.matmul(lib.ones(2, 3), lib.ones(3, 2, dtype=d)),
    "mm": lambda lib, fn, d: lib.mm(lib.ones(2, 3, dtype=d), lib.ones(3, 2)),
    "bmm": lambda lib, fn, d: lib.bmm(lib.ones(1, 2, 3), lib.ones(1, 3, 2, dtype=d)),
    "dot": lambda lib, fn, d: lib.dot(lib.ones(3), lib.ones(3, dtype=d)),
    "mv": lambda lib, fn, d: lib.mv(lib.ones(2, 3), lib.ones(3, dtype=d)),
    "addmm": lambda lib, fn, d: lib.addmm(lib.ones(2, 2, dtype=d), lib.ones(2, 3), lib.ones(3, 2)),
    "baddbmm": lambda lib, fn, d: lib.baddbmm(
        lib.ones(1, 2, 2, dtype=d), lib.ones(1, 2, 3), lib.ones(1, 3, 2)
    ),
    "linear": lambda lib, fn, d: fn.linear(lib.ones(2, 3, dtype=d), lib.ones(4, 3)),
    "linear_bias": lambda lib, fn, d: fn.linear(
        lib.ones(2, 3), lib.ones(4, 3), lib.ones(4, dtype=d)
    ),
    "conv1d": lambda lib, fn, d: fn.conv1d(lib.ones(1, 1, 5, dtype=d), lib.ones(1, 1, 3)),
    "conv2d": lambda lib, fn, d: fn.conv2d(lib.ones(1, 1, 4, 4), lib.ones(1, 1, 3, 3, dtype=d)),
    "conv2d_bias": lambda lib, fn, d: fn.conv2d(
        lib.ones(1, 1, 4, 4), lib.ones(1, 1, 3, 3), lib.ones(1, dtype=d)
    ),
    "conv3d": lambda lib, fn, d: fn.conv3d(
        lib.ones(1, 1, 3, 3, 3, dtype=d), lib.ones(1, 1, 2, 2, 2)
    ),
    "conv_transpose2d": lambda lib, fn, d: fn.conv_transpose2d(
        lib.ones(1, 1, 4, 4), lib.ones(1, 1, 3, 3, dtype=d)
    ),
    "conv_transpose3d": lambda lib, fn, d: fn.conv_transpose3d(
        lib.ones(1, 1, 3, 3, 3), lib.ones(1, 1, 2, 2, 2, dtype=d)
    ),
    "int_float_mm": lambda lib, fn, d: lib.mm(lib.ones(2, 3, dtype=lib.int64), lib.ones(3, 2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_mixed_dtypes_refused_as_pytorch(name):
    with pytest.raises(RuntimeError):
        CASES[name](torch, TF, torch.float64)
    with pytest.raises(RuntimeError, match=r"float64|int64") as e:
        CASES[name](mg, MF, mg.float64)
    assert isinstance(e.value, TypeError)  # NOTE: manygrad's DTypeError is both
    assert "must be the same dtype" in str(e.value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_dtype_still_works(name, device):
    if name == "int_float_mm":
        pytest.skip("an integer and a float operand are mixed by construction")

    class _On:  # the same builders, everything float64 on the device under test
        def __getattr__(self, attr):
            f = getattr(mg, attr)
            if attr in ("ones",):
                return lambda *s, dtype=None: f(*s, dtype=mg.float64, device=device)
            return f

    out = CASES[name](_On(), MF, mg.float64)
    assert out.dtype == mg.float64 and out.device == mg.device(device)


def test_numpy_input_into_float32_model_names_the_fix():
    model = mg.nn.Linear(3, 2)
    x = mg.from_numpy(np.ones((1, 3)))  # float64, as NumPy makes it
    with pytest.raises(RuntimeError, match=r"call \.float\(\)"):
        model(x)
    assert model(x.float()).dtype == mg.float32


def test_attention_operands_share_one_dtype():
    q, k = mg.ones(1, 2, 3), mg.ones(1, 2, 3, dtype=mg.float64)
    with pytest.raises(RuntimeError):
        TF.scaled_dot_product_attention(torch.ones(1, 2, 3), torch.ones(1, 2, 3).double(),
                                        torch.ones(1, 2, 3))  # fmt: skip
    with pytest.raises(TypeError, match="query has dtype float32 but key has dtype float64"):
        MF.scaled_dot_product_attention(q, k, q)
    with mg.autocast("cpu", dtype=mg.bfloat16):  # autocast casts all three first
        assert MF.scaled_dot_product_attention(q, k, q).dtype == mg.bfloat16
