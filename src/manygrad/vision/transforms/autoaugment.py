"""Learned and random augmentation policies (torchvision.transforms' AutoAugment,
RandAugment, TrivialAugmentWide and AugMix) on PIL images and uint8 image tensors.

Each draws from manygrad's global generator in torchvision's order; the operations and
magnitude ranges are those of the papers as torchvision applies them.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

import manygrad as mg

from . import functional as F
from .functional import InterpolationMode, _tensor_fill

__all__ = ["AugMix", "AutoAugment", "AutoAugmentPolicy", "RandAugment", "TrivialAugmentWide"]


class AutoAugmentPolicy(Enum):
    """The policies learned on three datasets (AutoAugment, Cubuk et al. 2019)."""

    IMAGENET = "imagenet"
    CIFAR10 = "cifar10"
    SVHN = "svhn"


def _apply_op(img, op: str, magnitude: float, interpolation, fill):
    """One augmentation op at ``magnitude`` (shears as slopes, translations in pixels,
    rotations in degrees, colour factors as 1 + magnitude)."""
    if op in ("ShearX", "ShearY"):
        deg = math.degrees(math.atan(magnitude))
        shear = [deg, 0.0] if op == "ShearX" else [0.0, deg]
        return F.affine(img, 0.0, [0, 0], 1.0, shear, interpolation, fill, center=[0, 0])
    if op in ("TranslateX", "TranslateY"):
        shift = [int(magnitude), 0] if op == "TranslateX" else [0, int(magnitude)]
        return F.affine(img, 0.0, shift, 1.0, [0.0, 0.0], interpolation, fill)
    if op == "Rotate":
        return F.rotate(img, magnitude, interpolation, fill=fill)
    colour = {"Brightness": F.adjust_brightness, "Color": F.adjust_saturation,
              "Contrast": F.adjust_contrast, "Sharpness": F.adjust_sharpness}  # fmt: skip
    if op in colour:
        return colour[op](img, 1.0 + magnitude)
    if op == "Posterize":
        return F.posterize(img, int(magnitude))
    if op == "Solarize":
        return F.solarize(img, magnitude)
    if op == "AutoContrast":
        return F.autocontrast(img)
    if op == "Equalize":
        return F.equalize(img)
    if op == "Invert":
        return F.invert(img)
    if op == "Identity":
        return img
    raise ValueError(f"The provided operator {op} is not recognized.")


def _linspace(lo, hi, n):
    return np.linspace(lo, hi, n, dtype=np.float32)


def _posterize_bits(top: int, span: int, n: int):
    return (top - np.round(np.arange(n, dtype=np.float32) / np.float32((n - 1) / span))).astype(
        np.int32
    )


def _space(kind: str, bins: int, size=None):
    """{op: (magnitudes or None, signed)} in torchvision's order for each method."""
    h, w = size if size is not None else (0, 0)
    colour = lambda hi: {k: (_linspace(0.0, hi, bins), True)  # noqa: E731
                         for k in ("Brightness", "Color", "Contrast", "Sharpness")}  # fmt: skip
    if kind == "wide":
        s = {"Identity": (None, False), "ShearX": (_linspace(0.0, 0.99, bins), True),
             "ShearY": (_linspace(0.0, 0.99, bins), True),
             "TranslateX": (_linspace(0.0, 32.0, bins), True),
             "TranslateY": (_linspace(0.0, 32.0, bins), True),
             "Rotate": (_linspace(0.0, 135.0, bins), True)}  # fmt: skip
        s.update(colour(0.99))
        s["Posterize"] = (_posterize_bits(8, 6, bins), False)
    elif kind == "augmix":
        s = {"ShearX": (_linspace(0.0, 0.3, bins), True),
             "ShearY": (_linspace(0.0, 0.3, bins), True),
             "TranslateX": (_linspace(0.0, w / 3.0, bins), True),
             "TranslateY": (_linspace(0.0, h / 3.0, bins), True),
             "Rotate": (_linspace(0.0, 30.0, bins), True),
             "Posterize": (_posterize_bits(4, 4, bins), False),
             "Solarize": (_linspace(255.0, 0.0, bins), False),
             "AutoContrast": (None, False), "Equalize": (None, False)}  # fmt: skip
        return s
    else:  # "auto" and "rand"
        s = {"Identity": (None, False)} if kind == "rand" else {}
        s.update({"ShearX": (_linspace(0.0, 0.3, bins), True),
                  "ShearY": (_linspace(0.0, 0.3, bins), True),
                  "TranslateX": (_linspace(0.0, 150.0 / 331.0 * w, bins), True),
                  "TranslateY": (_linspace(0.0, 150.0 / 331.0 * h, bins), True),
                  "Rotate": (_linspace(0.0, 30.0, bins), True)})  # fmt: skip
        s.update(colour(0.9))
        s["Posterize"] = (_posterize_bits(8, 4, bins), False)
    s["Solarize"] = (_linspace(255.0, 0.0, bins), False)
    s["AutoContrast"] = (None, False)
    s["Equalize"] = (None, False)
    if kind == "auto":
        s["Invert"] = (None, False)
    return s


