"""torchvision.transforms.v2 on manygrad.

A v2 transform takes any structure of inputs (``t(img)``, ``t(img, label)``,
``t({"image": img, "boxes": boxes})``), draws its random parameters once per call and
applies them to every input it knows: PIL images, ``tv_tensors.Image`` / ``Video``,
``Mask`` (geometric transforms only, nearest neighbours) and ``BoundingBoxes``
(moved with the image: flips, resizes, crops and pads). A plain tensor counts as the
image when the call has no PIL image or ``tv_tensors.Image``/``Video`` (the first one
only); everything else (labels, strings, numbers) passes through unchanged, as in
torchvision.
"""

from __future__ import annotations

import math

import manygrad as mg

from ... import transforms as _v1
from ... import tv_tensors
from .. import (  # noqa: F401  (re-exported: the same classes in v2)
    InterpolationMode,
)
from .. import functional as F1
from . import functional
from . import functional as F

__all__ = [
    "AugMix", "AutoAugment", "AutoAugmentPolicy", "RandAugment", "TrivialAugmentWide",
    "CenterCrop", "ColorJitter", "Compose", "ConvertImageDtype", "CutMix", "ElasticTransform",
    "FiveCrop", "RandomPerspective",
    "GaussianBlur", "GaussianNoise", "Grayscale", "Identity", "InterpolationMode", "Lambda",
    "MixUp", "Normalize", "PILToTensor", "Pad", "RGB", "RandomAdjustSharpness",
    "RandomAffine", "RandomApply", "RandomAutocontrast", "RandomChannelPermutation",
    "RandomChoice", "RandomCrop", "RandomEqualize", "RandomErasing", "RandomGrayscale",
    "RandomHorizontalFlip", "RandomInvert", "RandomOrder", "RandomPhotometricDistort",
    "RandomPosterize", "RandomResize", "RandomResizedCrop", "RandomRotation",
    "RandomShortestSize", "RandomSolarize", "RandomVerticalFlip", "Resize", "TenCrop",
    "ToDtype", "ToImage", "ToPILImage", "ToPureTensor", "ToTensor", "Transform",
    "functional",
]  # fmt: skip


def _coin() -> float:
    return float(mg.rand(1).item())


def _uniform(lo, hi) -> float:
    return float(mg.empty(1).uniform_(lo, hi).item())


def _randint(lo: int, hi: int) -> int:
    return int(mg.randint(lo, hi, (1,)).item())


# ---------------------------------------------------------------------------- plumbing


def _flatten(obj, out):
    """Leaves of nested tuples/lists/dicts into ``out``; returns a rebuild function."""
    if isinstance(obj, (tuple, list)):
        parts = [_flatten(v, out) for v in obj]
        kind = type(obj)
        return lambda it: kind(p(it) for p in parts)
    if isinstance(obj, dict):
        parts = {k: _flatten(v, out) for k, v in obj.items()}
        kind = type(obj)
        return lambda it: kind((k, p(it)) for k, p in parts.items())
    out.append(obj)
    return lambda it: next(it)


def _kind(x) -> str | None:
    if F1._is_pil(x):
        return "pil"
    if isinstance(x, tv_tensors.BoundingBoxes):
        return "boxes"
    if isinstance(x, tv_tensors.Mask):
        return "mask"
    if isinstance(x, (tv_tensors.Image, tv_tensors.Video)):
        return "image"
    if isinstance(x, mg.Tensor):
        return "tensor"
    return None


class Transform(mg.nn.Module):
    """The base class: ``make_params(flat_inputs)`` draws the parameters once per call,
    ``transform(inpt, params)`` applies them to one input."""

    # which kinds of input this transform changes (the others pass through)
    _kinds = ("pil", "image", "mask", "boxes")

    def forward(self, *inputs):
        obj = inputs if len(inputs) > 1 else inputs[0]
        flat: list = []
        rebuild = _flatten(obj, flat)
        kinds = [_kind(x) for x in flat]
        has_image = any(k in ("pil", "image") for k in kinds)
        todo = []
        for k in kinds:
            if k == "tensor":  # NOTE: a plain tensor is the image only when there is none
                k = None if has_image else "image"
                has_image = has_image or k == "image"
            todo.append(k if k in self._kinds else None)
        work = [x for x, k in zip(flat, todo) if k is not None]
        params = self.make_params(work) if work else {}
        out = [self.transform(x, params, k) if k is not None else x for x, k in zip(flat, todo)]
        return rebuild(iter(out))

    def make_params(self, flat_inputs) -> dict:
        return {}

    def transform(self, inpt, params, kind=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ""


def _query_chw(flat):
    for x in flat:
        k = _kind(x)
        if k in ("pil", "image", "tensor"):
            return F1.get_dimensions(x)
    for x in flat:
        if _kind(x) == "mask":
            return [1, *x.shape[-2:]]
        if _kind(x) == "boxes":
            return [0, *x.canvas_size]
    raise TypeError("No image, video, mask or bounding box was found in the sample")


def _relabel(out, like):
    if isinstance(like, (tv_tensors.Image, tv_tensors.Video, tv_tensors.Mask)):
        return out.as_subclass(type(like))
    return out


# ---------------------------------------------------------------------------- boxes


def _to_xyxy(b, fmt):
    if fmt is tv_tensors.BoundingBoxFormat.XYXY:
        return b
    x, y, w, h = b.unbind(-1)
    if fmt is tv_tensors.BoundingBoxFormat.XYWH:
        return mg.stack([x, y, x + w, y + h], -1)
    return mg.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], -1)


