"""F's in-place activations (relu_, elu_, ...) and init.dirac_ / sparse_ against PyTorch."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

INPLACE = [("relu_", ()), ("elu_", ()), ("celu_", ()), ("selu_", ()), ("leaky_relu_", (0.2,)),
           ("hardtanh_", ()), ("threshold_", (0.5, -1.0))]  # fmt: skip


@pytest.mark.parametrize("name,args", INPLACE, ids=[n for n, _ in INPLACE])
def test_in_place_activations(name, args, device):
    a = np.array([-1.5, -0.2, 0.3, 2.0])
    xm, xt = mg.tensor(a, device=device), torch.tensor(a)
    out = getattr(mg.nn.functional, name)(xm, *args)
    getattr(torch.nn.functional, name)(xt, *args)
    assert out is xm
    np.testing.assert_allclose(xm.cpu().numpy(), xt.numpy(), rtol=1e-12)


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((2, 2, 3, 1, 3), 1)])
def test_dirac(shape, groups):
    wm, wt = mg.empty(*shape), torch.empty(*shape)
    mg.nn.init.dirac_(wm, groups=groups)
    torch.nn.init.dirac_(wt, groups=groups)
    np.testing.assert_array_equal(wm.numpy(), wt.numpy())


def test_sparse_zeros_the_asked_share_of_each_column():
    w = mg.empty(10, 6)
    mg.nn.init.sparse_(w, sparsity=0.3, std=0.5)
    zeros = (w.numpy() == 0).sum(0)
    np.testing.assert_array_equal(zeros, np.full(6, 3))
    assert 0.1 < float(w.numpy()[w.numpy() != 0].std()) < 2.0
    with pytest.raises(ValueError, match="2 dimensions"):
        mg.nn.init.sparse_(mg.empty(3), 0.5)
