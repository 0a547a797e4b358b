"""manygrad.vision.transforms.v2 and tv_tensors against torchvision's: pipelines on PIL
images, bounding boxes moved with the image, masks resampled with nearest neighbours,
parameters drawn once per call for every input, MixUp / CutMix."""

from __future__ import annotations

import numpy as np
import pytest

import manygrad as mg
import manygrad.vision.transforms.v2.functional as MF2
from manygrad.vision import tv_tensors as MV
from manygrad.vision.transforms import v2 as M2

Image = pytest.importorskip("PIL.Image")
torch = pytest.importorskip("torch")

ARR = np.random.default_rng(1).integers(0, 256, (37, 45, 3), dtype=np.uint8)
BOXES = [[2, 3, 20, 30], [10, 5, 40, 36]]


@pytest.fixture(scope="module")
def tv2(tv):
    from torchvision import tv_tensors
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional

    return v2, functional, tv_tensors


def test_classification_pipeline_on_pil(tv2):
    v2, _, _ = tv2
    pil = Image.fromarray(ARR)
    steps = lambda t, dt: t.Compose([t.ToImage(), t.Resize(32), t.CenterCrop(28),  # noqa: E731
                                     t.ToDtype(dt, scale=True), t.Normalize([0.5] * 3, [0.25] * 3)])  # fmt: skip
    got = steps(M2, mg.float32)(pil)
    want = steps(v2, torch.float32)(pil)
    assert isinstance(got, MV.Image) and tuple(got.shape) == tuple(want.shape)
    # NOTE: torchvision resizes uint8 images in uint8 arithmetic: one level apart at most
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1.01 / 255 / 0.25)


@pytest.mark.parametrize("fmt", ["XYXY", "XYWH", "CXCYWH"])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize(
    "name,args",
    [("horizontal_flip", ()), ("vertical_flip", ()), ("resize", ([20, 30],)),
     ("resize", (24,)), ("crop", (5, 6, 20, 25)), ("crop", (-3, -2, 30, 50)), ("pad", ([3, 4],)),
     ("center_crop", ([20, 22],)), ("resized_crop", (3, 4, 20, 25, [16, 16]))],
)  # fmt: skip
def test_boxes_move_with_the_image(tv2, name, args, fmt, dtype):
    _, tf2, tvt = tv2
    src = np.array(BOXES, dtype=np.float32)
    if fmt == "XYWH":
        src[:, 2:] -= src[:, :2]
    if fmt == "CXCYWH":
        src = np.stack([(src[:, 0] + src[:, 2]) / 2, (src[:, 1] + src[:, 3]) / 2,
                        src[:, 2] - src[:, 0], src[:, 3] - src[:, 1]], 1)  # fmt: skip
    src = src.astype(dtype)
    mb = MV.BoundingBoxes(src, format=fmt, canvas_size=(37, 45))
    tb = tvt.BoundingBoxes(torch.from_numpy(src), format=fmt, canvas_size=(37, 45))
    got, want = getattr(MF2, name)(mb, *args), getattr(tf2, name)(tb, *args)
    assert isinstance(got, MV.BoundingBoxes) and got.canvas_size == tuple(want.canvas_size)
    assert got.format.value == want.format.name
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)
    mi = MV.Image(mg.tensor(ARR).permute(2, 0, 1))
    ti = tvt.Image(torch.from_numpy(ARR).permute(2, 0, 1))
    gi, wi = getattr(MF2, name)(mi, *args), getattr(tf2, name)(ti, *args)
    assert isinstance(gi, MV.Image)
    np.testing.assert_allclose(gi.numpy().astype(int), wi.numpy().astype(int), atol=1)