# Sub-policies: "op probability magnitude-bin" pairs ("-" for ops without a magnitude)
_POLICY_TEXT = {
    AutoAugmentPolicy.IMAGENET: """
        Posterize .4 8 Rotate .6 9; Solarize .6 5 AutoContrast .6 -; Equalize .8 - Equalize .6 -;
        Posterize .6 7 Posterize .6 6; Equalize .4 - Solarize .2 4; Equalize .4 - Rotate .8 8;
        Solarize .6 3 Equalize .6 -; Posterize .8 5 Equalize 1 -; Rotate .2 3 Solarize .6 8;
        Equalize .6 - Posterize .4 6; Rotate .8 8 Color .4 0; Rotate .4 9 Equalize .6 -;
        Equalize 0 - Equalize .8 -; Invert .6 - Equalize 1 -; Color .6 4 Contrast 1 8;
        Rotate .8 8 Color 1 2; Color .8 8 Solarize .8 7; Sharpness .4 7 Invert .6 -;
        ShearX .6 5 Equalize 1 -; Color .4 0 Equalize .6 -; Equalize .4 - Solarize .2 4;
        Solarize .6 5 AutoContrast .6 -; Invert .6 - Equalize 1 -; Color .6 4 Contrast 1 8;
        Equalize .8 - Equalize .6 -""",
    AutoAugmentPolicy.CIFAR10: """
        Invert .1 - Contrast .2 6; Rotate .7 2 TranslateX .3 9; Sharpness .8 1 Sharpness .9 3;
        ShearY .5 8 TranslateY .7 9; AutoContrast .5 - Equalize .9 -; ShearY .2 7 Posterize .3 7;
        Color .4 3 Brightness .6 7; Sharpness .3 9 Brightness .7 9; Equalize .6 - Equalize .5 -;
        Contrast .6 7 Sharpness .6 5; Color .7 7 TranslateX .5 8; Equalize .3 - AutoContrast .4 -;
        TranslateY .4 3 Sharpness .2 6; Brightness .9 6 Color .2 8; Solarize .5 2 Invert 0 -;
        Equalize .2 - AutoContrast .6 -; Equalize .2 - Equalize .6 -; Color .9 9 Equalize .6 -;
        AutoContrast .8 - Solarize .2 8; Brightness .1 3 Color .7 0; Solarize .4 5 AutoContrast .9 -;
        TranslateY .9 9 TranslateY .7 9; AutoContrast .9 - Solarize .8 3; Equalize .8 - Invert .1 -;
        TranslateY .7 9 AutoContrast .9 -""",
    AutoAugmentPolicy.SVHN: """
        ShearX .9 4 Invert .2 -; ShearY .9 8 Invert .7 -; Equalize .6 - Solarize .6 6;
        Invert .9 - Equalize .6 -; Equalize .6 - Rotate .9 3; ShearX .9 4 AutoContrast .8 -;
        ShearY .9 8 Invert .4 -; ShearY .9 5 Solarize .2 6; Invert .9 - AutoContrast .8 -;
        Equalize .6 - Rotate .9 3; ShearX .9 4 Solarize .3 3; ShearY .8 8 Invert .7 -;
        Equalize .9 - TranslateY .6 6; Invert .9 - Equalize .6 -; Contrast .3 3 Rotate .8 4;
        Invert .8 - TranslateY 0 2; ShearY .7 6 Solarize .4 8; Invert .6 - Rotate .8 4;
        ShearY .3 7 TranslateX .9 3; ShearX .1 6 Invert .6 -; Solarize .7 2 TranslateY .6 7;
        ShearY .8 4 Invert .8 -; ShearX .7 9 TranslateY .8 3; ShearY .8 5 AutoContrast .7 -;
        ShearX .7 2 Invert .1 -""",
}


