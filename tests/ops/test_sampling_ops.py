"""interpolate, grid_sample, affine_grid, fold/unfold, pixel (un)shuffle and the padding
modes against PyTorch."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "shape, kw",
    [
        ((2, 3, 5), dict(scale_factor=2)),
        ((2, 3, 5), dict(size=8, mode="linear")),
        ((2, 3, 5), dict(size=3, mode="linear", align_corners=True)),
        ((1, 2, 4, 5), dict(scale_factor=2)),
        ((1, 2, 4, 5), dict(size=(7, 3))),
        ((1, 2, 4, 5), dict(scale_factor=1.7, mode="nearest-exact")),
        ((1, 2, 4, 5), dict(scale_factor=(1.5, 0.7))),
        ((1, 2, 4, 5), dict(scale_factor=2, mode="bilinear")),
        ((1, 2, 4, 5), dict(size=(6, 9), mode="bilinear", align_corners=True)),
        ((1, 2, 4, 5), dict(size=(3, 2), mode="bilinear")),
        ((1, 2, 4, 5), dict(scale_factor=1.5, mode="bilinear", recompute_scale_factor=True)),
        ((1, 2, 4, 5), dict(scale_factor=2, mode="bicubic")),
        ((1, 2, 4, 5), dict(size=(7, 6), mode="bicubic", align_corners=True)),
        ((1, 2, 6, 6), dict(size=(4, 3), mode="area")),
        ((1, 2, 3, 4, 5), dict(scale_factor=2, mode="trilinear")),
        ((1, 2, 3, 4, 5), dict(size=(4, 3, 6), mode="trilinear", align_corners=True)),
        ((1, 2, 3, 4, 5), dict(scale_factor=2)),
        ((1, 2, 4, 6, 5), dict(size=(2, 3, 4), mode="area")),
    ],
)
def test_interpolate(shape, kw):
    check_op("interpolate", [shape], **kw)


G = np.random.default_rng(0).uniform(-1.2, 1.2, size=(2, 3, 4, 2))


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample(mode, padding_mode, align_corners):
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    if mode != "nearest":
        check_op("grid_sample", [(2, 2, 4, 5), (2, 3, 4, 2)], domain=(-1.2, 1.2), **kw)
        return
    # nearest: the grid is a constant (its gradient is zero), cast to the input's dtype

    def fn(lib):
        return lambda x, g, **k: lib.nn.functional.grid_sample(x, g.to(x.dtype), **k)

    check_op(fn(mg), [(2, 2, 4, 5), G], torch_fn=fn(torch), **kw)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_volume(mode, padding_mode):
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=mode == "nearest")
    if mode == "bilinear":
        check_op("grid_sample", [(2, 2, 3, 4, 5), (2, 2, 3, 2, 3)], domain=(-1.2, 1.2), **kw)
        return

    def fn(lib):
        return lambda x, g, **k: lib.nn.functional.grid_sample(x, g.to(x.dtype), **k)

    g3 = np.random.default_rng(1).uniform(-1.2, 1.2, size=(2, 2, 3, 2, 3))
    check_op(fn(mg), [(2, 2, 3, 4, 5), g3], torch_fn=fn(torch), **kw)


@pytest.mark.parametrize(
    "theta, size, ac",
    [((2, 2, 3), (2, 3, 4, 5), False), ((2, 2, 3), (2, 3, 4, 5), True),
     ((1, 2, 3), (1, 1, 1, 3), False), ((2, 3, 4), (2, 1, 3, 4, 2), False),
     ((2, 3, 4), (2, 1, 3, 4, 2), True)],
)  # fmt: skip
def test_affine_grid(theta, size, ac):
    check_op("affine_grid", [theta, list(size)], align_corners=ac)


@pytest.mark.parametrize(
    "shape, kw",
    [
        ((2, 3, 5, 6), dict(kernel_size=3)),
        ((2, 3, 5, 6), dict(kernel_size=(2, 3), padding=1, stride=2)),
        ((2, 3, 7, 6), dict(kernel_size=2, dilation=2, stride=(1, 2))),
        ((3, 5, 6), dict(kernel_size=3, padding=(0, 1))),
    ],
)
def test_unfold(shape, kw):
    check_op("unfold", [shape], **kw)


@pytest.mark.parametrize(
    "shape, kw",
    [
        ((2, 12, 6), dict(output_size=(5, 6), kernel_size=2, stride=2)),
        ((2, 27, 30), dict(output_size=(5, 6), kernel_size=3, padding=1)),
        ((18, 2), dict(output_size=(5, 6), kernel_size=(3, 2), dilation=2, stride=(1, 2))),
    ],
)
def test_fold(shape, kw):
    check_op("fold", [shape], **kw)


@pytest.mark.parametrize(
    "name, shape, r",
    [("pixel_shuffle", (2, 8, 3, 4), 2), ("pixel_shuffle", (9, 2, 2), 3),
     ("pixel_shuffle", (2, 1, 4, 2, 2), 2), ("pixel_unshuffle", (2, 2, 4, 6), 2),
     ("pixel_unshuffle", (2, 6, 3), 3)],
)  # fmt: skip
def test_pixel_shuffle(name, shape, r):
    check_op(name, [shape], **{"upscale_factor" if name == "pixel_shuffle" else
                                "downscale_factor": r})  # fmt: skip


@pytest.mark.parametrize(
    "shape, pad, mode",
    [((2, 3, 5), (2, 1), "reflect"), ((2, 3, 5), (2, 3), "replicate"),
     ((2, 3, 5), (1, 4), "circular"), ((1, 2, 4, 5), (1, 2, 3, 1), "reflect"),
     ((1, 2, 4, 5), (1, 2, 3, 0), "replicate"), ((1, 2, 4, 5), (1, 2, 3, 2), "circular"),
     ((1, 1, 3, 4, 5), (1, 2, 2, 1, 1, 2), "replicate"),
     ((1, 1, 3, 4, 5), (1, 2, 2, 1, 1, 2), "reflect")],
)  # fmt: skip
def test_pad_modes(shape, pad, mode):
    check_op("pad", [shape, list(pad)], mode=mode)


@pytest.mark.parametrize(
    "cls, args, shape",
    [
        ("ZeroPad2d", ((1, 2, 0, 3),), (1, 2, 3, 4)), ("ZeroPad1d", (2,), (2, 3)),
        ("ConstantPad1d", (2, 3.5), (1, 2, 4)), ("ConstantPad2d", ((1, 0, 2, 1), -1.0), (2, 3, 3)),
        ("ConstantPad3d", (1, 2.0), (1, 1, 2, 3, 2)), ("ReflectionPad1d", ((2, 1),), (1, 2, 4)),
        ("ReflectionPad2d", (2,), (1, 2, 3, 4)), ("ReplicationPad1d", (3,), (1, 2, 4)),
        ("ReplicationPad2d", ((1, 2, 3, 0),), (1, 2, 3, 4)),
        ("ReplicationPad3d", (1,), (1, 1, 2, 3, 2)), ("CircularPad2d", (1,), (1, 2, 3, 4)),
        ("Upsample", (None, 2.0, "bilinear"), (1, 2, 3, 4)),
        ("Upsample", ((5, 7), None, "bicubic", True), (1, 2, 3, 4)),
        ("UpsamplingNearest2d", (None, 3), (1, 2, 3, 4)),
        ("UpsamplingBilinear2d", ((5, 6),), (1, 2, 3, 4)),
        ("PixelShuffle", (2,), (1, 8, 2, 3)), ("PixelUnshuffle", (2,), (1, 2, 4, 6)),
        ("Unfold", (2, 1, 1, 2), (1, 2, 4, 5)), ("Fold", ((4, 5), 2, 1, 0, 1), (1, 8, 12)),
    ],
)  # fmt: skip
def test_modules(cls, args, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    tm, mm = getattr(torch.nn, cls)(*args), getattr(mg.nn, cls)(*args)
    tx, mx = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    ty, my = tm(tx), mm(mx)
    np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    u = np.random.default_rng(2).standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(u))
    my.backward(mg.tensor(u))
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert repr(mm) == repr(tm)


def test_bad_arguments():
    F = mg.nn.functional
    with pytest.raises(ValueError, match="mode must be one of"):
        F.interpolate(mg.randn(1, 1, 4, 4), scale_factor=2, mode="cubic")
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(mg.randn(1, 1, 4, 4))
    with pytest.raises(mg.errors.ShapeError, match="bilinear"):
        F.interpolate(mg.randn(1, 1, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(mg.randn(1, 1, 4, 4), mg.zeros(1, 2, 2, 2), padding_mode="wrap")
    with pytest.raises(mg.errors.ShapeError, match="number of blocks"):
        F.fold(mg.randn(1, 8, 5), (4, 5), 2)
    with pytest.raises(mg.errors.ShapeError, match="pixel_shuffle"):
        F.pixel_shuffle(mg.randn(1, 6, 2, 2), 2)


def test_grid_sample_nearest_gives_grid_a_zero_gradient(device):
    def run(lib, dev):
        rs = np.random.RandomState(0)
        x = lib.tensor(rs.randn(1, 2, 4, 4).astype(np.float32))
        g = lib.tensor(rs.randn(1, 3, 3, 2).astype(np.float32))
        if dev is not None:
            x, g = x.to(dev), g.to(dev)
        g.requires_grad_(True)
        lib.nn.functional.grid_sample(x, g, mode="nearest", align_corners=False).sum().backward()
        return g.grad

    got, want = run(mg, device), run(torch, None)
    assert got is not None and want is not None
    np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())
