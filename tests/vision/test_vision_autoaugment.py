"""AutoAugment, RandAugment, TrivialAugmentWide and AugMix against torchvision's: every
op at its magnitudes (pixels equal on PIL images, within 1 on uint8 tensors), the
policies and magnitude tables, and each transform given the same draws."""

from __future__ import annotations

import numpy as np
import pytest

import manygrad as mg
import manygrad.vision.transforms as T
from manygrad.vision.transforms import autoaugment as AA

Image = pytest.importorskip("PIL.Image")
torch = pytest.importorskip("torch")

ARR = np.random.default_rng(3).integers(0, 256, (33, 41, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def taa(tv):
    import torchvision.transforms.autoaugment as m

    return m


def _same(got, want):
    if isinstance(want, Image.Image):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    else:
        np.testing.assert_allclose(got.numpy().astype(int), want.numpy().astype(int), atol=1)


OPS = [("ShearX", 0.2), ("ShearY", -0.25), ("TranslateX", 7.6), ("TranslateY", -5.0),
       ("Rotate", 17.0), ("Brightness", 0.4), ("Color", -0.3), ("Contrast", 0.5),
       ("Sharpness", 0.6), ("Posterize", 5), ("Solarize", 120.0), ("AutoContrast", 0.0),
       ("Equalize", 0.0), ("Invert", 0.0), ("Identity", 0.0)]  # fmt: skip


@pytest.mark.parametrize("op,mag", OPS)
@pytest.mark.parametrize("kind", ["pil", "uint8"])
def test_each_op(taa, op, mag, kind):
    tvf = pytest.importorskip("torchvision.transforms.functional")
    if kind == "pil":
        mi = ti = Image.fromarray(ARR)
        fill = [10, 20, 30]
    else:
        mi = mg.tensor(ARR).permute(2, 0, 1).contiguous()
        ti = torch.from_numpy(ARR).permute(2, 0, 1).contiguous()
        fill = [10.0, 20.0, 30.0]
    got = AA._apply_op(mi, op, mag, AA.InterpolationMode.NEAREST, fill)
    want = taa._apply_op(ti, op, mag, tvf.InterpolationMode.NEAREST, fill)
    _same(got, want)


def test_policies_and_spaces(taa):
    for pol in ("imagenet", "cifar10", "svhn"):
        got = AA._policies(AA.AutoAugmentPolicy(pol))
        want = taa.AutoAugment(taa.AutoAugmentPolicy(pol)).policies
        assert got == want
    size = (33, 41)
    pairs = [("auto", taa.AutoAugment()._augmentation_space(10, size), 10),
             ("rand", taa.RandAugment()._augmentation_space(31, size), 31),
             ("wide", taa.TrivialAugmentWide()._augmentation_space(31), 31),
             ("augmix", taa.AugMix(all_ops=False)._augmentation_space(10, size), 10)]  # fmt: skip
    for kind, want, bins in pairs:
        got = AA._space(kind, bins, size)
        assert list(got) == list(want)
        for k, (mags, signed) in want.items():
            assert got[k][1] == signed
            if mags.ndim:
                np.testing.assert_allclose(got[k][0], mags.numpy(), rtol=1e-6, atol=1e-5)
            else:
                assert got[k][0] is None


def test_autoaugment_applies_its_draws(taa, monkeypatch):
    tvf = pytest.importorskip("torchvision.transforms.functional")
    img = Image.fromarray(ARR)
    monkeypatch.setattr(AA.AutoAugment, "get_params", staticmethod(
        lambda n: (14, mg.tensor([0.1, 0.2]), mg.tensor([1, 0]))))  # fmt: skip
    got = T.AutoAugment(T.AutoAugmentPolicy.IMAGENET)(img)
    # sub-policy 14: Color 0.6 at bin 4, Contrast 1.0 at bin 8 (negative: sign 0); the
    # magnitudes are manygrad's table's (torch.linspace may differ in the last bit)
    space = AA._space("auto", 10, (33, 41))
    near = tvf.InterpolationMode.NEAREST
    want = taa._apply_op(img, "Color", float(space["Color"][0][4]), near, None)
    want = taa._apply_op(want, "Contrast", -float(space["Contrast"][0][8]), near, None)
    _same(got, want)


@pytest.mark.parametrize("cls", [T.AutoAugment, T.RandAugment, T.TrivialAugmentWide, T.AugMix])
def test_policies_run_and_repeat(cls):
    img = Image.fromarray(ARR)
    t = mg.tensor(ARR).permute(2, 0, 1).contiguous()
    for x in (img, t):
        mg.manual_seed(5)
        a = cls()(x)
        mg.manual_seed(5)
        b = cls()(x)
        if isinstance(x, Image.Image):
            assert a.size == x.size and a.mode == x.mode
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        else:
            assert a.dtype == mg.uint8 and tuple(a.shape) == (3, 33, 41)
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_v2_policies_pass_labels():
    from manygrad.vision.transforms import v2

    img = Image.fromarray(ARR)
    out, label = v2.TrivialAugmentWide()(img, 4)
    assert label == 4 and out.size == img.size
    with pytest.raises(ValueError, match="severity"):
        T.AugMix(severity=11)
