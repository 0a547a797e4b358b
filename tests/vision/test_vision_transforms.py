"""manygrad.vision.transforms against torchvision's: every function on PIL images (pixels
equal), float tensor images (1e-5) and uint8 tensor images (within 1), and the random
transforms given the same parameters."""

from __future__ import annotations

import numpy as np
import pytest

import manygrad as mg
import manygrad.vision.transforms as T
import manygrad.vision.transforms.functional as MF

Image = pytest.importorskip("PIL.Image")
torch = pytest.importorskip("torch")

R = np.random.default_rng(0)
ARR = R.integers(0, 256, (37, 45, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tvf(tv):
    import torchvision.transforms.functional as tf

    return tf


def _images():
    pil = Image.fromarray(ARR)
    mf = mg.tensor(ARR).permute(2, 0, 1).float() / 255
    tf = torch.from_numpy(ARR).permute(2, 0, 1).float() / 255
    mu = mg.tensor(ARR).permute(2, 0, 1).contiguous()
    tu = torch.from_numpy(ARR).permute(2, 0, 1).contiguous()
    return {"pil": (pil, pil, 0), "float": (mf, tf, 1e-5), "uint8": (mu, tu, 1)}


def _check(got, want, tol):
    if isinstance(want, Image.Image):
        assert isinstance(got, Image.Image) and got.mode == want.mode
        got, want = np.asarray(got), np.asarray(want)
        np.testing.assert_array_equal(got, want)
        return
    assert isinstance(got, mg.Tensor)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    g, w = got.numpy().astype(np.float64), want.numpy().astype(np.float64)
    assert g.shape == w.shape
    np.testing.assert_allclose(g, w, rtol=0, atol=tol)


CASES = [
    ("crop", (3, 4, 20, 25)), ("crop", (-3, -4, 20, 55)), ("center_crop", ([20, 21],)),
    ("center_crop", ([50, 41],)), ("hflip", ()), ("vflip", ()), ("pad", ([2, 3],)),
    ("pad", ([1, 2, 3, 4], 7, "edge")), ("pad", ([1, 2, 3, 4], 0, "reflect")),
    ("pad", ([1, 2, 3, 4], 0, "symmetric")), ("adjust_brightness", (1.3,)),
    ("adjust_contrast", (0.6,)), ("adjust_saturation", (1.7,)), ("adjust_hue", (0.2,)),
    ("adjust_hue", (-0.4,)), ("adjust_gamma", (0.7,)), ("rgb_to_grayscale", ()),
    ("rotate", (30.0,)), ("rotate", (-75.0, "bilinear", True)),
    ("rotate", (10.0, "nearest", False, [5, 9], [10, 20, 30])),
    ("affine", (20.0, [3, -2], 1.2, [5.0, 3.0])), ("invert", ()), ("autocontrast", ()),
    ("adjust_sharpness", (1.8,)), ("gaussian_blur", ([5, 3], [1.1, 0.7])),
    ("gaussian_blur", (3,)), ("posterize", (3,)), ("equalize", ()), ("five_crop", (16,)),
    ("ten_crop", ([16, 20], True)),
]  # fmt: skip


@pytest.mark.parametrize("kind", ["pil", "float", "uint8"])
@pytest.mark.parametrize("name,args", CASES, ids=[f"{n}{i}" for i, (n, _) in enumerate(CASES)])
def test_functional_matches_torchvision(tvf, name, args, kind):
    if name in ("posterize", "equalize") and kind == "float":
        pytest.skip("uint8 images only, as in torchvision")
    mi, ti, tol = _images()[kind]
    targs = tuple(tvf.InterpolationMode(a) if a in ("bilinear", "nearest") else a for a in args)
    margs = tuple(MF.InterpolationMode(a) if a in ("bilinear", "nearest") else a for a in args)
    want = getattr(tvf, name)(ti, *targs)
    got = getattr(MF, name)(mi, *margs)
    if isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _check(g, w, tol)
    else:
        _check(got, want, tol)


def test_solarize_thresholds(tvf):
    for kind, thr in [("pil", 128), ("uint8", 100), ("float", 0.5)]:
        mi, ti, tol = _images()[kind]
        _check(MF.solarize(mi, thr), tvf.solarize(ti, thr), tol)


@pytest.mark.parametrize("size", [20, (20, 30), [16]])
@pytest.mark.parametrize("interp", ["NEAREST", "BILINEAR", "BICUBIC"])
@pytest.mark.parametrize("kind", ["pil", "float", "uint8"])
def test_resize(tvf, size, interp, kind):
    mi, ti, tol = _images()[kind]
    got = MF.resize(mi, size, getattr(MF.InterpolationMode, interp))
    want = tvf.resize(ti, size, getattr(tvf.InterpolationMode, interp))
    _check(got, want, tol)


def test_resize_max_size_and_batches(tvf):
    mi, ti, _ = _images()["float"]
    _check(MF.resize(mi, 20, max_size=24), tvf.resize(ti, 20, max_size=24), 1e-5)
    mb, tb = mi[None].expand(2, 3, 37, 45), ti[None].expand(2, 3, 37, 45)
    _check(MF.resize(mb, [11, 13]), tvf.resize(tb, [11, 13]), 1e-5)
    with pytest.raises(ValueError, match="max_size"):
        MF.resize(mi, 20, max_size=10)


def test_conversions(tvf):
    pil = Image.fromarray(ARR)
    _check(MF.to_tensor(pil), tvf.to_tensor(pil), 0)
    _check(MF.pil_to_tensor(pil), tvf.pil_to_tensor(pil), 0)
    _check(MF.to_tensor(ARR[:, :, 0]), tvf.to_tensor(ARR[:, :, 0]), 0)
    gray = pil.convert("L")
    _check(MF.to_tensor(gray), tvf.to_tensor(gray), 0)
    mf, tf, _ = _images()["float"]
    _check(MF.to_pil_image(mf), tvf.to_pil_image(tf), 0)
    _check(MF.to_pil_image(mf[:1]), tvf.to_pil_image(tf[:1]), 0)
    mu, tu, _ = _images()["uint8"]
    for dt in ("float32", "float64", "int16", "uint8"):
        _check(
            MF.convert_image_dtype(mu, getattr(mg, dt)),
            tvf.convert_image_dtype(tu, getattr(torch, dt)),
            1e-6,
        )
        _check(
            MF.convert_image_dtype(mf, getattr(mg, dt)),
            tvf.convert_image_dtype(tf, getattr(torch, dt)),
            1e-6,
        )
    with pytest.raises(RuntimeError, match="cannot be performed safely"):
        MF.convert_image_dtype(mf, mg.int64)
    got = MF.normalize(mf, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3])
    _check(got, tvf.normalize(tf, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]), 1e-6)
    with pytest.raises(TypeError, match="float tensor"):
        MF.normalize(mu, [0.5], [0.2])