def _from_xyxy(b, fmt):
    if fmt is tv_tensors.BoundingBoxFormat.XYXY:
        return b
    x1, y1, x2, y2 = b.unbind(-1)
    if fmt is tv_tensors.BoundingBoxFormat.XYWH:
        return mg.stack([x1, y1, x2 - x1, y2 - y1], -1)
    return mg.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)


def _boxes_op(boxes, fn, canvas, clamp=True):
    """``fn(xyxy float boxes) -> xyxy`` on ``boxes``, labelled with the new ``canvas``."""
    dt = boxes.dtype
    b = _to_xyxy(boxes.as_subclass(mg.Tensor).to(mg.float64 if dt == mg.float64 else mg.float32),
                 boxes.format)  # fmt: skip
    b = fn(b)
    if clamp:
        h, w = canvas
        x1, y1, x2, y2 = b.unbind(-1)
        b = mg.stack([x1.clamp(0, w), y1.clamp(0, h), x2.clamp(0, w), y2.clamp(0, h)], -1)
    b = _from_xyxy(b, boxes.format)  # NOTE: integer boxes truncate, as torchvision's
    return tv_tensors.BoundingBoxes(b.to(dt), format=boxes.format, canvas_size=canvas)


def _geometry(inpt, kind, image_fn, box_fn=None, mask_fn=None):
    if kind == "boxes":
        if box_fn is None:
            raise TypeError(
                "this transform does not move bounding boxes yet; apply it to the image only"
            )
        return box_fn(inpt)
    if kind == "mask":
        return _relabel((mask_fn or image_fn)(inpt.as_subclass(mg.Tensor)), inpt)
    if kind == "pil":
        return image_fn(inpt)
    return _relabel(image_fn(inpt.as_subclass(mg.Tensor)), inpt)


def _mask_nearest(fn):
    """``fn`` on a mask (H, W) or (..., H, W), nearest neighbours whatever the transform's
    interpolation (``fn`` takes the interpolation as its keyword)."""

    def run(m):
        squeeze = m.ndim == 2
        x = m[None] if squeeze else m
        y = fn(x, interpolation=InterpolationMode.NEAREST)
        return y[0] if squeeze else y

    return run


# ---------------------------------------------------------------------------- conversions


class ToImage(Transform):
    """PIL image, NumPy HWC array or tensor -> ``tv_tensors.Image`` (values unchanged)."""

    _kinds = ("pil", "image")

    def forward(self, *inputs):
        obj = inputs if len(inputs) > 1 else inputs[0]
        flat: list = []
        rebuild = _flatten(obj, flat)
        import numpy as np

        done = False
        out = []
        for x in flat:
            if F1._is_pil(x) or isinstance(x, np.ndarray) and not done:
                x = F.to_image(x)
            elif isinstance(x, mg.Tensor) and _kind(x) == "tensor" and not done:
                x = F.to_image(x)
                done = True
            out.append(x)
        return rebuild(iter(out))


class PILToTensor(Transform):
    _kinds = ("pil",)

    def transform(self, inpt, params, kind=None):
        return F1.pil_to_tensor(inpt)


class ToTensor(PILToTensor):
    """Deprecated in torchvision: ``ToImage()`` then ``ToDtype(float32, scale=True)``."""

    def transform(self, inpt, params, kind=None):
        return F1.to_tensor(inpt)


class ToPILImage(Transform):
    _kinds = ("image",)

    def __init__(self, mode=None):
        super().__init__()
        self.mode = mode

    def transform(self, inpt, params, kind=None):
        return F1.to_pil_image(inpt, self.mode)


class ToPureTensor(Transform):
    """tv_tensors back to plain tensors."""

    _kinds = ("image", "mask", "boxes")

    def transform(self, inpt, params, kind=None):
        return inpt.as_subclass(mg.Tensor)


