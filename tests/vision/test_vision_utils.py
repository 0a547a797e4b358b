"""manygrad.vision.utils against torchvision.utils: make_grid's values and save_image's
pixels bit for bit, and the drawing functions pixel for pixel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import manygrad as mg
from manygrad.vision import utils

RNG = np.random.default_rng(0)


def pair(a: np.ndarray):
    import torch

    return mg.from_numpy(a.copy()), torch.from_numpy(a.copy())


def same(ours, theirs):
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


GRID_CASES = [
    ((5, 3, 4, 6), dict()),
    ((5, 3, 4, 6), dict(nrow=2, padding=1, pad_value=0.5)),
    ((7, 1, 5, 5), dict(nrow=3, normalize=True)),
    ((4, 3, 5, 3), dict(normalize=True, scale_each=True, padding=0)),
    ((4, 3, 5, 3), dict(normalize=True, value_range=(-0.7, 1.3))),
    ((4, 3, 5, 3), dict(normalize=True, value_range=(-0.7, 1.3), scale_each=True, nrow=4)),
    ((3, 4, 2, 2), dict(nrow=8, padding=3, pad_value=-1.0)),
    ((1, 3, 4, 4), dict()),
    ((1, 1, 4, 4), dict(normalize=True)),
    ((3, 4, 4), dict(normalize=True)),
    ((1, 4, 4), dict()),
    ((5, 6), dict(padding=4)),
    ((6, 3, 4, 4), dict(normalize=True, value_range=(0.2, 0.2))),  # a flat range: 1e-5
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,kw", GRID_CASES)
def test_make_grid_equals_torchvision(tv, shape, kw, dtype):
    a = (RNG.standard_normal(shape) * 1.7 + 0.3).astype(dtype)
    ours, theirs = pair(a)
    same(utils.make_grid(ours, **kw), tv.utils.make_grid(theirs, **kw))
    assert np.array_equal(ours.numpy(), a)  # the input is left alone


def test_make_grid_list_and_uint8(tv):
    imgs = [RNG.integers(0, 256, (3, 4, 5), dtype=np.uint8) for _ in range(3)]
    ours = [mg.from_numpy(x) for x in imgs]
    theirs = [pair(x)[1] for x in imgs]
    same(
        utils.make_grid(ours, nrow=2, pad_value=7), tv.utils.make_grid(theirs, nrow=2, pad_value=7)
    )
    with pytest.raises(
        TypeError, match="tensor or list of tensors expected, got a list containing"
    ):
        utils.make_grid([ours[0], imgs[0]])
    with pytest.raises(TypeError, match="tensor or list of tensors expected"):
        utils.make_grid(imgs[0])
    with pytest.raises(TypeError, match="value_range has to be a tuple"):
        utils.make_grid(mg.zeros(2, 3, 4, 4), normalize=True, value_range=[0, 1])
    with pytest.raises(TypeError, match="normalize=True needs a floating-point tensor"):
        utils.make_grid(ours[0][None], normalize=True)


def test_make_grid_single_image_is_a_view_as_in_pytorch(tv):
    x = mg.rand(1, 3, 4, 4)
    g = utils.make_grid(x)
    g[0, 0, 0] = 5.0
    assert x[0, 0, 0, 0].item() == 5.0


SAVE_CASES = [
    ((6, 3, 5, 4), dict(nrow=3), "PNG"),
    ((4, 1, 6, 6), dict(normalize=True, padding=1), "PNG"),
    ((3, 5, 7), dict(), "BMP"),
    ((2, 3, 8, 8), dict(normalize=True, scale_each=True), "PNG"),
]


@pytest.mark.parametrize("shape,kw,fmt", SAVE_CASES)
def test_save_image_equals_torchvision(tv, tmp_path, shape, kw, fmt):
    # values around [0, 1], some outside and some on the .5 boundaries of the rounding
    a = RNG.uniform(-0.2, 1.2, shape).astype(np.float32)
    a.reshape(-1)[:8] = np.array([0.5, 1.5, 2.5, 3.5, 127.5, 254.5, 0, 255], np.float32) / 255
    ours, theirs = pair(a)
    ext = fmt.lower()
    utils.save_image(ours, tmp_path / f"ours.{ext}", **kw)
    tv.utils.save_image(theirs, tmp_path / f"theirs.{ext}", **kw)
    mine, ref = Image.open(tmp_path / f"ours.{ext}"), Image.open(tmp_path / f"theirs.{ext}")
    assert mine.format == ref.format == fmt and mine.mode == ref.mode
    np.testing.assert_array_equal(np.asarray(mine), np.asarray(ref))
    buf_o, buf_t = io.BytesIO(), io.BytesIO()
    utils.save_image(ours, buf_o, format="png", **kw)
    tv.utils.save_image(theirs, buf_t, format="png", **kw)
    assert buf_o.getvalue() == buf_t.getvalue()  # both through Pillow: the same bytes


def test_save_image_errors_and_atomic_write(tmp_path):
    with pytest.raises(ValueError, match="unknown file extension"):
        utils.save_image(mg.rand(3, 4, 4), tmp_path / "x.nope")
    with pytest.raises(TypeError, match="expected a floating-point image"):
        utils.save_image(mg.zeros((3, 4, 4), dtype=mg.uint8), tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match="no folder .*nowhere"):
        utils.save_image(mg.rand(3, 4, 4), tmp_path / "nowhere" / "x.png")
    utils.save_image(mg.rand(2, 3, 4, 4), str(tmp_path / "ok.jpg"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.jpg"]


def image_pair(float_image: bool, c: int = 3):
    a = RNG.integers(0, 256, (c, 40, 50), dtype=np.uint8)
    if float_image:
        a = (a / 255).astype(np.float32)
    return pair(a)


BOX_CASES = [
    dict(),
    dict(labels=["a", "bb", "ccc"], colors="red", width=2),
    dict(labels=["x", "y", "z"], colors=["blue", (10, 200, 30), "#ff00ff"], fill=True),
    dict(labels=["x", None, "z"], fill_labels=True, label_colors="white"),
    dict(labels=["p", "q", "r"], fill_labels=True, label_background_colors=["green"] * 3),
]


@pytest.mark.parametrize("float_image", [False, True])
@pytest.mark.parametrize("kw", BOX_CASES)
def test_draw_bounding_boxes_equals_torchvision(tv, kw, float_image):
    ours, theirs = image_pair(float_image)
    boxes = np.array([[1, 2, 20, 30], [5.7, 5.2, 45.9, 38.1], [0, 0, 49, 39]], np.float32)
    bo, bt = pair(boxes)
    same(utils.draw_bounding_boxes(ours, bo, **kw), tv.utils.draw_bounding_boxes(theirs, bt, **kw))


def test_draw_bounding_boxes_gray_oriented_and_errors(tv):
    ours, theirs = image_pair(False, c=1)
    boxes = np.array([[3, 4, 30, 6, 28, 30, 2, 25]], np.float32)  # an oriented box
    bo, bt = pair(boxes)
    for kw in (dict(), dict(fill=True, colors="yellow", width=3)):
        same(
            utils.draw_bounding_boxes(ours, bo, **kw),
            tv.utils.draw_bounding_boxes(theirs, bt, **kw),
        )
    with pytest.raises(ValueError, match=r"\(xmin, ymin, xmax, ymax\) format"):
        utils.draw_bounding_boxes(ours, mg.tensor([[5.0, 0, 1, 1]]))
    with pytest.raises(ValueError, match="Number of boxes"):
        utils.draw_bounding_boxes(ours, bo, labels=["a", "b"])
    with pytest.raises(ValueError, match="Number of colors"):
        utils.draw_bounding_boxes(ours, bo.repeat(2, 1), colors=["red"])
    with pytest.raises(ValueError, match="Pass individual images"):
        utils.draw_bounding_boxes(ours[None], bo)
    with pytest.warns(UserWarning, match="No box was drawn"):
        assert utils.draw_bounding_boxes(ours, mg.zeros(0, 4)) is ours


@pytest.mark.parametrize("float_image", [False, True])
@pytest.mark.parametrize("colors", [None, "red", ["red", (0, 128, 255), "#123456"]])
def test_draw_segmentation_masks_equals_torchvision(tv, float_image, colors):
    ours, theirs = image_pair(float_image)
    masks = RNG.random((3, 40, 50)) > 0.6
    mo, mt = pair(masks)
    for alpha in (0.8, 0.35):
        same(utils.draw_segmentation_masks(ours, mo, alpha, colors),
             tv.utils.draw_segmentation_masks(theirs, mt, alpha, colors))  # fmt: skip
    same(
        utils.draw_segmentation_masks(ours, mo[0]), tv.utils.draw_segmentation_masks(theirs, mt[0])
    )
    with pytest.raises(ValueError, match="must be of dtype bool"):
        utils.draw_segmentation_masks(ours, mo.float())
    with pytest.raises(ValueError, match="same height and width"):
        utils.draw_segmentation_masks(ours, mo[:, :5])


@pytest.mark.parametrize("float_image", [False, True])
def test_draw_keypoints_equals_torchvision(tv, float_image):
    ours, theirs = image_pair(float_image)
    kpts = RNG.uniform(0, 40, (2, 4, 2)).astype(np.float32)
    vis = np.array([[True, True, False, True], [True, True, True, True]])
    ko, kt = pair(kpts)
    vo, vt = pair(vis)
    conn = [(0, 1), (1, 2), (2, 3)]
    for kw_o, kw_t in (
        (dict(), dict()),
        (dict(connectivity=conn, colors="blue", radius=3, width=2),) * 2,
        (dict(connectivity=conn, visibility=vo), dict(connectivity=conn, visibility=vt)),
    ):
        same(utils.draw_keypoints(ours, ko, **kw_o), tv.utils.draw_keypoints(theirs, kt, **kw_t))
    with pytest.raises(ValueError, match="keypoints must be of shape"):
        utils.draw_keypoints(ours, ko[0])


@pytest.mark.parametrize("shape", [(2, 30, 40), (3, 2, 64, 48)])
def test_flow_to_image_equals_torchvision(tv, shape):
    a = (RNG.standard_normal(shape) * 3).astype(np.float32)
    a.reshape(-1)[:4] = 0  # no motion: white
    ours, theirs = pair(a)
    o, t = utils.flow_to_image(ours), tv.utils.flow_to_image(theirs)
    assert o.dtype == mg.uint8 and tuple(o.shape) == tuple(t.shape)
    # NOTE: PyTorch's atan2 (SLEEF, vectorised) and NumPy's differ by an ulp now and then,
    # which moves a pixel by one step in rare cases
    diff = np.abs(o.numpy().astype(int) - t.numpy())
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    with pytest.raises(ValueError, match="dtype torch.float"):
        utils.flow_to_image(ours.double())
    with pytest.raises(ValueError, match=r"shape \(2, H, W\)"):
        utils.flow_to_image(ours[..., :1, :, :].squeeze(-3))


def test_device_tensors_stay_on_their_device():
    """A GPU tensor's grid and drawings come back on its device (the fake GPU here: NumPy
    arrays that refuse silent host conversion, as CuPy's do)."""
    x = mg.rand(5, 3, 4, 6, device="fakegpu")
    for kw in (
        dict(),
        dict(normalize=True, scale_each=True),
        dict(normalize=True, value_range=(0.1, 0.9)),
    ):
        g = utils.make_grid(x, nrow=2, **kw)
        assert g.device == x.device
        np.testing.assert_array_equal(
            g.cpu().numpy(), utils.make_grid(x.cpu(), nrow=2, **kw).numpy()
        )
    buf_gpu, buf_cpu = io.BytesIO(), io.BytesIO()
    utils.save_image(x, buf_gpu, format="png")
    utils.save_image(x.cpu(), buf_cpu, format="png")
    assert buf_gpu.getvalue() == buf_cpu.getvalue()
    img = (mg.rand(3, 20, 20) * 255).to(mg.uint8)
    boxes = mg.tensor([[1.0, 2, 10, 12]])
    masks = mg.rand(2, 20, 20) > 0.5
    for fn, args in (
        (utils.draw_bounding_boxes, (boxes,)),
        (utils.draw_segmentation_masks, (masks,)),
    ):
        on_gpu = fn(img.to("fakegpu"), *(a.to("fakegpu") for a in args))
        assert on_gpu.device == x.device
        np.testing.assert_array_equal(on_gpu.cpu().numpy(), fn(img, *args).numpy())
    flow = mg.randn(2, 5, 5)
    np.testing.assert_array_equal(utils.flow_to_image(flow.to("fakegpu")).cpu().numpy(),
                                  utils.flow_to_image(flow).numpy())  # fmt: skip