def test_sizes():
    pil = Image.fromarray(ARR)
    mf, _, _ = _images()["float"]
    assert MF.get_dimensions(pil) == MF.get_dimensions(mf) == [3, 37, 45]
    assert MF.get_image_size(pil) == [45, 37] and MF.get_image_num_channels(mf) == 3


def _with_params(monkeypatch, cls, params):
    monkeypatch.setattr(cls, "get_params", staticmethod(lambda *a, **k: params))


def test_random_transforms_apply_their_params(tvf, monkeypatch):
    """Each random transform applies the functional op with the parameters it drew."""
    mi, ti, tol = _images()["float"]
    _with_params(monkeypatch, T.RandomCrop, (2, 5, 20, 30))
    _check(T.RandomCrop(20, padding=2)(mi), tvf.crop(tvf.pad(ti, 2), 2, 5, 20, 30), tol)
    _with_params(monkeypatch, T.RandomResizedCrop, (3, 4, 25, 30))
    _check(T.RandomResizedCrop(16)(mi), tvf.resized_crop(ti, 3, 4, 25, 30, [16, 16]), tol)
    _with_params(monkeypatch, T.RandomRotation, 33.0)
    _check(T.RandomRotation(40)(mi), tvf.rotate(ti, 33.0, fill=[0.0, 0.0, 0.0]), tol)
    _with_params(monkeypatch, T.ColorJitter, (mg.tensor([3, 1, 0, 2]), 1.2, 0.8, 1.3, 0.1))
    # order 3, 1, 0, 2: hue, contrast, brightness, saturation
    want = tvf.adjust_saturation(
        tvf.adjust_brightness(tvf.adjust_contrast(tvf.adjust_hue(ti, 0.1), 0.8), 1.2), 1.3
    )
    _check(T.ColorJitter(0.4, 0.4, 0.4, 0.2)(mi), want, tol)
    _with_params(monkeypatch, T.RandomAffine, (10.0, (2, -3), 1.1, (4.0, 0.0)))
    want = tvf.affine(ti, 10.0, [2, -3], 1.1, [4.0, 0.0], fill=[0.0, 0.0, 0.0])
    _check(T.RandomAffine(15, (0.1, 0.1), (0.9, 1.1), 5)(mi), want, tol)
    _with_params(monkeypatch, T.GaussianBlur, 0.9)
    _check(T.GaussianBlur(5)(mi), tvf.gaussian_blur(ti, [5, 5], [0.9, 0.9]), tol)