class ToDtype(Transform):
    """Inputs in ``dtype`` (one dtype, or a dict from tv_tensor type to dtype, "others"
    for the rest); ``scale=True`` rescales image values to the new dtype's range."""

    _kinds = ("image", "mask", "boxes")

    def __init__(self, dtype, scale: bool = False):
        super().__init__()
        self.dtype, self.scale = dtype, scale

    def _dtype_for(self, inpt):
        if not isinstance(self.dtype, dict):
            return self.dtype if isinstance(inpt, (tv_tensors.Image, tv_tensors.Video)) or \
                _kind(inpt) == "tensor" else None  # fmt: skip
        for k, v in self.dtype.items():
            if isinstance(k, type) and isinstance(inpt, k):
                return v
        return self.dtype.get("others")

    def transform(self, inpt, params, kind=None):
        dt = self._dtype_for(inpt)
        if dt is None:
            return inpt
        if kind == "image" and self.scale:
            return _relabel(F1.convert_image_dtype(inpt.as_subclass(mg.Tensor), dt), inpt)
        out = inpt.as_subclass(mg.Tensor).to(dt)
        if kind == "boxes":
            return tv_tensors.wrap(out, like=inpt)
        return _relabel(out, inpt)


class ConvertImageDtype(ToDtype):
    def __init__(self, dtype=None):
        super().__init__(mg.float32 if dtype is None else dtype, scale=True)


class Identity(Transform):
    def transform(self, inpt, params, kind=None):
        return inpt


class Lambda(Transform):
    """``lambd`` on the inputs of ``types`` (all by default)."""

    def __init__(self, lambd, *types):
        super().__init__()
        self.lambd, self.types = lambd, types

    def forward(self, *inputs):
        obj = inputs if len(inputs) > 1 else inputs[0]
        flat: list = []
        rebuild = _flatten(obj, flat)
        out = [self.lambd(x) if not self.types or isinstance(x, self.types) else x for x in flat]
        return rebuild(iter(out))


# ---------------------------------------------------------------------------- containers


class Compose(Transform):
    def __init__(self, transforms):
        super().__init__()
        if not isinstance(transforms, (list, tuple)):
            raise TypeError("Argument transforms should be a sequence of callables")
        self.transforms = list(transforms)

    def forward(self, *inputs):
        needs_unpack = len(inputs) > 1
        for t in self.transforms:
            out = t(*inputs)
            inputs = out if needs_unpack else (out,)
        return inputs if needs_unpack else inputs[0]

    def extra_repr(self) -> str:
        return "\n".join(f"  {t}" for t in self.transforms)


class RandomApply(Compose):
    def __init__(self, transforms, p: float = 0.5):
        super().__init__(transforms)
        if not 0.0 <= p <= 1.0:
            raise ValueError("`p` should be a floating point value in the interval [0.0, 1.0].")
        self.p = p

    def forward(self, *inputs):
        if _coin() >= self.p:
            return inputs if len(inputs) > 1 else inputs[0]
        return super().forward(*inputs)


class RandomChoice(Transform):
    def __init__(self, transforms, p=None):
        super().__init__()
        if p is None:
            p = [1] * len(transforms)
        elif len(p) != len(transforms):
            raise ValueError(
                f"Length of p doesn't match the number of transforms: {len(p)} != {len(transforms)}"
            )
        self.transforms = transforms
        total = sum(p)
        self.p = [w / total for w in p]

    def forward(self, *inputs):
        idx = int(mg.multinomial(mg.tensor(self.p), 1).item())
        return self.transforms[idx](*inputs)


class RandomOrder(Transform):
    def __init__(self, transforms):
        super().__init__()
        self.transforms = transforms

    def forward(self, *inputs):
        needs_unpack = len(inputs) > 1
        for i in mg.randperm(len(self.transforms)).tolist():
            out = self.transforms[i](*inputs)
            inputs = out if needs_unpack else (out,)
        return inputs if needs_unpack else inputs[0]


# ---------------------------------------------------------------------------- geometry


class Resize(Transform):
    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None,
                 antialias=True):  # fmt: skip
        super().__init__()
        if isinstance(size, int):
            size = [size]
        self.size = list(size) if size is not None else None
        self.interpolation = F1._mode(interpolation)
        self.max_size, self.antialias = max_size, antialias

    def transform(self, inpt, params, kind=None):
        return F.resize(inpt, self.size, self.interpolation, self.max_size, self.antialias)


class CenterCrop(Transform):
    def __init__(self, size):
        super().__init__()
        self.size = size

    def transform(self, inpt, params, kind=None):
        return F.center_crop(inpt, self.size)