def test_masks_use_nearest_neighbours(tv2):
    _, tf2, tvt = tv2
    m = np.random.default_rng(2).integers(0, 5, (37, 45)).astype(np.uint8)
    got = MF2.resize(MV.Mask(mg.tensor(m)), [20, 30])
    want = tf2.resize(tvt.Mask(torch.from_numpy(m)), [20, 30])
    assert isinstance(got, MV.Mask) and set(np.unique(got.numpy())) <= set(range(5))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    got = MF2.rotate(MV.Mask(mg.tensor(m)), 30.0, MF2.InterpolationMode.BILINEAR)
    want = tf2.rotate(tvt.Mask(torch.from_numpy(m)), 30.0, tf2.InterpolationMode.BILINEAR)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_one_draw_for_all_inputs():
    """Image, mask and boxes of one sample get the same crop and flip; labels pass."""
    img = MV.Image(mg.tensor(ARR).permute(2, 0, 1))
    mask = MV.Mask(mg.tensor(ARR[:, :, 0]))
    boxes = MV.BoundingBoxes(BOXES, format="XYXY", canvas_size=(37, 45))
    t = M2.Compose([M2.RandomResizedCrop(16, scale=(0.3, 1.0)), M2.RandomHorizontalFlip(0.5)])
    for seed in range(5):
        mg.manual_seed(seed)
        out_img, out_mask, out_boxes, label = t(img, mask, boxes, 7)
        assert label == 7 and isinstance(out_boxes, MV.BoundingBoxes)
        assert out_boxes.canvas_size == (16, 16)
        # the mask is the image's first channel resampled by the same crop (nearest)
        mg.manual_seed(seed)
        again = t(MV.Image(mg.tensor(ARR[:, :, :1]).permute(2, 0, 1)))
        mg.manual_seed(seed)
        want_mask = M2.Compose([M2.RandomResizedCrop(16, scale=(0.3, 1.0),
                                                     interpolation=M2.InterpolationMode.NEAREST),
                                M2.RandomHorizontalFlip(0.5)])(
            MV.Image(mg.tensor(ARR[:, :, :1]).permute(2, 0, 1)))  # fmt: skip
        np.testing.assert_array_equal(out_mask.numpy(), want_mask.numpy()[0])
        assert tuple(again.shape) == (1, 16, 16)


def test_plain_tensor_is_the_image_only_without_one():
    x = mg.rand(3, 10, 12)
    extra = mg.rand(3, 10, 12)
    a, b = M2.RandomHorizontalFlip(1.0)(x, extra)
    np.testing.assert_array_equal(a.numpy(), x.flip(-1).numpy())
    np.testing.assert_array_equal(b.numpy(), extra.numpy())  # the second one passes
    img = MV.Image(x)
    c, d = M2.RandomHorizontalFlip(1.0)(img, extra)
    np.testing.assert_array_equal(d.numpy(), extra.numpy())
    out = M2.RandomHorizontalFlip(1.0)({"image": img, "label": 3})
    assert out["label"] == 3 and isinstance(out["image"], MV.Image)


@pytest.mark.parametrize("cls", [M2.MixUp, M2.CutMix])
def test_mixup_cutmix(cls):
    imgs = mg.rand(4, 3, 8, 8)
    labels = mg.tensor([0, 1, 2, 1])
    mg.manual_seed(3)
    x, y = cls(num_classes=3)(imgs, labels)
    assert tuple(x.shape) == (4, 3, 8, 8) and tuple(y.shape) == (4, 3)
    np.testing.assert_allclose(y.sum(1).numpy(), 1.0, rtol=1e-6)
    # label weight of the sample itself is lam: the image's own share of pixels / blend
    lam = float(y[0, 0]) if labels[0] != labels[3] else None
    if cls is M2.CutMix and lam is not None:
        same = (x[0] == imgs[0]).all(0).float().mean().item()
        assert abs(same - lam) < 1e-6
    with pytest.raises(ValueError, match="num_classes"):
        cls()(imgs, labels)
    with pytest.raises(ValueError, match="batch size"):
        cls(num_classes=3)(imgs, labels[:3])


def test_to_dtype_and_pure_tensor():
    img = MV.Image(mg.tensor(ARR).permute(2, 0, 1))
    f = M2.ToDtype(mg.float32, scale=True)(img)
    assert isinstance(f, MV.Image) and f.dtype == mg.float32 and float(f.max()) <= 1.0
    plain = M2.ToPureTensor()(f)
    assert type(plain) is mg.Tensor
    boxes = MV.BoundingBoxes(BOXES, format="XYXY", canvas_size=(37, 45))
    out = M2.ToDtype({MV.Image: mg.float64, "others": None})(img, boxes)
    assert out[0].dtype == mg.float64 and out[1].dtype == boxes.dtype


def test_rotation_refuses_boxes():
    boxes = MV.BoundingBoxes(BOXES, format="XYXY", canvas_size=(37, 45))
    with pytest.raises(TypeError, match="bounding boxes"):
        M2.RandomRotation(10)(MV.Image(mg.rand(3, 37, 45)), boxes)


@pytest.mark.parametrize("cls", [M2.RandomPerspective, M2.ElasticTransform])
def test_warps_move_masks_with_the_image(cls):
    """A mask that equals the image's first channel stays equal to it after the warp
    (one draw for both; nearest neighbours on both)."""
    labels = mg.randint(0, 4, (48, 50))
    img = MV.Image(labels[None].float())
    kw = {"p": 1.0} if cls is M2.RandomPerspective else {}
    t = cls(interpolation=M2.InterpolationMode.NEAREST, **kw)
    out_img, out_mask = t(img, MV.Mask(labels))
    assert isinstance(out_mask, MV.Mask) and set(out_mask.unique().tolist()) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(out_img[0].numpy(), out_mask.numpy().astype(np.float32))