def _policies(policy: AutoAugmentPolicy):
    out = []
    for sub in _POLICY_TEXT[policy].split(";"):
        w = sub.split()
        out.append(tuple((w[i], float(w[i + 1]), None if w[i + 2] == "-" else int(w[i + 2]))
                         for i in (0, 3)))  # fmt: skip
    return out


def _magnitude(mags, idx) -> float:
    return 0.0 if mags is None else float(mags[idx])


class AutoAugment(mg.nn.Module):
    """A random sub-policy of two ops of ``policy`` (each with its probability)."""

    def __init__(self, policy=AutoAugmentPolicy.IMAGENET, interpolation=InterpolationMode.NEAREST,
                 fill=None):  # fmt: skip
        super().__init__()
        self.policy = AutoAugmentPolicy(policy)
        self.interpolation, self.fill = F._mode(interpolation), fill
        self.policies = _policies(self.policy)

    @staticmethod
    def get_params(transform_num: int):
        policy_id = int(mg.randint(transform_num, (1,)).item())
        return policy_id, mg.rand((2,)), mg.randint(2, (2,))

    def forward(self, img):
        fill = _tensor_fill(img, self.fill)
        _, h, w = F.get_dimensions(img)
        pid, probs, signs = self.get_params(len(self.policies))
        space = _space("auto", 10, (h, w))
        for i, (op, p, mag_id) in enumerate(self.policies[pid]):
            if float(probs[i]) <= p:
                mags, signed = space[op]
                m = _magnitude(mags, mag_id) if mag_id is not None else 0.0
                if signed and int(signs[i]) == 0:
                    m = -m
                img = _apply_op(img, op, m, self.interpolation, fill)
        return img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(policy={self.policy}, fill={self.fill})"