class RandomCrop(Transform):
    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        super().__init__()
        self.size = _v1._size2(size)
        self.padding, self.pad_if_needed = padding, pad_if_needed
        self.fill, self.padding_mode = fill, padding_mode

    def make_params(self, flat_inputs):
        _, h, w = _query_chw(flat_inputs)
        pad = [0, 0, 0, 0]  # left, top, right, bottom
        if self.padding is not None:
            pad = F1._pad_sides(self.padding)
        h += pad[1] + pad[3]
        w += pad[0] + pad[2]
        th, tw = self.size
        if self.pad_if_needed and h < th:
            d = th - h
            pad[1] += d
            pad[3] += d
            h += 2 * d
        if self.pad_if_needed and w < tw:
            d = tw - w
            pad[0] += d
            pad[2] += d
            w += 2 * d
        if h < th or w < tw:
            raise ValueError(
                f"Required crop size {(th, tw)} is larger than input image size {(h, w)}"
            )
        top = _randint(0, h - th + 1) if h > th else 0
        left = _randint(0, w - tw + 1) if w > tw else 0
        return dict(padding=pad if any(pad) else None, top=top, left=left, height=th, width=tw)

    def transform(self, inpt, params, kind=None):
        if params["padding"] is not None:
            inpt = F.pad(inpt, params["padding"], self.fill, self.padding_mode)
        return F.crop(inpt, params["top"], params["left"], params["height"], params["width"])


class RandomResizedCrop(Transform):
    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=InterpolationMode.BILINEAR, antialias=True):  # fmt: skip
        super().__init__()
        self.size = _v1._size2(size)
        self.scale, self.ratio = scale, ratio
        self.interpolation, self.antialias = F1._mode(interpolation), antialias

    def make_params(self, flat_inputs):
        _, h, w = _query_chw(flat_inputs)
        probe = mg.empty(0, h, w)
        top, left, ch, cw = _v1.RandomResizedCrop.get_params(probe, self.scale, self.ratio)
        return dict(top=top, left=left, height=ch, width=cw)

    def transform(self, inpt, params, kind=None):
        return F.resized_crop(inpt, params["top"], params["left"], params["height"],
                              params["width"], self.size, self.interpolation,
                              antialias=self.antialias)  # fmt: skip


class RandomHorizontalFlip(Transform):
    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, *inputs):
        if _coin() >= self.p:
            return inputs if len(inputs) > 1 else inputs[0]
        return super().forward(*inputs)

    def transform(self, inpt, params, kind=None):
        return F.horizontal_flip(inpt)


class RandomVerticalFlip(RandomHorizontalFlip):
    def transform(self, inpt, params, kind=None):
        return F.vertical_flip(inpt)


class Pad(Transform):
    def __init__(self, padding, fill=0, padding_mode="constant"):
        super().__init__()
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def transform(self, inpt, params, kind=None):
        return F.pad(inpt, self.padding, self.fill, self.padding_mode)


class RandomRotation(Transform):
    def __init__(self, degrees, interpolation=InterpolationMode.NEAREST, expand=False,
                 center=None, fill=0):  # fmt: skip
        super().__init__()
        self.degrees = _v1._degrees(degrees)
        self.interpolation = F1._mode(interpolation)
        self.expand, self.center, self.fill = expand, center, fill

    def make_params(self, flat_inputs):
        if any(_kind(x) == "boxes" for x in flat_inputs):
            raise TypeError("RandomRotation: bounding boxes are not rotated yet")
        return dict(angle=_uniform(self.degrees[0], self.degrees[1]))

    def transform(self, inpt, params, kind=None):
        fill = _v1._tensor_fill(inpt, self.fill) if kind != "pil" else self.fill
        interp = InterpolationMode.NEAREST if kind == "mask" else self.interpolation
        return F.rotate(inpt, params["angle"], interp, self.expand, self.center, fill)


class RandomAffine(Transform):
    def __init__(self, degrees, translate=None, scale=None, shear=None,
                 interpolation=InterpolationMode.NEAREST, fill=0, center=None):  # fmt: skip
        super().__init__()
        self._v1 = _v1.RandomAffine(degrees, translate, scale, shear, interpolation, fill, center)

    def make_params(self, flat_inputs):
        if any(_kind(x) == "boxes" for x in flat_inputs):
            raise TypeError("RandomAffine: bounding boxes are not moved by affine maps yet")
        _, h, w = _query_chw(flat_inputs)
        v = self._v1
        a, tr, sc, sh = v.get_params(v.degrees, v.translate, v.scale, v.shear, [w, h])
        return dict(angle=a, translate=list(tr), scale=sc, shear=list(sh))

    def transform(self, inpt, params, kind=None):
        v = self._v1
        fill = _v1._tensor_fill(inpt, v.fill) if kind != "pil" else v.fill
        interp = InterpolationMode.NEAREST if kind == "mask" else v.interpolation
        return F.affine(inpt, params["angle"], params["translate"], params["scale"],
                        params["shear"], interp, fill, v.center)  # fmt: skip


