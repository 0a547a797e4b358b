"""PyTorch parity: 16-bit floats with a 0-d tensor operand."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

X = np.random.default_rng(0).standard_normal(2000).astype(np.float32) * 7


def _both(fn):
    """``fn(lib, dtype)``'s results under PyTorch and manygrad, as float32 arrays."""
    out = []
    for t in (torch, mg):
        out.append([np.asarray(r.detach().float().numpy()) for r in fn(t)])
    return out


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("sdtype", ["float32", "float64", "int64", "float16"])
def test_16_bit_tensor_times_a_0d_tensor_reads_the_scalar_at_float32(dtype, sdtype):
    # PyTorch's x * s and x / s read a 0-d second operand at float32, not rounded to 16 bits
    def fn(t):
        x = t.tensor(X).to(getattr(t, dtype))
        s = t.tensor(0.1 if sdtype != "int64" else 2049, dtype=getattr(t, sdtype))
        y = x.clone()
        y *= s
        z = x.clone()
        z /= s
        xg = x.clone().requires_grad_()
        (xg * s).sum().backward()
        return [x * s, x / s, s * x, y, z, t.mul(x, s), x.div(s), xg.grad]

    want, got = _both(fn)
    for k, (w, g) in enumerate(zip(want, got)):
        np.testing.assert_array_equal(g, w, err_msg=f"result {k}")


def test_0d_operand_that_needs_a_gradient_keeps_its_gradient():
    grads = []
    for t in (torch, mg):
        x = t.tensor(X[:8]).to(t.float16)
        s = t.tensor(0.5, requires_grad=True)
        (x * s).float().sum().backward()
        grads.append(float(s.grad))
    assert grads[1] == pytest.approx(grads[0], rel=1e-3)
