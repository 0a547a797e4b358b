"""Lazy layers: sizes read from the first input, the same parameter objects, PyTorch's
shapes and the layer they become."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "cls, args, kw, shape",
    [
        ("LazyLinear", (5,), {}, (3, 7)),
        ("LazyConv1d", (4, 3), dict(padding=1), (2, 6, 9)),
        ("LazyConv2d", (4, 3), dict(stride=2, groups=2), (2, 6, 9, 9)),
        ("LazyConv3d", (4, 2), {}, (1, 3, 4, 5, 5)),
        ("LazyConvTranspose1d", (4, 2), dict(stride=2), (2, 6, 5)),
        ("LazyConvTranspose2d", (4, 3), {}, (2, 6, 5, 5)),
        ("LazyConvTranspose3d", (2, 2), {}, (1, 3, 3, 3, 3)),
        ("LazyBatchNorm1d", (), {}, (4, 6)),
        ("LazyBatchNorm2d", (), {}, (4, 6, 3, 3)),
        ("LazyBatchNorm3d", (), dict(affine=False), (2, 6, 2, 3, 3)),
        ("LazyInstanceNorm1d", (), dict(affine=True), (2, 6, 8)),
        ("LazyInstanceNorm2d", (), dict(affine=True, track_running_stats=True), (2, 6, 4, 4)),
        ("LazyInstanceNorm3d", (), {}, (2, 6, 2, 3, 3)),
    ],
)
def test_lazy_layers(cls, args, kw, shape):
    tm = getattr(torch.nn, cls)(*args, **kw).double()
    mm = getattr(mg.nn, cls)(*args, **kw).double()
    params = list(mm.parameters())
    opt = mg.optim.SGD(params, lr=0.1) if params else None
    x = np.random.default_rng(0).standard_normal(shape)
    ty = tm(torch.tensor(x))
    my = mm(mg.tensor(x))
    assert type(mm).__name__ == type(tm).__name__  # the ordinary layer now
    assert [id(p) for p in mm.parameters()] == [id(p) for p in params]
    t_sd = tm.state_dict()
    assert list(mm.state_dict()) == list(t_sd)
    for k, v in t_sd.items():
        assert tuple(mm.state_dict()[k].shape) == tuple(v.shape), k
    assert repr(mm) == repr(tm)
    mm.load_state_dict({k: mg.tensor(v.numpy()) for k, v in t_sd.items()})
    my = mm(mg.tensor(x))
    np.testing.assert_allclose(my.detach().numpy(), tm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-9, atol=1e-11)  # fmt: skip
    assert ty.shape == tuple(my.shape)
    if opt is not None:
        my.sum().backward()
        opt.step()  # the optimizer made before the first call updates the real parameters
        assert all(p.grad is not None for p in params)
