"""conv_transpose2d at DCGAN / U-Net upsampling shapes (k4 s2 p1, k2 s2, k3 s2 p1 op1, groups,
dilation, non-square, batch 1) and channels-first strided conv2d, against PyTorch."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch", reason="PyTorch (CPU build) is the test oracle")

# more than 96 rows per column (C_out / groups * kh * kw), so not the per-image products
SHAPES = [
    ("conv_transpose2d", [(2, 4, 5, 6), (4, 8, 4, 4), (8,)], dict(stride=2, padding=1)),
    ("conv_transpose2d", [(1, 4, 5, 6), (4, 8, 4, 4), (8,)], dict(stride=2, padding=1)),
    ("conv_transpose2d", [(2, 4, 5, 6), (4, 25, 2, 2), (25,)], dict(stride=2)),
    (
        "conv_transpose2d",
        [(2, 4, 5, 6), (4, 12, 3, 3), (12,)],
        dict(stride=2, padding=1, output_padding=1),
    ),
    ("conv_transpose2d", [(2, 4, 5, 6), (4, 13, 4, 4), None], dict(stride=2, padding=1, groups=2)),
    (
        "conv_transpose2d",
        [(2, 4, 5, 6), (4, 12, 3, 3), (12,)],
        dict(stride=2, padding=1, dilation=2, output_padding=1),
    ),
    (
        "conv_transpose2d",
        [(2, 4, 5, 7), (4, 16, 4, 2), (16,)],
        dict(stride=(2, 3), padding=(1, 0), output_padding=(0, 2)),
    ),
    ("conv_transpose2d", [(4, 5, 6), (4, 8, 4, 4), (8,)], dict(stride=2, padding=1)),  # unbatched
    ("conv2d", [(2, 16, 9, 10), (6, 16, 3, 3), (6,)], dict(stride=2, padding=1)),
    ("conv2d", [(2, 32, 9, 10), (6, 16, 3, 3), None], dict(stride=(2, 3), padding=1, groups=2)),
    ("conv2d", [(2, 16, 11, 10), (6, 16, 4, 4), (6,)], dict(stride=2, padding=2, dilation=2)),
]


@pytest.mark.parametrize("name,specs,kwargs", SHAPES, ids=lambda v: str(v)[:48])
def test_strided_conv_shapes(name, specs, kwargs):
    check_op(name, specs, **kwargs)


@pytest.mark.parametrize(
    "kwargs,wshape",
    [
        (dict(stride=2, padding=1), (64, 32, 4, 4)),
        (dict(stride=2), (64, 32, 2, 2)),
        (dict(stride=2, padding=1, output_padding=1), (64, 16, 3, 3)),
    ],
)
def test_conv_transpose_float32_like_torch(device, kwargs, wshape):
    # a DCGAN-sized layer in float32: forward and all three gradients
    rng = np.random.default_rng(0)
    x, w, b = (
        rng.standard_normal(s).astype(np.float32) for s in ((3, 64, 7, 6), wshape, wshape[1:2])
    )
    mx, mw, mb = (mg.tensor(v, device=device, requires_grad=True) for v in (x, w, b))
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    y = mg.conv_transpose2d(mx, mw, mb, **kwargs)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, **kwargs)
    up = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    y.backward(mg.tensor(up, device=device))
    ty.backward(torch.tensor(up))
    for m, t in ((y, ty), (mx.grad, tx.grad), (mw.grad, tw.grad), (mb.grad, tb.grad)):
        np.testing.assert_allclose(
            m.detach().cpu().numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-3
        )