def test_random_params_are_in_range_and_seeded():
    mi, _, _ = _images()["float"]
    for _ in range(20):
        i, j, h, w = T.RandomResizedCrop.get_params(mi, (0.08, 1.0), (3 / 4, 4 / 3))
        assert 0 <= i <= 37 - h and 0 <= j <= 45 - w and h > 0 and w > 0
        i, j, h, w = T.RandomCrop.get_params(mi, (20, 30))
        assert 0 <= i <= 17 and 0 <= j <= 15 and (h, w) == (20, 30)
    pipeline = T.Compose([T.RandomResizedCrop(24), T.RandomHorizontalFlip(), T.ColorJitter(0.3, 0.3),
                          T.RandomErasing(p=1.0, value="random")])  # fmt: skip
    mg.manual_seed(7)
    a = pipeline(mi)
    mg.manual_seed(7)
    b = pipeline(mi)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert tuple(a.shape) == (3, 24, 24)


def test_flips_and_erasing_follow_p():
    mi, _, _ = _images()["float"]
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(mi).numpy(), mi.flip(-1).numpy())
    np.testing.assert_array_equal(T.RandomVerticalFlip(0.0)(mi).numpy(), mi.numpy())
    erased = T.RandomErasing(p=1.0, value=0.5)(mi)
    changed = (erased != mi).any(0)
    assert changed.any() and bool((erased[:, changed] == 0.5).all())
    assert T.RandomGrayscale(1.0)(mi).shape == mi.shape


def test_pil_pipeline_as_a_program_writes_it(tvf):
    """The usual training pipeline on a PIL image: a float tensor, normalized."""
    pil = Image.fromarray(ARR)
    tfm = T.Compose([T.Resize(32), T.CenterCrop(28), T.ToTensor(),
                     T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])  # fmt: skip
    import torchvision.transforms as TT

    want = TT.Compose([TT.Resize(32), TT.CenterCrop(28), TT.ToTensor(),
                       TT.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])(pil)  # fmt: skip
    _check(tfm(pil), want, 1e-6)
    assert "Resize" in repr(tfm) and "CenterCrop" in repr(tfm)


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="PIL Image or a Tensor"):
        MF.hflip([[1, 2]])
    with pytest.raises(ValueError, match="hue_factor"):
        MF.adjust_hue(_images()["float"][0], 0.7)
    with pytest.raises(ValueError, match="odd and positive"):
        MF.gaussian_blur(_images()["float"][0], 4)
    with pytest.raises(ValueError, match="larger than input image size"):
        T.RandomCrop(100)(_images()["float"][0])


PERSP = ([[0, 0], [44, 0], [44, 36], [0, 36]], [[3, 2], [40, 5], [42, 33], [1, 30]])


@pytest.mark.parametrize("kind", ["pil", "float", "uint8"])
@pytest.mark.parametrize("interp", ["nearest", "bilinear"])
def test_perspective(tvf, kind, interp):
    mi, ti, tol = _images()[kind]
    fill = [10, 20, 30] if kind != "float" else [0.1, 0.2, 0.3]
    got = MF.perspective(mi, *PERSP, MF.InterpolationMode(interp), fill)
    want = tvf.perspective(ti, *PERSP, tvf.InterpolationMode(interp), fill)
    _check(got, want, tol)


@pytest.mark.parametrize("kind", ["pil", "float", "uint8"])
def test_elastic_transform(tvf, kind):
    mi, ti, tol = _images()[kind]
    disp = np.random.default_rng(5).uniform(-0.05, 0.05, (1, 37, 45, 2)).astype(np.float32)
    got = MF.elastic_transform(mi, mg.tensor(disp))
    want = tvf.elastic_transform(ti, torch.from_numpy(disp))
    _check(got, want, tol)


def test_random_perspective_and_elastic_use_their_params(tvf, monkeypatch):
    mi, ti, tol = _images()["float"]
    _with_params(monkeypatch, T.RandomPerspective, PERSP)
    got = T.RandomPerspective(p=1.0)(mi)
    _check(got, tvf.perspective(ti, *PERSP, fill=[0.0, 0.0, 0.0]), tol)
    mg.manual_seed(1)
    disp = T.ElasticTransform.get_params([50.0, 40.0], [5.0, 4.0], [37, 45])
    assert tuple(disp.shape) == (1, 37, 45, 2)
    _with_params(monkeypatch, T.ElasticTransform, disp)
    got = T.ElasticTransform()(mi)
    want = tvf.elastic_transform(ti, torch.from_numpy(disp.numpy()), fill=[0.0, 0.0, 0.0])
    _check(got, want, tol)


def test_normalize_names_a_channel_count_mismatch():
    with pytest.raises(ValueError, match="mean has 2 values for an image of 3 channels"):
        MF.normalize(mg.rand(3, 4, 4), [0.5, 0.5], [0.5, 0.5, 0.5])