class FiveCrop(Transform):
    _kinds = ("pil", "image")

    def __init__(self, size):
        super().__init__()
        self.size = size

    def transform(self, inpt, params, kind=None):
        return F1.five_crop(inpt, self.size)


class TenCrop(FiveCrop):
    def __init__(self, size, vertical_flip=False):
        super().__init__(size)
        self.vertical_flip = vertical_flip

    def transform(self, inpt, params, kind=None):
        return F1.ten_crop(inpt, self.size, self.vertical_flip)


class RandomShortestSize(Transform):
    """The shorter edge resized to a random one of ``min_size`` (the longer capped by
    ``max_size``)."""

    def __init__(self, min_size, max_size=None, interpolation=InterpolationMode.BILINEAR,
                 antialias=True):  # fmt: skip
        super().__init__()
        self.min_size = [min_size] if isinstance(min_size, int) else list(min_size)
        self.max_size, self.interpolation = max_size, F1._mode(interpolation)
        self.antialias = antialias

    def make_params(self, flat_inputs):
        _, h, w = _query_chw(flat_inputs)
        m = self.min_size[_randint(0, len(self.min_size))]
        r = m / min(h, w)
        if self.max_size is not None:
            r = min(r, self.max_size / max(h, w))
        return dict(size=[int(h * r), int(w * r)])

    def transform(self, inpt, params, kind=None):
        return F.resize(inpt, params["size"], self.interpolation, antialias=self.antialias)


class RandomResize(Transform):
    """Resized (smaller edge, an int) to a size drawn from ``[min_size, max_size)``."""

    def __init__(self, min_size, max_size, interpolation=InterpolationMode.BILINEAR,
                 antialias=True):  # fmt: skip
        super().__init__()
        self.min_size, self.max_size = min_size, max_size
        self.interpolation, self.antialias = F1._mode(interpolation), antialias

    def make_params(self, flat_inputs):
        return dict(size=[_randint(self.min_size, self.max_size)])

    def transform(self, inpt, params, kind=None):
        return F.resize(inpt, params["size"], self.interpolation, antialias=self.antialias)


# ---------------------------------------------------------------------------- colour


class _Color(Transform):
    _kinds = ("pil", "image")


class Normalize(_Color):
    _kinds = ("image",)

    def __init__(self, mean, std, inplace: bool = False):
        super().__init__()
        self.mean, self.std, self.inplace = list(mean), list(std), inplace

    def transform(self, inpt, params, kind=None):
        return _relabel(F1.normalize(inpt.as_subclass(mg.Tensor), self.mean, self.std,
                                     self.inplace), inpt)  # fmt: skip


class ColorJitter(_Color):
    def __init__(self, brightness=None, contrast=None, saturation=None, hue=None):
        super().__init__()
        self.brightness = _v1._range(brightness or 0, "brightness")
        self.contrast = _v1._range(contrast or 0, "contrast")
        self.saturation = _v1._range(saturation or 0, "saturation")
        self.hue = _v1._range(
            hue or 0, "hue", center=0, bound=(-0.5, 0.5), clip_first_on_zero=False
        )

    def make_params(self, flat_inputs):
        order, b, c, s, h = _v1.ColorJitter.get_params(self.brightness, self.contrast, self.saturation,
                                          self.hue)  # fmt: skip
        return dict(order=order.tolist(), b=b, c=c, s=s, h=h)

    def transform(self, inpt, params, kind=None):
        def run(x):
            for k in params["order"]:
                if k == 0 and params["b"] is not None:
                    x = F1.adjust_brightness(x, params["b"])
                elif k == 1 and params["c"] is not None:
                    x = F1.adjust_contrast(x, params["c"])
                elif k == 2 and params["s"] is not None:
                    x = F1.adjust_saturation(x, params["s"])
                elif k == 3 and params["h"] is not None:
                    x = F1.adjust_hue(x, params["h"])
            return x

        return _geometry(inpt, kind, run)


