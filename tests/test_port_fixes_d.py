"""Differences from PyTorch that the pix2pix, StyleGAN2, anchor-free detector, RoIAlign and
deformable-convolution port scripts (tests/ports/scripts) led to, each compared with
PyTorch."""

import numpy as np
import pytest
import torch

import manygrad as mg


def _pixel_grid(spatial, align_corners):
    """A grid (1, *spatial, nd) whose points fall exactly on the pixel centers, bounds
    included: where the grid sampler's coordinate clipping has its kinks."""
    axes = []
    for n in spatial:
        i = np.arange(n, dtype=np.float32)
        axes.append(2 * i / (n - 1) - 1 if align_corners else (2 * i + 1) / n - 1)
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack(mesh[::-1], axis=-1)[None].astype(np.float32)  # x (width) first


def _grid_sample_grads(lib, x, grid, dev=None, **kw):
    x, grid = lib.tensor(x), lib.tensor(grid)
    if dev is not None:
        x, grid = x.to(dev), grid.to(dev)
    x.requires_grad_(True)
    grid.requires_grad_(True)
    out = lib.nn.functional.grid_sample(x, grid, **kw)
    weights = lib.tensor(np.linspace(-1.0, 2.0, out.numel(), dtype=np.float32))
    if dev is not None:
        weights = weights.to(dev)
    (out * weights.reshape(out.shape)).sum().backward()
    return [t.detach().cpu().numpy() for t in (out, x.grad, grid.grad)]


@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 5)], ids=["2d", "3d"])
@pytest.mark.parametrize("padding_mode", ["border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_grid_gradient_is_zero_on_the_clipping_bounds(
    device, spatial, padding_mode, align_corners
):
    # PyTorch counts the borders as outside when it clips a coordinate (border and
    # reflection padding), so a sampling point exactly on the first or last pixel gets no
    # gradient along that axis; clamp's gradient is one there
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, *spatial)).astype(np.float32)
    grid = _pixel_grid(spatial, align_corners)
    kw = dict(mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)
    got = _grid_sample_grads(mg, x, grid, device, **kw)
    want = _grid_sample_grads(torch, x, grid, **kw)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NumPy's, on NaN
@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_takes_non_finite_grid_points_as_pytorch(mode, padding_mode, align_corners):
    # a NaN or infinite point used to be cast to an out-of-range index (IndexError); PyTorch's
    # CPU kernel gives NaN with zero padding and clips NaN to 0 with border and reflection
    special = np.array([np.nan, np.inf, -np.inf, 1e4, -1e4, 0.25, 1.0, -1.0], np.float32)
    gx, gy = np.meshgrid(special, special[::-1])
    grid = np.stack([gx, gy], axis=-1)[None].astype(np.float32)
    x = np.arange(42, dtype=np.float32).reshape(1, 1, 6, 7)
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    got = mg.nn.functional.grid_sample(mg.tensor(x), mg.tensor(grid), **kw).numpy()
    want = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(grid), **kw).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_grid_sample_border_warp_matches_pytorch_at_integer_offsets(device):
    # the deformable-convolution port: zero offsets put the taps exactly on the image edge
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    grid = np.repeat(_pixel_grid((6, 7), True), 2, axis=0)
    grid[1] += rng.uniform(-0.05, 0.05, grid[1].shape).astype(np.float32)
    kw = dict(padding_mode="border", align_corners=True)
    got = _grid_sample_grads(mg, x, grid, device, **kw)
    want = _grid_sample_grads(torch, x, grid, **kw)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def _warnings(fn):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, t, x: lib.nn.functional.affine_grid(t, [1, 2, 4, 5]),
        lambda lib, t, x: lib.nn.functional.grid_sample(x, lib.zeros(1, 3, 3, 2)),
        lambda lib, t, x: lib.nn.functional.affine_grid(t, [1, 2, 1, 5], align_corners=True),
        lambda lib, t, x: lib.nn.functional.affine_grid(t, [1, 2, 4, 5], align_corners=False),
        lambda lib, t, x: lib.nn.functional.grid_sample(
            x, lib.zeros(1, 3, 3, 2), align_corners=True
        ),
    ],
    ids=[
        "affine_grid-default",
        "grid_sample-default",
        "affine_grid-unit",
        "affine_grid",
        "grid_sample",
    ],
)
def test_grid_sample_and_affine_grid_warn_as_pytorch(call):
    def run(lib):
        theta = lib.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        return _warnings(lambda: call(lib, theta, lib.ones(1, 2, 4, 5)))

    assert run(mg) == run(torch)


@pytest.mark.parametrize("shape", [(2, 4, 3, 3), (4, 3, 3), (2, 3, 3, 3)])
def test_instance_norm_without_affine_warns_on_a_channel_mismatch_as_pytorch(shape):
    def run(lib):
        m = lib.nn.InstanceNorm2d(3)
        x = lib.tensor(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))
        out = []
        return _warnings(lambda: out.append(m(x))), out[0].numpy()

    (got_w, got), (want_w, want) = run(mg), run(torch)
    assert got_w == want_w
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
