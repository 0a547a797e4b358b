"""Box format conversions (torchvision.ops._box_convert): corners, corner + size and
centre + size, and the rotated formats (angles in degrees, counter-clockwise)."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor


def _cxcywh_to_xyxy(b: Tensor) -> Tensor:
    cx, cy, w, h = b.unbind(-1)
    return mg.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def _xyxy_to_cxcywh(b: Tensor) -> Tensor:
    x1, y1, x2, y2 = b.unbind(-1)
    return mg.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def _xywh_to_xyxy(b: Tensor) -> Tensor:
    x, y, w, h = b.unbind(-1)
    return mg.stack((x, y, x + w, y + h), dim=-1)


def _xyxy_to_xywh(b: Tensor) -> Tensor:
    x1, y1, x2, y2 = b.unbind(-1)
    return mg.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)


def _rotated_out(parts: tuple, dtype) -> Tensor:
    # NOTE: integer boxes go through floats (the angles) and are rounded back, as torchvision
    out = mg.stack(parts, dim=-1)
    return out.round().to(dtype) if not dtype.is_floating_point else out


def _cos_sin(r: Tensor) -> tuple[Tensor, Tensor]:
    rad = r * mg.pi / 180.0
    return mg.cos(rad), mg.sin(rad)


def _cxcywhr_to_xywhr(b: Tensor) -> Tensor:
    cx, cy, w, h, r = b.unbind(-1)
    cos, sin = _cos_sin(r)
    return _rotated_out(
        (cx - w / 2 * cos - h / 2 * sin, cy - h / 2 * cos + w / 2 * sin, w, h, r), b.dtype
    )


def _xywhr_to_cxcywhr(b: Tensor) -> Tensor:
    x1, y1, w, h, r = b.unbind(-1)
    cos, sin = _cos_sin(r)
    return _rotated_out(
        (x1 + w / 2 * cos + h / 2 * sin, y1 - w / 2 * sin + h / 2 * cos, w, h, r), b.dtype
    )


def _xywhr_to_xyxyxyxy(b: Tensor) -> Tensor:
    x1, y1, w, h, r = b.unbind(-1)
    cos, sin = _cos_sin(r)
    x2, y2 = x1 + w * cos, y1 - w * sin
    parts = (x1, y1, x2, y2, x2 + h * sin, y2 + h * cos, x1 + h * sin, y1 + h * cos)
    return _rotated_out(parts, b.dtype)


def _xyxyxyxy_to_xywhr(b: Tensor) -> Tensor:
    x1, y1, x2, y2, x3, y3, _x4, _y4 = b.unbind(-1)
    r = mg.atan2(y1 - y2, x2 - x1) * 180 / mg.pi
    w = ((x2 - x1) ** 2 + (y1 - y2) ** 2).sqrt()
    h = ((x3 - x2) ** 2 + (y3 - y2) ** 2).sqrt()
    return _rotated_out((x1, y1, w, h, r), b.dtype)


_CONVERT = {
    ("xywh", "xyxy"): (_xywh_to_xyxy,),
    ("cxcywh", "xyxy"): (_cxcywh_to_xyxy,),
    ("xyxy", "xywh"): (_xyxy_to_xywh,),
    ("xyxy", "cxcywh"): (_xyxy_to_cxcywh,),
    ("xywh", "cxcywh"): (_xywh_to_xyxy, _xyxy_to_cxcywh),
    ("cxcywh", "xywh"): (_cxcywh_to_xyxy, _xyxy_to_xywh),
    ("cxcywhr", "xywhr"): (_cxcywhr_to_xywhr,),
    ("xywhr", "cxcywhr"): (_xywhr_to_cxcywhr,),
    ("cxcywhr", "xyxyxyxy"): (_cxcywhr_to_xywhr, _xywhr_to_xyxyxyxy),
    ("xyxyxyxy", "cxcywhr"): (_xyxyxyxy_to_xywhr, _xywhr_to_cxcywhr),
    ("xywhr", "xyxyxyxy"): (_xywhr_to_xyxyxyxy,),
    ("xyxyxyxy", "xywhr"): (_xyxyxyxy_to_xywhr,),
}


# torchvision's private names, which some detection code imports
_box_cxcywh_to_xyxy = _cxcywh_to_xyxy
_box_xyxy_to_cxcywh = _xyxy_to_cxcywh
_box_xywh_to_xyxy = _xywh_to_xyxy
_box_xyxy_to_xywh = _xyxy_to_xywh
_box_cxcywhr_to_xywhr = _cxcywhr_to_xywhr
_box_xywhr_to_cxcywhr = _xywhr_to_cxcywhr
_box_xywhr_to_xyxyxyxy = _xywhr_to_xyxyxyxy
_box_xyxyxyxy_to_xywhr = _xyxyxyxy_to_xywhr