class RandomPhotometricDistort(_Color):
    """Brightness, contrast, saturation, hue (and a channel permutation), each with
    probability ``p``; contrast before or after the others at random (SSD's recipe)."""

    def __init__(self, brightness=(0.875, 1.125), contrast=(0.5, 1.5), saturation=(0.5, 1.5),
                 hue=(-0.05, 0.05), p=0.5):  # fmt: skip
        super().__init__()
        self.brightness, self.contrast = brightness, contrast
        self.saturation, self.hue, self.p = saturation, hue, p

    def make_params(self, flat_inputs):
        c = _query_chw(flat_inputs)[0]
        params = {}
        for key, rng in (("brightness", self.brightness), ("contrast", self.contrast),
                         ("saturation", self.saturation), ("hue", self.hue)):  # fmt: skip
            params[key] = _uniform(rng[0], rng[1]) if _coin() < self.p else None
        params["contrast_before"] = bool(_coin() < 0.5)
        params["perm"] = mg.randperm(c).tolist() if _coin() < self.p else None
        return params

    def transform(self, inpt, params, kind=None):
        def run(x):
            if params["brightness"] is not None:
                x = F1.adjust_brightness(x, params["brightness"])
            if params["contrast"] is not None and params["contrast_before"]:
                x = F1.adjust_contrast(x, params["contrast"])
            if params["saturation"] is not None:
                x = F1.adjust_saturation(x, params["saturation"])
            if params["hue"] is not None:
                x = F1.adjust_hue(x, params["hue"])
            if params["contrast"] is not None and not params["contrast_before"]:
                x = F1.adjust_contrast(x, params["contrast"])
            if params["perm"] is not None:
                x = F.permute_channels(x, params["perm"])
            return x

        return _geometry(inpt, kind, run)


class RandomChannelPermutation(_Color):
    def make_params(self, flat_inputs):
        return dict(perm=mg.randperm(_query_chw(flat_inputs)[0]).tolist())

    def transform(self, inpt, params, kind=None):
        return _geometry(inpt, kind, lambda x: F.permute_channels(x, params["perm"]))


class Grayscale(_Color):
    def __init__(self, num_output_channels: int = 1):
        super().__init__()
        self.num_output_channels = num_output_channels

    def transform(self, inpt, params, kind=None):
        return _geometry(inpt, kind, lambda x: F1.rgb_to_grayscale(x, self.num_output_channels))


class RandomGrayscale(_Color):
    def __init__(self, p: float = 0.1):
        super().__init__()
        self.p = p

    def make_params(self, flat_inputs):
        return dict(apply=_coin() < self.p, c=_query_chw(flat_inputs)[0])

    def transform(self, inpt, params, kind=None):
        if not params["apply"]:
            return inpt
        return _geometry(inpt, kind, lambda x: F1.rgb_to_grayscale(x, params["c"]))


class RGB(_Color):
    """Images as 3-channel RGB (grayscale repeated)."""

    def transform(self, inpt, params, kind=None):
        def run(x):
            if F1._is_pil(x):
                return x.convert("RGB")
            return x if x.shape[-3] == 3 else x.expand(*x.shape[:-3], 3, *x.shape[-2:])

        return _geometry(inpt, kind, run)


class GaussianBlur(_Color):
    def __init__(self, kernel_size, sigma=(0.1, 2.0)):
        super().__init__()
        self._v1 = _v1.GaussianBlur(kernel_size, sigma)

    def make_params(self, flat_inputs):
        return dict(sigma=self._v1.get_params(self._v1.sigma[0], self._v1.sigma[1]))

    def transform(self, inpt, params, kind=None):
        s = params["sigma"]
        return _geometry(
            inpt, kind, lambda x: F1.gaussian_blur(x, list(self._v1.kernel_size), [s, s])
        )


class GaussianNoise(_Color):
    """``image + sigma * N(0, 1) + mean`` on float images (clipped to [0, 1] by default)."""

    _kinds = ("image",)

    def __init__(self, mean: float = 0.0, sigma: float = 0.1, clip: bool = True):
        super().__init__()
        self.mean, self.sigma, self.clip = mean, sigma, clip

    def transform(self, inpt, params, kind=None):
        x = inpt.as_subclass(mg.Tensor)
        if not x.is_floating_point():
            raise ValueError(
                f"GaussianNoise: input tensor is expected to be in float dtype, got dtype={x.dtype}"
            )
        if self.sigma < 0:
            raise ValueError(f"sigma shouldn't be negative. Got {self.sigma}")
        out = x + mg.randn_like(x) * self.sigma + self.mean
        return _relabel(out.clamp(0, 1) if self.clip else out, inpt)


class _RandomColorFn(_Color):
    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, *inputs):
        if _coin() >= self.p:
            return inputs if len(inputs) > 1 else inputs[0]
        return super().forward(*inputs)

    def transform(self, inpt, params, kind=None):
        return _geometry(inpt, kind, self._fn)


