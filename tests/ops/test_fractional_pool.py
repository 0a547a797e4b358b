"""Fractional max pooling: with the same random samples, PyTorch's windows, values, indices
and gradients, in 2-d and 3-d, on every device; fresh windows per call otherwise."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.ops.fractional_pool import fractional_max_pool2d, fractional_max_pool3d

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(0)
TF = torch.nn.functional

CASES2 = [{"kernel_size": 2, "output_size": (5, 4)},
          {"kernel_size": (3, 2), "output_ratio": (0.6, 0.6)},
          {"kernel_size": 1, "output_size": (11, 1)}]  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", CASES2, ids=["size", "ratio", "edges"])
def test_2d_equals_pytorch(kw, dtype, device):
    x = RNG.standard_normal((2, 3, 11, 9)).astype(dtype)
    u = RNG.uniform(0, 1, (2, 3, 2)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    xm = mg.tensor(x, device=device, requires_grad=True)
    ot, it = TF.fractional_max_pool2d(xt, return_indices=True, _random_samples=torch.tensor(u),
                                      **kw)  # fmt: skip
    om, im = fractional_max_pool2d(xm, return_indices=True,
                                   _random_samples=mg.tensor(u, device=device), **kw)  # fmt: skip
    np.testing.assert_array_equal(om.detach().cpu().numpy(), ot.detach().numpy())
    np.testing.assert_array_equal(im.cpu().numpy(), it.numpy())
    ot.pow(2).sum().backward()
    om.pow(2).sum().backward()
    np.testing.assert_allclose(xm.grad.cpu().numpy(), xt.grad.numpy(), rtol=1e-6)


def test_3d_unbatched_and_modules():
    x, u = RNG.standard_normal((2, 2, 7, 8, 9)), RNG.uniform(0, 1, (2, 2, 3))
    ot, it = TF.fractional_max_pool3d(torch.tensor(x), kernel_size=2, output_size=(4, 5, 3),
                                      return_indices=True, _random_samples=torch.tensor(u))  # fmt: skip
    om, im = fractional_max_pool3d(mg.tensor(x), kernel_size=2, output_size=(4, 5, 3),
                                   return_indices=True, _random_samples=mg.tensor(u))  # fmt: skip
    np.testing.assert_array_equal(om.numpy(), ot.numpy())
    np.testing.assert_array_equal(im.numpy(), it.numpy())
    x2, u2 = RNG.standard_normal((3, 11, 9)), RNG.uniform(0, 1, (1, 3, 2))
    want = TF.fractional_max_pool2d(torch.tensor(x2), 2, output_size=(5, 4),
                                    _random_samples=torch.tensor(u2))  # fmt: skip
    mod = mg.nn.FractionalMaxPool2d(2, output_size=(5, 4), _random_samples=mg.tensor(u2))
    np.testing.assert_array_equal(mod(mg.tensor(x2)).numpy(), want.numpy())
    free = mg.nn.FractionalMaxPool2d(3, output_ratio=0.5)
    y = mg.randn(1, 1, 16, 16)
    assert tuple(free(y).shape) == (1, 1, 8, 8)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="output size, or a pooling ratio"):
        mg.nn.FractionalMaxPool2d(2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        mg.nn.FractionalMaxPool2d(2, output_ratio=1.5)
    with pytest.raises(mg.ManygradError, match="too large"):
        fractional_max_pool2d(mg.randn(1, 1, 5, 5), 3, output_size=(4, 4))
