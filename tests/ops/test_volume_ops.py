"""3-d convolutions and pooling, instance and local response normalisation against
PyTorch, and their modules from PyTorch's initial weights."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "specs, kw",
    [
        ([(2, 3, 4, 5, 5), (4, 3, 2, 3, 3), (4,)], {}),
        ([(1, 4, 5, 4, 6), (6, 2, 3, 2, 3)], dict(stride=(2, 1, 2), padding=(1, 0, 1), groups=2)),
        ([(1, 2, 6, 5, 5), (2, 2, 2, 3, 2)], dict(dilation=(2, 1, 2), padding=1)),
        ([(2, 4, 4, 4), (3, 2, 3, 3, 3), (3,)], dict(padding="same")),
    ],
)
def test_conv3d(specs, kw):
    check_op("conv3d", specs, **kw)


@pytest.mark.parametrize(
    "specs, kw",
    [
        ([(2, 3, 3, 4, 4), (3, 2, 2, 3, 3), (2,)], {}),
        ([(1, 4, 3, 3, 4), (4, 2, 3, 2, 3), (4,)],
         dict(stride=(2, 1, 2), padding=(1, 0, 1), output_padding=(1, 0, 1), groups=2)),
        ([(1, 2, 3, 3, 3), (2, 3, 2, 2, 2)], dict(stride=3, dilation=(2, 1, 1), padding=2,
                                                   output_padding=(2, 0, 1))),
        ([(2, 3, 4, 4), (2, 2, 2, 2, 2)], dict(stride=2)),
    ],
)  # fmt: skip
def test_conv_transpose3d(specs, kw):
    check_op("conv_transpose3d", specs, **kw)


@pytest.mark.parametrize(
    "name, shape, kw",
    [
        ("max_pool3d", (2, 3, 4, 6, 6), dict(kernel_size=2)),
        ("max_pool3d", (1, 2, 5, 6, 7), dict(kernel_size=(3, 2, 3), stride=(2, 1, 2),
                                             padding=1, ceil_mode=True)),
        ("max_pool3d", (2, 5, 6, 7), dict(kernel_size=2, dilation=(2, 1, 2))),
        ("max_pool3d", (2, 3, 4, 6, 6), dict(kernel_size=2, return_indices=True)),
        ("max_pool3d", (1, 2, 5, 6, 7), dict(kernel_size=(3, 2, 3), stride=(2, 1, 2),
                                             padding=1, ceil_mode=True, return_indices=True)),
        ("avg_pool3d", (2, 3, 4, 6, 6), dict(kernel_size=2)),
        ("avg_pool3d", (1, 2, 5, 6, 7), dict(kernel_size=3, stride=2, padding=1)),
        ("avg_pool3d", (1, 2, 5, 6, 7), dict(kernel_size=3, stride=2, padding=1,
                                             count_include_pad=False, ceil_mode=True)),
        ("avg_pool3d", (1, 2, 5, 6, 7), dict(kernel_size=(2, 3, 2), divisor_override=5)),
        ("adaptive_avg_pool3d", (2, 3, 5, 6, 7), dict(output_size=(2, 3, 4))),
        ("adaptive_avg_pool3d", (3, 5, 6, 7), dict(output_size=1)),
        ("adaptive_avg_pool3d", (1, 3, 5, 6, 7), dict(output_size=(None, 2, 7))),
    ],
)  # fmt: skip
def test_pool3d(name, shape, kw):
    check_op(name, [shape], torch_fn=getattr(torch.nn.functional, name), **kw)


@pytest.mark.parametrize(
    "specs, kw",
    [
        ([(2, 3, 5)], {}),
        ([(2, 3, 4, 5), None, None, (3,), (3,)], {}),
        ([(2, 3, 2, 3, 4)], dict(eps=1e-3)),
    ],
)
def test_instance_norm(specs, kw):
    check_op(
        mg.nn.functional.instance_norm, specs, torch_fn=torch.nn.functional.instance_norm, **kw
    )


def test_instance_norm_running_stats():
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 6))
    t_rm, t_rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    m_rm, m_rv = mg.zeros(3, dtype=mg.float64), mg.ones(3, dtype=mg.float64)
    ty = torch.nn.functional.instance_norm(torch.tensor(x), t_rm, t_rv, momentum=0.3)
    my = mg.nn.functional.instance_norm(mg.tensor(x), m_rm, m_rv, momentum=0.3)
    np.testing.assert_allclose(my.numpy(), ty.numpy(), rtol=1e-10)
    np.testing.assert_allclose(m_rm.numpy(), t_rm.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(m_rv.numpy(), t_rv.numpy(), rtol=1e-10)
    ty = torch.nn.functional.instance_norm(torch.tensor(x), t_rm, t_rv, use_input_stats=False)
    my = mg.nn.functional.instance_norm(mg.tensor(x), m_rm, m_rv, use_input_stats=False)
    np.testing.assert_allclose(my.numpy(), ty.numpy(), rtol=1e-10)


@pytest.mark.parametrize(
    "shape, kw",
    [((2, 6, 5), dict(size=3)), ((2, 5, 3, 4), dict(size=2, alpha=0.1, beta=0.6, k=2.0)),
     ((1, 4, 2, 3, 3), dict(size=4, alpha=0.5))],
)  # fmt: skip
def test_local_response_norm(shape, kw):
    check_op("local_response_norm", [shape], **kw)


@pytest.mark.parametrize(
    "cls, args, kw, shape",
    [
        ("Conv3d", (3, 4, 3), dict(padding=1), (2, 3, 4, 5, 5)),
        ("Conv3d", (4, 6, (2, 3, 1)), dict(stride=2, groups=2, bias=False), (1, 4, 5, 6, 4)),
        ("Conv3d", (2, 3, 3), dict(padding="same", padding_mode="reflect"), (1, 2, 4, 4, 5)),
        ("ConvTranspose3d", (4, 2, 3), dict(stride=2, padding=1, output_padding=1),
         (1, 4, 3, 3, 2)),
        ("BatchNorm3d", (3,), {}, (2, 3, 2, 3, 3)),
        ("InstanceNorm1d", (3,), {}, (2, 3, 6)),
        ("InstanceNorm2d", (3,), dict(affine=True, track_running_stats=True), (2, 3, 4, 5)),
        ("InstanceNorm3d", (3,), dict(affine=True), (3, 2, 3, 4)),
        ("LocalResponseNorm", (3,), {}, (2, 5, 4, 4)),
        ("MaxPool3d", (2,), dict(stride=1), (1, 2, 3, 4, 4)),
        ("AvgPool3d", (2,), dict(padding=1), (1, 2, 3, 4, 4)),
        ("AdaptiveAvgPool3d", ((2, 2, 3),), {}, (1, 2, 3, 4, 5)),
    ],
)  # fmt: skip
def test_modules(cls, args, kw, shape):
    torch.manual_seed(0)
    tm = getattr(torch.nn, cls)(*args, **kw).double()
    mm = getattr(mg.nn, cls)(*args, **kw).double()
    mm.load_state_dict({k: mg.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(1).standard_normal(shape)
    for _ in range(2):  # training twice (running statistics), then evaluation
        tx, mx = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
        ty, my = tm(tx), mm(mx)
        np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-9,
                                   atol=1e-11)  # fmt: skip
        u = np.random.default_rng(2).standard_normal(tuple(ty.shape))
        ty.backward(torch.tensor(u))
        my.backward(mg.tensor(u))
        np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    for (n, tp), (_, mp) in zip(tm.named_parameters(), mm.named_parameters()):
        np.testing.assert_allclose(mp.grad.numpy(), tp.grad.numpy(), rtol=1e-9, err_msg=n)
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(mm.state_dict()[k].numpy(), v.numpy(), rtol=1e-9, err_msg=k)
    tm.eval()
    mm.eval()
    np.testing.assert_allclose(mm(mg.tensor(x)).detach().numpy(),
                               tm(torch.tensor(x)).detach().numpy(), rtol=1e-9, atol=1e-11)  # fmt: skip
    assert repr(mm) == repr(tm)


def test_bad_input():
    F = mg.nn.functional
    with pytest.raises(mg.errors.ShapeError, match="conv3d"):
        F.conv3d(mg.randn(1, 3, 4, 4), mg.randn(2, 3, 2, 2))
    with pytest.raises(mg.errors.ShapeError, match="InstanceNorm2d"):
        mg.nn.InstanceNorm2d(3)(mg.randn(2, 3))