class RandomInvert(_RandomColorFn):
    def _fn(self, x):
        return F1.invert(x)


class RandomAutocontrast(_RandomColorFn):
    def _fn(self, x):
        return F1.autocontrast(x)


class RandomEqualize(_RandomColorFn):
    def _fn(self, x):
        return F1.equalize(x)


class RandomPosterize(_RandomColorFn):
    def __init__(self, bits: int, p: float = 0.5):
        super().__init__(p)
        self.bits = bits

    def _fn(self, x):
        return F1.posterize(x, self.bits)


class RandomSolarize(_RandomColorFn):
    def __init__(self, threshold: float, p: float = 0.5):
        super().__init__(p)
        self.threshold = threshold

    def _fn(self, x):
        return F1.solarize(x, self.threshold)


class RandomAdjustSharpness(_RandomColorFn):
    def __init__(self, sharpness_factor: float, p: float = 0.5):
        super().__init__(p)
        self.sharpness_factor = sharpness_factor

    def _fn(self, x):
        return F1.adjust_sharpness(x, self.sharpness_factor)


class RandomErasing(Transform):
    """A random rectangle of the image erased (masks and boxes pass through)."""

    _kinds = ("image",)

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False):
        super().__init__()
        self._v1 = _v1.RandomErasing(p, scale, ratio, value, inplace)

    def forward(self, *inputs):
        if _coin() >= self._v1.p:
            return inputs if len(inputs) > 1 else inputs[0]
        return super().forward(*inputs)

    def make_params(self, flat_inputs):
        c, h, w = _query_chw(flat_inputs)
        v = self._v1.value
        if isinstance(v, (int, float)):
            v = [float(v)]
        elif isinstance(v, str):
            v = None
        else:
            v = [float(x) for x in v]
        if v is not None and len(v) not in (1, c):
            raise ValueError(
                f"If value is a sequence, it should have either a single value or {c} (number of input channels)"
            )
        probe = mg.empty(c, h, w)
        i, j, eh, ew, val = _v1.RandomErasing.get_params(probe, self._v1.scale, self._v1.ratio, v)
        # NOTE: no rectangle fitted in 10 tries: the image stays as it is
        return dict(i=i, j=j, h=eh, w=ew, v=None if val is probe else val)

    def transform(self, inpt, params, kind=None):
        x = inpt.as_subclass(mg.Tensor)
        v = params["v"]
        if v is None:
            return inpt
        out = F1.erase(x, params["i"], params["j"], params["h"], params["w"], v.to(x.dtype),
                       self._v1.inplace)  # fmt: skip
        return _relabel(out, inpt)


# ---------------------------------------------------------------------------- batches


class _BaseMixUpCutMix(Transform):
    def __init__(self, *, alpha: float = 1.0, num_classes=None, labels_getter="default"):
        super().__init__()
        if alpha <= 0:
            raise ValueError("alpha must be positive")
        self.alpha, self.num_classes = float(alpha), num_classes
        if labels_getter != "default" and not callable(labels_getter):
            raise ValueError("labels_getter should be 'default' or a callable")
        self.labels_getter = labels_getter

    def _beta(self) -> float:
        a = mg.tensor([self.alpha])
        return float(mg.distributions.Beta(a, a).sample(()).item())

    def forward(self, *inputs):
        obj = inputs if len(inputs) > 1 else inputs[0]
        if self.labels_getter == "default":
            if not (isinstance(obj, (tuple, list)) and len(obj) >= 2):
                raise ValueError(
                    "MixUp/CutMix take (images, labels): pass both, or a labels_getter"
                )
            images, labels = obj[0], obj[1]
        else:
            images, labels = (
                obj[0] if isinstance(obj, (tuple, list)) else obj,
                self.labels_getter(obj),
            )
        if not isinstance(images, mg.Tensor) or images.ndim != 4:
            raise ValueError(
                f"Expected a batched image tensor (B, C, H, W), got {type(images).__name__}"
            )
        if (
            not isinstance(labels, mg.Tensor)
            or labels.ndim != 1
            or labels.dtype not in (mg.int64, mg.int32)
        ):
            raise ValueError("Expected labels as an integer tensor of shape (B,)")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"The batch size of the image ({images.shape[0]}) and of the labels ({labels.shape[0]}) differ"
            )
        num_classes = self.num_classes
        if num_classes is None:
            raise ValueError(
                "num_classes must be given (the labels are turned into one-hot vectors)"
            )
        lam, mixed = self._mix(images.as_subclass(mg.Tensor))
        one_hot = mg.nn.functional.one_hot(labels.long(), num_classes).to(
            mixed.dtype if mixed.is_floating_point() else mg.float32
        )
        new_labels = one_hot.roll(1, 0) * (1.0 - lam) + one_hot * lam
        mixed = _relabel(mixed, images)
        if isinstance(obj, (tuple, list)):
            rest = list(obj[2:])
            return (
                type(obj)([mixed, new_labels, *rest])
                if isinstance(obj, list)
                else (mixed, new_labels, *rest)
            )
        return mixed, new_labels