class RandAugment(mg.nn.Module):
    """``num_ops`` ops picked uniformly, all at ``magnitude`` (of ``num_magnitude_bins``)."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31,
                 interpolation=InterpolationMode.NEAREST, fill=None):  # fmt: skip
        super().__init__()
        self.num_ops, self.magnitude, self.num_magnitude_bins = (
            num_ops,
            magnitude,
            num_magnitude_bins,
        )
        self.interpolation, self.fill = F._mode(interpolation), fill

    def forward(self, img):
        fill = _tensor_fill(img, self.fill)
        _, h, w = F.get_dimensions(img)
        space = _space("rand", self.num_magnitude_bins, (h, w))
        names = list(space)
        for _ in range(self.num_ops):
            op = names[int(mg.randint(len(space), (1,)).item())]
            mags, signed = space[op]
            m = _magnitude(mags, self.magnitude)
            if signed and int(mg.randint(2, (1,)).item()):
                m = -m
            img = _apply_op(img, op, m, self.interpolation, fill)
        return img

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_ops={self.num_ops}, magnitude={self.magnitude}, "
                f"num_magnitude_bins={self.num_magnitude_bins}, "
                f"interpolation={self.interpolation}, fill={self.fill})")  # fmt: skip


class TrivialAugmentWide(mg.nn.Module):
    """One op picked uniformly at a magnitude picked uniformly (wide ranges)."""

    def __init__(self, num_magnitude_bins: int = 31, interpolation=InterpolationMode.NEAREST,
                 fill=None):  # fmt: skip
        super().__init__()
        self.num_magnitude_bins = num_magnitude_bins
        self.interpolation, self.fill = F._mode(interpolation), fill

    def forward(self, img):
        fill = _tensor_fill(img, self.fill)
        space = _space("wide", self.num_magnitude_bins)
        op = list(space)[int(mg.randint(len(space), (1,)).item())]
        mags, signed = space[op]
        m = 0.0 if mags is None else float(mags[int(mg.randint(len(mags), (1,)).item())])
        if signed and int(mg.randint(2, (1,)).item()):
            m = -m
        return _apply_op(img, op, m, self.interpolation, fill)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_magnitude_bins={self.num_magnitude_bins}, "
                f"interpolation={self.interpolation}, fill={self.fill})")  # fmt: skip


class AugMix(mg.nn.Module):
    """A Dirichlet-weighted mix of ``mixture_width`` chains of random ops, blended with the
    original image by a Beta(alpha, alpha) weight."""

    def __init__(self, severity: int = 3, mixture_width: int = 3, chain_depth: int = -1,
                 alpha: float = 1.0, all_ops: bool = True,
                 interpolation=InterpolationMode.BILINEAR, fill=None):  # fmt: skip
        super().__init__()
        if not 1 <= severity <= 10:
            raise ValueError(f"The severity must be between [1, 10]. Got {severity} instead.")
        self.severity, self.mixture_width, self.chain_depth = severity, mixture_width, chain_depth
        self.alpha, self.all_ops = alpha, all_ops
        self.interpolation, self.fill = F._mode(interpolation), fill

    def _ops(self, h, w):
        s = _space("augmix", 10, (h, w))
        if self.all_ops:
            for k in ("Brightness", "Color", "Contrast", "Sharpness"):
                s[k] = (_linspace(0.0, 0.9, 10), True)
        return s

    def forward(self, orig):
        pil = F._is_pil(orig)
        img = F.pil_to_tensor(orig) if pil else orig
        fill = None if pil else _tensor_fill(img, self.fill)
        _, h, w = F.get_dimensions(img)
        space = self._ops(h, w)
        names = list(space)
        shape = list(img.shape)
        batch = img.reshape([1] * max(4 - img.ndim, 0) + shape)
        n = batch.shape[0]
        bshape = [n] + [1] * (batch.ndim - 1)
        dirichlet = mg.distributions.Dirichlet
        m = dirichlet(mg.tensor([self.alpha, self.alpha]).expand(n, 2)).sample()
        weights = dirichlet(mg.tensor([self.alpha] * self.mixture_width).expand(n, -1)).sample()
        weights = weights * m[:, 1].view(n, -1)
        mix = m[:, 0].view(bshape) * batch
        for i in range(self.mixture_width):
            aug = batch
            depth = self.chain_depth if self.chain_depth > 0 else int(mg.randint(1, 4, (1,)).item())
            for _ in range(depth):
                op = names[int(mg.randint(len(space), (1,)).item())]
                mags, signed = space[op]
                mag = (
                    0.0
                    if mags is None
                    else float(mags[int(mg.randint(self.severity, (1,)).item())])
                )
                if signed and int(mg.randint(2, (1,)).item()):
                    mag = -mag
                aug = _apply_op(aug, op, mag, self.interpolation, fill)
            mix = mix + weights[:, i].view(bshape) * aug
        mix = mix.reshape(shape).to(img.dtype)
        return F.to_pil_image(mix) if pil else mix