class MixUp(_BaseMixUpCutMix):
    """Each image blended with the next one in the batch, ``lam`` ~ Beta(alpha, alpha);
    labels become the same blend of one-hot vectors."""

    def _mix(self, images):
        lam = self._beta()
        return lam, images.roll(1, 0).mul(1.0 - lam).add(images.mul(lam))


class CutMix(_BaseMixUpCutMix):
    """A box of each image replaced by the next image's; labels weighted by the areas."""

    def _mix(self, images):
        lam = self._beta()
        h, w = images.shape[-2:]
        rx, ry = int(mg.randint(w, ()).item()), int(mg.randint(h, ()).item())
        r = 0.5 * math.sqrt(1.0 - lam)
        rw, rh = int(r * w), int(r * h)
        x1, y1 = max(rx - rw, 0), max(ry - rh, 0)
        x2, y2 = min(rx + rw, w), min(ry + rh, h)
        out = images.clone()
        out[..., y1:y2, x1:x2] = images.roll(1, 0)[..., y1:y2, x1:x2]
        lam = 1.0 - float((x2 - x1) * (y2 - y1)) / (w * h)
        return lam, out


class _Policy(Transform):
    """An augmentation policy of ``transforms`` on the image inputs (PIL or uint8)."""

    _kinds = ("pil", "image")
    _inner_cls = None

    def __init__(self, *args, **kwargs):
        super().__init__()
        self._inner = self._inner_cls(*args, **kwargs)

    def transform(self, inpt, params, kind=None):
        return _geometry(inpt, kind, self._inner)


class AutoAugment(_Policy):
    _inner_cls = _v1.AutoAugment


class RandAugment(_Policy):
    _inner_cls = _v1.RandAugment


class TrivialAugmentWide(_Policy):
    _inner_cls = _v1.TrivialAugmentWide


class AugMix(_Policy):
    _inner_cls = _v1.AugMix


AutoAugmentPolicy = _v1.AutoAugmentPolicy


class RandomPerspective(Transform):
    """With probability ``p``, one perspective warp for the image and its masks."""

    def __init__(self, distortion_scale=0.5, p=0.5, interpolation=InterpolationMode.BILINEAR,
                 fill=0):  # fmt: skip
        super().__init__()
        self.distortion_scale, self.p, self.fill = distortion_scale, p, fill
        self.interpolation = F1._mode(interpolation)

    def forward(self, *inputs):
        if _coin() >= self.p:
            return inputs if len(inputs) > 1 else inputs[0]
        return super().forward(*inputs)

    def make_params(self, flat_inputs):
        if any(_kind(x) == "boxes" for x in flat_inputs):
            raise TypeError("RandomPerspective: bounding boxes are not warped yet")
        _, h, w = _query_chw(flat_inputs)
        return dict(points=_v1.RandomPerspective.get_params(w, h, self.distortion_scale))

    def transform(self, inpt, params, kind=None):
        fill = _v1._tensor_fill(inpt, self.fill) if kind != "pil" else self.fill
        interp = InterpolationMode.NEAREST if kind == "mask" else self.interpolation
        return _geometry(inpt, kind, lambda x: F1.perspective(x, *params["points"], interp, fill))


class ElasticTransform(Transform):
    """One random displacement field for the image and its masks."""

    def __init__(self, alpha=50.0, sigma=5.0, interpolation=InterpolationMode.BILINEAR, fill=0):
        super().__init__()
        self._v1 = _v1.ElasticTransform(alpha, sigma, interpolation, fill)

    def make_params(self, flat_inputs):
        if any(_kind(x) == "boxes" for x in flat_inputs):
            raise TypeError("ElasticTransform: bounding boxes are not displaced yet")
        _, h, w = _query_chw(flat_inputs)
        return dict(disp=self._v1.get_params(self._v1.alpha, self._v1.sigma, [h, w]))

    def transform(self, inpt, params, kind=None):
        v = self._v1
        fill = _v1._tensor_fill(inpt, v.fill) if kind != "pil" else v.fill
        interp = InterpolationMode.NEAREST if kind == "mask" else v.interpolation
        return _geometry(
            inpt, kind, lambda x: F1.elastic_transform(x, params["disp"], interp, fill)
        )
