"""manygrad.vision.ops against torchvision.ops: box ops and IoUs (values and gradients),
losses, nms / batched_nms (against a greedy reference: torchvision's compiled kernels do
not load here), roi_align (against torchvision's pure-Python ``_roi_align``), roi_pool
(against a reference written from its kernel) and the shared layers."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import manygrad as mg
import manygrad.vision.ops as ops
from manygrad.vision.ops import _regions as regions
from manygrad.vision.ops import boxes as box_ops

torch = pytest.importorskip(
    "torch", reason="PyTorch (CPU build) is the test oracle: pip install torch==2.13.0"
)


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().cpu().tolist() if hasattr(t, "detach") else t)


def _boxes(rng, n, lo=0.0, hi=20.0, min_side=0.5, max_side=10.0):
    xy = rng.uniform(lo, hi, (n, 2))
    wh = rng.uniform(min_side, max_side, (n, 2))
    return np.concatenate([xy, xy + wh], 1)


def _both(a: np.ndarray, device, grad=True):
    """The same values as a manygrad tensor on ``device`` and a torch tensor."""
    return (
        mg.tensor(a, device=device, requires_grad=grad),
        torch.tensor(a, requires_grad=grad),
    )


def _close(got, want, rtol=1e-7, atol=1e-9):
    np.testing.assert_allclose(_np(got), _np(want), rtol=rtol, atol=atol)


# ------------------------------------------------------------------------ pairwise box functions

PAIRWISE = [
    ("box_iou", {}),
    ("box_iou", {"fmt": "xywh"}),
    ("box_iou", {"fmt": "cxcywh"}),
    ("generalized_box_iou", {}),
    ("distance_box_iou", {}),
    ("complete_box_iou", {}),
]


@pytest.mark.parametrize("name,kw", PAIRWISE)
def test_pairwise_ious_match_torchvision(tv, device, name, kw):
    rng = np.random.default_rng(0)
    a, b = _boxes(rng, 5), _boxes(rng, 4)
    ma, ta = _both(a, device)
    mb, tb = _both(b, device)
    got = getattr(ops, name)(ma, mb, **kw)
    want = getattr(tv.ops, name)(ta, tb, **kw)
    _close(got, want)
    w = rng.standard_normal(tuple(want.shape))
    (got * mg.tensor(w, device=device)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    _close(ma.grad, ta.grad)
    _close(mb.grad, tb.grad)


def test_batched_iou_and_half_precision(tv, device):
    rng = np.random.default_rng(1)
    a, b = _boxes(rng, 6).reshape(2, 3, 4), _boxes(rng, 4).reshape(2, 2, 4)
    _close(
        ops.box_iou(mg.tensor(a), mg.tensor(b)), tv.ops.box_iou(torch.tensor(a), torch.tensor(b))
    )
    h = mg.tensor(a[0], dtype=mg.float16, device=device)
    got = ops.box_area(h)
    assert got.dtype == mg.float32  # upcast: products of float16 coordinates overflow
    _close(got, tv.ops.box_area(torch.tensor(a[0], dtype=torch.float16)))
    ints = mg.tensor(np.round(a[0]).astype(np.int16), device=device)
    assert ops.box_area(ints).dtype == mg.int32


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_area_formats(tv, device, fmt):
    a = _boxes(np.random.default_rng(2), 5)
    _close(ops.box_area(mg.tensor(a, device=device), fmt), tv.ops.box_area(torch.tensor(a), fmt))


FORMATS = ["xyxy", "xywh", "cxcywh"]
ROTATED = ["xywhr", "cxcywhr", "xyxyxyxy"]


@pytest.mark.parametrize(
    "fin,fout",
    [(i, o) for i in FORMATS for o in FORMATS] + [(i, o) for i in ROTATED for o in ROTATED],
)
def test_box_convert_matches_torchvision(tv, device, fin, fout):
    rng = np.random.default_rng(3)
    k = {"xywhr": 5, "cxcywhr": 5, "xyxyxyxy": 8}.get(fin, 4)
    a = rng.uniform(1, 9, (2, 3, k))
    ma, ta = _both(a, device)
    got, want = ops.box_convert(ma, fin, fout), tv.ops.box_convert(ta, fin, fout)
    _close(got, want)
    got.sum().backward()
    want.sum().backward()
    _close(ma.grad, ta.grad)


def test_box_convert_integer_rotated_rounds(tv):
    a = np.array([[10, 20, 6, 4, 30]], np.int64)
    got = ops.box_convert(mg.tensor(a), "cxcywhr", "xyxyxyxy")
    want = tv.ops.box_convert(torch.tensor(a), "cxcywhr", "xyxyxyxy")
    assert got.dtype == mg.int64
    np.testing.assert_array_equal(_np(got), _np(want))


def test_box_convert_private_names(tv):
    b = np.array([[1.0, 2.0, 4.0, 6.0]])
    for name in ("_box_cxcywh_to_xyxy", "_box_xyxy_to_cxcywh", "_box_xywh_to_xyxy",
                 "_box_xyxy_to_xywh"):  # fmt: skip
        mine = getattr(importlib.import_module("manygrad.vision.ops._box_convert"), name)
        theirs = getattr(importlib.import_module("torchvision.ops._box_convert"), name)
        _close(mine(mg.tensor(b)), theirs(torch.tensor(b)))


def test_box_format_errors():
    b = mg.zeros(2, 4)
    with pytest.raises(ValueError, match="unsupported conversion 'xyxy' -> 'yxyx'"):
        ops.box_convert(b, "xyxy", "yxyx")
    with pytest.raises(NotImplementedError, match="axis-aligned and rotated"):
        ops.box_convert(b, "xyxy", "xywhr")
    with pytest.raises(NotImplementedError, match="box_iou_rotated"):
        ops.box_iou(b, b, fmt="cxcywhr")
    with pytest.raises(ValueError, match="box_area: unsupported format"):
        ops.box_area(b, "xyxyxyxy")


def test_clip_remove_small_and_masks_to_boxes(tv, device):
    rng = np.random.default_rng(4)
    a = rng.uniform(-5, 25, (3, 6, 4))
    ma, ta = _both(a, device)
    got, want = ops.clip_boxes_to_image(ma, (15, 20)), tv.ops.clip_boxes_to_image(ta, (15, 20))
    _close(got, want)
    got.sum().backward()
    want.sum().backward()
    _close(ma.grad, ta.grad)
    flat = _boxes(rng, 10, min_side=0.1, max_side=3)
    keep = ops.remove_small_boxes(mg.tensor(flat, device=device), 1.5)
    assert keep.dtype == mg.int64
    np.testing.assert_array_equal(
        _np(keep), _np(tv.ops.remove_small_boxes(torch.tensor(flat), 1.5))
    )
    masks = np.zeros((4, 7, 9), np.uint8)
    masks[0, 2:5, 3:8] = 1
    masks[1, 6, 0] = 1
    masks[3, 0:7, 4] = 1  # masks[2] stays empty: [0, 0, 0, 0]
    got = ops.masks_to_boxes(mg.tensor(masks, device=device))
    assert got.dtype == mg.float32
    np.testing.assert_array_equal(_np(got), _np(tv.ops.masks_to_boxes(torch.tensor(masks))))
    assert tuple(ops.masks_to_boxes(mg.zeros(0, 3, 3)).shape) == (0, 4)


# --------------------------------------------------------------------------------------- losses


@pytest.mark.parametrize("name", ["generalized_box_iou_loss", "distance_box_iou_loss",
                                  "complete_box_iou_loss"])  # fmt: skip
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_box_losses_match_torchvision(tv, device, name, reduction):
    rng = np.random.default_rng(5)
    a, b = _boxes(rng, 6), _boxes(rng, 6)
    b[0] = a[0] + 30  # a disjoint pair: no intersection, still a gradient
    ma, ta = _both(a, device)
    mb, tb = _both(b, device)
    got = getattr(ops, name)(ma, mb, reduction=reduction, eps=1e-6)
    want = getattr(tv.ops, name)(ta, tb, reduction=reduction, eps=1e-6)
    _close(got, want)
    got.sum().backward()
    want.sum().backward()
    _close(ma.grad, ta.grad)
    _close(mb.grad, tb.grad)


def test_box_loss_edge_cases(tv):
    empty = mg.zeros(0, 4, requires_grad=True)
    out = ops.generalized_box_iou_loss(empty, empty, reduction="mean")
    assert out.item() == 0.0  # an empty batch's mean is 0, not nan, as torchvision's
    one = np.array([1.0, 2.0, 5.0, 7.0])
    _close(
        ops.complete_box_iou_loss(mg.tensor(one), mg.tensor(one + 1)),
        tv.ops.complete_box_iou_loss(torch.tensor(one), torch.tensor(one + 1)),
    )
    with pytest.raises(ValueError, match="reduction"):
        ops.distance_box_iou_loss(mg.zeros(1, 4), mg.zeros(1, 4), reduction="max")


@pytest.mark.parametrize("alpha,gamma,reduction", [(0.25, 2, "none"), (-1, 1.5, "mean"),
                                                   (0.6, 0, "sum")])  # fmt: skip
def test_sigmoid_focal_loss_matches_torchvision(tv, device, alpha, gamma, reduction):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 5)) * 3
    t = (rng.uniform(size=(4, 5)) > 0.6).astype(np.float64)
    mx, tx = _both(x, device)
    got = ops.sigmoid_focal_loss(mx, mg.tensor(t, device=device), alpha, gamma, reduction)
    want = tv.ops.sigmoid_focal_loss(tx, torch.tensor(t), alpha, gamma, reduction)
    _close(got, want)
    got.sum().backward()
    want.sum().backward()
    _close(mx.grad, tx.grad)
    with pytest.raises(ValueError, match="invalid alpha 2"):
        ops.sigmoid_focal_loss(mx, mx, alpha=2)


# ------------------------------------------------------------------------------------------ nms


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """The definition: visit by decreasing score (stable), keep a box unless its IoU with
    a kept box exceeds ``thr``."""
    order = torch.sort(torch.tensor(scores), descending=True, stable=True)[1].tolist()
    keep = []
    for i in order:
        ok = True
        for j in keep:
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = w * h
            ai = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            aj = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if inter / (ai + aj - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


@pytest.mark.parametrize("thr", [0.0, 0.3, 0.7])
def test_nms_matches_greedy_reference(device, thr):
    rng = np.random.default_rng(7)
    b = _boxes(rng, 60, hi=30, min_side=2, max_side=12)
    s = rng.uniform(size=60)
    keep = ops.nms(mg.tensor(b, device=device), mg.tensor(s, device=device), thr)
    assert keep.dtype == mg.int64 and keep.device == mg.device(device)
    assert _np(keep).tolist() == _greedy_nms(b, s, thr)


def test_nms_ties_empty_and_blocks(monkeypatch, device):
    b = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    s = np.array([0.5, 0.5, 0.5, 0.9], np.float32)
    keep = ops.nms(mg.tensor(b, device=device), mg.tensor(s, device=device), 0.5)
    assert _np(keep).tolist() == [3, 0]  # equal scores: the lower index first
    empty = ops.nms(mg.zeros(0, 4, device=device), mg.zeros(0, device=device), 0.5)
    assert empty.dtype == mg.int64 and tuple(empty.shape) == (0,)
    # the overlap mask walked a few rows at a time gives the same answer
    rng = np.random.default_rng(8)
    b = _boxes(rng, 50, hi=25, min_side=3)
    s = rng.uniform(size=50)
    monkeypatch.setattr(box_ops, "_NMS_BLOCK", 50 * 7)
    assert _np(ops.nms(mg.tensor(b, device=device), mg.tensor(s, device=device), 0.4)).tolist() == (
        _greedy_nms(b, s, 0.4)
    )


def test_nms_threshold_compared_in_double():
    # IoU exactly float32(0.1) > 0.1: suppressed, as in torchvision's kernel (not in float32)
    b = np.array([[0, 0, 1, 1], [0, 0, 1, 0.1]], np.float32)
    iou = np.float32(0.1)
    assert float(iou) > 0.1
    keep = ops.nms(mg.tensor(b), mg.tensor([0.9, 0.8]), 0.1)
    assert _np(keep).tolist() == [0]


def test_nms_errors():
    with pytest.raises(ValueError, match="boxes must be Tensor\\[N, 4\\]"):
        ops.nms(mg.zeros(3, 5), mg.zeros(3), 0.5)
    with pytest.raises(ValueError, match="same number of elements"):
        ops.nms(mg.zeros(3, 4), mg.zeros(2), 0.5)
    with pytest.raises(TypeError, match="one dtype"):
        ops.nms(mg.zeros(3, 4), mg.zeros(3, dtype=mg.float64), 0.5)


@pytest.mark.parametrize("path", ["_batched_nms_coordinate_trick", "_batched_nms_vanilla",
                                  "batched_nms"])  # fmt: skip
def test_batched_nms_is_nms_per_class(device, path):
    rng = np.random.default_rng(9)
    n = 80
    b = _boxes(rng, n, hi=20, min_side=3)
    s = rng.uniform(size=n)
    c = rng.integers(0, 4, n)
    want = []
    for k in range(4):
        idx = np.flatnonzero(c == k)
        want += [int(idx[i]) for i in _greedy_nms(b[idx], s[idx], 0.5)]
    want.sort(key=lambda i: -s[i])
    got = getattr(box_ops, path)(
        mg.tensor(b, device=device), mg.tensor(s, device=device), mg.tensor(c, device=device), 0.5
    )
    assert _np(got).tolist() == want


def test_batched_nms_switches_to_per_class_loops(monkeypatch):
    empty = ops.batched_nms(mg.zeros(0, 4), mg.zeros(0), mg.zeros(0), 0.5)
    assert empty.dtype == mg.int64 and tuple(empty.shape) == (0,)
    seen = []
    monkeypatch.setattr(box_ops, "_batched_nms_vanilla", lambda *a: seen.append("v") or a[0])
    monkeypatch.setattr(box_ops, "_batched_nms_coordinate_trick", lambda *a: seen.append("t"))
    ops.batched_nms(mg.zeros(1000, 4), mg.zeros(1000), mg.zeros(1000), 0.5)
    ops.batched_nms(mg.zeros(1001, 4), mg.zeros(1001), mg.zeros(1001), 0.5)
    assert seen == ["t", "v"]  # above 4000 coordinates on the CPU, as torchvision


# ------------------------------------------------------------------------------------- roi_align


def _tv_roi_align():
    return importlib.import_module("torchvision.ops.roi_align")._roi_align.__wrapped__


ALIGN_CASES = [
    # output_size, spatial_scale, sampling_ratio, aligned
    ((3, 3), 1.0, 2, False),
    ((2, 4), 0.5, 2, True),
    ((3, 2), 1.0, -1, False),
    ((2, 2), 0.5, -1, True),
    ((4, 3), 1.0, 1, True),
    ((2, 3), 1.0, 0, False),
]


@pytest.mark.parametrize("size,scale,ratio,aligned", ALIGN_CASES)
def test_roi_align_matches_torchvision_python(tv, device, size, scale, ratio, aligned):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 9, 11))
    # boxes inside the map: torchvision's Python version has no "outside the map" case
    hi = np.array([11, 9, 11, 9]) / scale
    xy = rng.uniform(0, 0.6, (5, 2)) * hi[:2]
    wh = rng.uniform(0.1, 0.4, (5, 2)) * hi[:2]
    rois = np.concatenate([rng.integers(0, 2, (5, 1)), xy, np.minimum(xy + wh, hi[:2] - 1)], 1)
    rois[0, 3:] = rois[0, 1:3] + 0.3  # smaller than a pixel: 1x1 in the legacy mode
    mx, tx = _both(x, device)
    got = ops.roi_align(mx, mg.tensor(rois, device=device), size, scale, ratio, aligned)
    want = _tv_roi_align()(tx, torch.tensor(rois), scale, size[0], size[1], ratio, aligned)
    _close(got, want, rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(tuple(want.shape))
    (got * mg.tensor(g, device=device)).sum().backward()
    (want * torch.tensor(g)).sum().backward()
    _close(mx.grad, tx.grad, rtol=1e-10, atol=1e-12)


def test_roi_align_float32_box_list_and_module(tv, device):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    per_image = [np.array([[1, 1, 6, 5], [0, 2, 3, 7.5]], np.float32),
                 np.array([[2.5, 0.5, 7, 7]], np.float32)]  # fmt: skip
    mx, tx = _both(x, device)
    got = ops.roi_align(mx, [mg.tensor(b, device=device) for b in per_image], 2, 1.0, 2, True)
    rois = np.concatenate([np.array([[0], [0], [1]], np.float32), np.concatenate(per_image)], 1)
    want = _tv_roi_align()(tx, torch.tensor(rois), 1.0, 2, 2, 2, True)
    assert got.dtype == mg.float32
    _close(got, want, rtol=1e-5, atol=1e-6)
    got.sum().backward()
    want.sum().backward()
    _close(mx.grad, tx.grad, rtol=1e-5, atol=1e-6)
    m = ops.RoIAlign((2, 2), 1.0, 2, aligned=True)
    assert repr(m) == repr(tv.ops.RoIAlign((2, 2), 1.0, 2, aligned=True))
    _close(m(mx, mg.tensor(rois, device=device)), want, rtol=1e-5, atol=1e-6)


def _roi_align_kernel(x, rois, scale, ph, pw, ratio, aligned, g):
    """torchvision's C++ roi_align, one sample at a time: the output and the input's
    gradient for the output gradient ``g``."""
    n, c, h, w = x.shape
    out = np.zeros((len(rois), c, ph, pw))
    grad = np.zeros_like(x)
    off = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        b = int(b)
        sx, sy = x1 * scale - off, y1 * scale - off
        rw, rh = x2 * scale - off - sx, y2 * scale - off - sy
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph, rw / pw
        gh = ratio if ratio > 0 else int(np.ceil(rh / ph))
        gw = ratio if ratio > 0 else int(np.ceil(rw / pw))
        count = max(gh * gw, 1)
        for i in range(ph):
            for j in range(pw):
                for iy in range(gh):
                    y = sy + i * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        xx = sx + j * bw + (ix + 0.5) * bw / gw
                        if y < -1.0 or y > h or xx < -1.0 or xx > w:
                            continue
                        yc, xc = max(y, 0.0), max(xx, 0.0)
                        y0, x0 = int(yc), int(xc)
                        y1_, x1_ = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
                        if y0 >= h - 1:
                            y0, yc = h - 1, float(h - 1)
                        if x0 >= w - 1:
                            x0, xc = w - 1, float(w - 1)
                        ly, lx = yc - y0, xc - x0
                        for yy, xq, wt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x1_, (1 - ly) * lx),
                                           (y1_, x0, ly * (1 - lx)), (y1_, x1_, ly * lx)):  # fmt: skip
                            out[k, :, i, j] += wt * x[b, :, yy, xq] / count
                            grad[b, :, yy, xq] += wt * g[k, :, i, j] / count
    return out, grad


@pytest.mark.parametrize("ratio,aligned", [(2, False), (-1, True), (1, True)])
def test_roi_align_matches_kernel_on_boxes_past_the_map(device, ratio, aligned):
    rng = np.random.default_rng(20)
    x = rng.standard_normal((2, 2, 6, 7))
    rois = np.array([[0, -3.0, -2.0, 4.0, 3.0], [1, 3.0, 2.0, 11.0, 9.0],
                     [0, -8.0, 1.0, -0.5, 5.0], [1, 6.2, 5.1, 6.9, 5.8]])  # fmt: skip
    g = rng.standard_normal((4, 2, 3, 2))
    want, want_grad = _roi_align_kernel(x, rois, 1.0, 3, 2, ratio, aligned, g)
    mx = mg.tensor(x, device=device, requires_grad=True)
    got = ops.roi_align(mx, mg.tensor(rois, device=device), (3, 2), 1.0, ratio, aligned)
    _close(got, want, rtol=1e-10, atol=1e-12)
    (got * mg.tensor(g, device=device)).sum().backward()
    _close(mx.grad, want_grad, rtol=1e-10, atol=1e-12)


def test_roi_align_in_chunks_of_boxes(monkeypatch, device):
    # large outputs are planned a few boxes at a time; the result is the same
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 3, 9, 11))
    rois = np.concatenate([rng.integers(0, 2, (7, 1)), _boxes(rng, 7, 0, 6, 1, 5)], 1)
    g = rng.standard_normal((7, 3, 2, 3))
    results = []
    for budget in (1 << 24, 2 * 2 * 3 * 4 * 16):  # all boxes at once; two boxes a chunk
        monkeypatch.setattr(regions, "_PLAN_BUDGET", budget)
        mx = mg.tensor(x, device=device, requires_grad=True)
        out = ops.roi_align(mx, mg.tensor(rois, device=device), (2, 3), 1.0, -1, True)
        (out * mg.tensor(g, device=device)).sum().backward()
        results.append((_np(out), _np(mx.grad)))
    assert regions.box_chunks(7, 2 * 3 * 4 * 16)[:2] == [(0, 2), (2, 4)]
    _close(results[1][0], results[0][0], rtol=1e-12, atol=1e-12)
    _close(results[1][1], results[0][1], rtol=1e-12, atol=1e-12)


def test_roi_align_samples_outside_the_map_are_zero():
    # torchvision's kernel drops samples beyond [-1, size] (its Python copy clamps them)
    x = mg.ones(1, 1, 4, 4)
    out = ops.roi_align(x, mg.tensor([[0, -9.0, -9.0, -5.0, -5.0]]), 1, 1.0, 2)
    assert out.item() == 0.0
    half = ops.roi_align(x, mg.tensor([[0, 2.0, 0.0, 10.0, 4.0]]), (1, 2), 1.0, 1)
    assert _np(half).ravel().tolist() == [1.0, 0.0]  # samples at x = 4 and x = 8


def test_roi_align_empty_boxes_and_errors(device):
    x = mg.randn(1, 2, 5, 5, device=device, requires_grad=True)
    out = ops.roi_align(x, mg.zeros(0, 5, device=device), 3)
    assert tuple(out.shape) == (0, 2, 3, 3)
    out.sum().backward()
    assert float(x.grad.abs().sum()) == 0.0
    with pytest.raises(ValueError, match="Tensor\\[K, 5\\]"):
        ops.roi_align(x, mg.zeros(3, 4, device=device), 2)
    with pytest.raises(ValueError, match="Tensor\\[L, 4\\]"):
        ops.roi_align(x, [mg.zeros(3, 5, device=device)], 2)
    with pytest.raises(TypeError, match="one dtype"):
        ops.roi_align(x, mg.zeros(1, 5, dtype=mg.float64, device=device), 2)


# -------------------------------------------------------------------------------------- roi_pool


def _roi_pool_reference(x, rois, ph, pw, scale):
    """torchvision's roi_pool kernel in torch ops, one bin at a time."""

    def rnd(v):  # C's round: halves away from zero
        return int(np.sign(v) * np.floor(abs(v) + 0.5))

    n, c, h, w = x.shape
    out = []
    for r in rois.tolist():
        b, (x0, y0, x1, y1) = int(r[0]), [rnd(v * scale) for v in r[1:]]
        rh, rw = max(y1 - y0 + 1, 1), max(x1 - x0 + 1, 1)
        rows = []
        for i in range(ph):
            for j in range(pw):
                hs = min(max(int(np.floor(i * rh / ph)) + y0, 0), h)
                he = min(max(int(np.ceil((i + 1) * rh / ph)) + y0, 0), h)
                ws = min(max(int(np.floor(j * rw / pw)) + x0, 0), w)
                we = min(max(int(np.ceil((j + 1) * rw / pw)) + x0, 0), w)
                if he <= hs or we <= ws:
                    rows.append(x.new_zeros(c))
                else:
                    win = x[b, :, hs:he, ws:we].reshape(c, -1)
                    rows.append(win.max(dim=1)[0])
        out.append(torch.stack(rows, 1).reshape(c, ph, pw))
    return torch.stack(out)


_POOL_CASES = {}


def _roi_pool_case(size, scale):
    """Inputs, reference output and input gradient of a roi_pool case (computed once)."""
    if (size, scale) not in _POOL_CASES:
        rng = np.random.default_rng(12)
        x = rng.standard_normal((2, 3, 9, 10))
        boxes = _boxes(rng, 6, -3, 14, 0.2, 8) / scale
        rois = np.concatenate([rng.integers(0, 2, (6, 1)), boxes], 1)
        rois[0, 1:] = [5.5, 2.5, 4.0, 1.0]  # reversed: a 1x1 window
        rois[1, 1:] = [40, 40, 50, 50]  # outside the map: empty bins give 0
        tx = torch.tensor(x, requires_grad=True)
        want = _roi_pool_reference(tx, torch.tensor(rois), size[0], size[1], scale)
        g = rng.standard_normal(tuple(want.shape))
        (want * torch.tensor(g)).sum().backward()
        _POOL_CASES[size, scale] = x, rois, g, _np(want), _np(tx.grad)
    return _POOL_CASES[size, scale]


@pytest.mark.parametrize("size,scale", [((3, 3), 1.0), ((2, 4), 0.5), ((1, 1), 0.25)])
def test_roi_pool_matches_kernel_reference(tv, device, size, scale):
    x, rois, g, want, want_grad = _roi_pool_case(size, scale)
    mx = mg.tensor(x, device=device, requires_grad=True)
    got = ops.roi_pool(mx, mg.tensor(rois, device=device), size, scale)
    _close(got, want)
    (got * mg.tensor(g, device=device)).sum().backward()
    _close(mx.grad, want_grad)
    m = ops.RoIPool(size, scale)
    assert repr(m) == repr(tv.ops.RoIPool(size, scale))


def test_region_ops_do_not_sync_with_a_fixed_sampling_ratio():
    x = mg.randn(2, 4, 12, 12, device="fakegpu", requires_grad=True)
    rois = mg.tensor([[0, 1.0, 1.0, 9.0, 7.0], [1, 2.0, 0.0, 11.0, 11.0]], device="fakegpu")
    mg.backend.fake_stats.reset()
    out = ops.roi_align(x, rois, (3, 3), 1.0, 2, aligned=True)
    out.sum().backward()
    assert mg.backend.fake_stats.syncs == 0
    assert mg.backend.fake_stats.d2h == 0


# ---------------------------------------------------------- position-sensitive ops, multi-scale


def _ps_inputs(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 12, 8, 9))  # 3 output channels of 2 x 2 bins
    rois = np.concatenate([rng.integers(0, 2, (5, 1)), _boxes(rng, 5, 0, 5, 1, 4) / scale], 1)
    return rng, x, rois


@pytest.mark.parametrize("ratio", [2, -1])
def test_ps_roi_align_matches_torchvision_python(tv, device, ratio):
    rng, x, rois = _ps_inputs(15, 0.5)
    mx, tx = _both(x, device)
    got = ops.ps_roi_align(mx, mg.tensor(rois, device=device), 2, 0.5, ratio)
    # bin (i, j) of output channel c is roi_align's bin (i, j) of channel (c * 2 + i) * 2 + j
    full = _tv_roi_align()(tx, torch.tensor(rois), 0.5, 2, 2, ratio, True)  # [K, 12, 2, 2]
    full = full.reshape(5, 3, 2, 2, 2, 2)
    want = torch.stack([torch.stack([full[:, :, i, j, i, j] for j in range(2)], -1)
                        for i in range(2)], -2)  # fmt: skip
    assert tuple(got.shape) == (5, 3, 2, 2)
    _close(got, want, rtol=1e-10, atol=1e-12)
    g = rng.standard_normal((5, 3, 2, 2))
    (got * mg.tensor(g, device=device)).sum().backward()
    (want * torch.tensor(g)).sum().backward()
    _close(mx.grad, tx.grad, rtol=1e-10, atol=1e-12)
    m = ops.PSRoIAlign(2, 0.5, ratio)
    assert repr(m) == repr(tv.ops.PSRoIAlign(2, 0.5, ratio))


def test_ps_roi_pool_matches_kernel_reference(tv, device):
    rng, x, rois = _ps_inputs(16)
    rois[0, 1:] = [3.4, 2.6, 3.4, 2.6]  # a point: one pixel
    rois[1, 1:] = [6.0, 5.0, 20.0, 20.0]  # past the map: clipped windows

    def rnd(v):
        return int(np.sign(v) * np.floor(abs(v) + 0.5))

    tx = torch.tensor(x, requires_grad=True)
    out = []
    for r in rois.tolist():
        b, (x0, y0, x1, y1) = int(r[0]), [rnd(v) for v in r[1:]]
        rh, rw = max(y1 - y0, 1), max(x1 - x0, 1)
        for c in range(3):
            for i in range(2):
                for j in range(2):
                    hs = min(max(int(np.floor(i * rh / 2)) + y0, 0), 7)
                    he = min(max(int(np.ceil((i + 1) * rh / 2)) + y0, 0), 7)
                    ws = min(max(int(np.floor(j * rw / 2)) + x0, 0), 8)
                    we = min(max(int(np.ceil((j + 1) * rw / 2)) + x0, 0), 8)
                    win = tx[b, (c * 2 + i) * 2 + j, hs:he, ws:we]
                    out.append(win.mean() if win.numel() else tx.new_zeros(()))
    want = torch.stack(out).reshape(5, 3, 2, 2)
    mx = mg.tensor(x, device=device, requires_grad=True)
    got = ops.ps_roi_pool(mx, mg.tensor(rois, device=device), 2, 1.0)
    _close(got, want)
    g = rng.standard_normal((5, 3, 2, 2))
    (got * mg.tensor(g, device=device)).sum().backward()
    (want * torch.tensor(g)).sum().backward()
    _close(mx.grad, tx.grad)
    assert repr(ops.PSRoIPool(2, 1.0)) == repr(tv.ops.PSRoIPool(2, 1.0))
    with pytest.raises(ValueError, match="multiple of output height x width"):
        ops.ps_roi_pool(mx, mg.tensor(rois, device=device), 3)


@pytest.mark.parametrize("names", [["a", "c"], ["b"]])
def test_multi_scale_roi_align_matches_torchvision(tv, monkeypatch, device, names):
    poolers = importlib.import_module("torchvision.ops.poolers")

    def python_roi_align(inp, rois, output_size, spatial_scale=1.0, sampling_ratio=-1):
        return _tv_roi_align()(inp, rois, spatial_scale, *output_size, sampling_ratio, False)

    monkeypatch.setattr(poolers, "roi_align", python_roi_align)
    rng = np.random.default_rng(17)
    feats = {"a": rng.standard_normal((2, 3, 16, 16)), "b": rng.standard_normal((2, 3, 8, 8)),
             "c": rng.standard_normal((2, 3, 4, 4))}  # fmt: skip
    boxes = [_boxes(rng, 4, 0, 30, 2, 30), _boxes(rng, 3, 0, 20, 20, 40)]
    mf = {k: mg.tensor(v, device=device, requires_grad=True) for k, v in feats.items()}
    tf = {k: torch.tensor(v, requires_grad=True) for k, v in feats.items()}
    kw = {"canonical_scale": 16}  # boxes of 2 to 40 pixels then spread over the levels
    m, t = ops.MultiScaleRoIAlign(names, 3, 2, **kw), tv.ops.MultiScaleRoIAlign(names, 3, 2, **kw)
    assert repr(m) == repr(t)
    mb = [mg.tensor(b, device=device) for b in boxes]
    got = m(mf, mb, [(64, 64), (60, 50)])
    want = t(tf, [torch.tensor(b) for b in boxes], [(64, 64), (60, 50)])
    assert m.scales == t.scales
    if len(names) > 1:
        levels = m.map_levels(mb)
        assert len(set(_np(levels).tolist())) > 1  # boxes on several levels
    _close(got, want, rtol=1e-10, atol=1e-12)
    got.sum().backward()
    want.sum().backward()
    for k in names:
        _close(mf[k].grad, tf[k].grad, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- deform_conv2d


def _deform_reference(x, offset, weight, bias, stride, padding, dilation, mask):
    """Deformable convolution in torch: each tap sampled with grid_sample (bilinear,
    zeros outside, pixel centres at the corners: the kernel's bilinear_interpolate)."""
    b, c_in, h, w = x.shape
    c_out, cpg, kh, kw = weight.shape
    k = kh * kw
    g = offset.shape[1] // (2 * k)
    oh, ow = offset.shape[2:]
    cg = c_in // g
    taps = []
    for t in range(k):
        i, j = divmod(t, kw)
        ys = torch.arange(oh) * stride[0] - padding[0] + i * dilation[0]
        xs = torch.arange(ow) * stride[1] - padding[1] + j * dilation[1]
        per_group = []
        for q in range(g):
            yy = ys[None, :, None] + offset[:, q * 2 * k + 2 * t]
            xx = xs[None, None, :] + offset[:, q * 2 * k + 2 * t + 1]
            grid = torch.stack([2 * xx / (w - 1) - 1, 2 * yy / (h - 1) - 1], -1)
            v = torch.nn.functional.grid_sample(
                x[:, q * cg : (q + 1) * cg], grid, "bilinear", "zeros", align_corners=True
            )
            per_group.append(v if mask is None else v * mask[:, q * k + t, None])
        taps.append(torch.cat(per_group, 1))
    groups = c_in // cpg
    cols = torch.stack(taps, 2).reshape(b, groups, cpg, k, oh, ow)
    wg = weight.reshape(groups, c_out // groups, cpg, k)
    out = torch.einsum("gock,bgckyx->bgoyx", wg, cols).reshape(b, c_out, oh, ow)
    return out if bias is None else out + bias[None, :, None, None]


DEFORM_CASES = [
    # stride, padding, dilation, groups, offset groups, kernel, mask, bias
    ((1, 1), (1, 1), (1, 1), 1, 1, (3, 3), False, True),
    ((2, 1), (1, 0), (1, 2), 2, 2, (2, 3), True, False),
]


@pytest.mark.parametrize("stride,padding,dilation,groups,og,kernel,use_mask,use_bias", DEFORM_CASES)
def test_deform_conv2d_matches_grid_sample_reference(
    tv, device, stride, padding, dilation, groups, og, kernel, use_mask, use_bias
):
    rng = np.random.default_rng(19)
    b, c_in, h, w, c_out = 2, 4, 7, 8, 6
    kh, kw = kernel
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    arrays = {
        "input": rng.standard_normal((b, c_in, h, w)),
        "offset": rng.standard_normal((b, 2 * og * kh * kw, oh, ow)) * 1.5,
        "weight": rng.standard_normal((c_out, c_in // groups, kh, kw)),
        "bias": rng.standard_normal(c_out) if use_bias else None,
        "mask": rng.uniform(size=(b, og * kh * kw, oh, ow)) if use_mask else None,
    }
    m_args = {k: None if v is None else mg.tensor(v, device=device, requires_grad=True)
              for k, v in arrays.items()}  # fmt: skip
    t_args = {k: None if v is None else torch.tensor(v, requires_grad=True)
              for k, v in arrays.items()}  # fmt: skip
    got = ops.deform_conv2d(**m_args, stride=stride, padding=padding, dilation=dilation)
    want = _deform_reference(
        t_args["input"], t_args["offset"], t_args["weight"], t_args["bias"],
        stride, padding, dilation, t_args["mask"],
    )  # fmt: skip
    _close(got, want, rtol=1e-9, atol=1e-10)
    g = rng.standard_normal(tuple(want.shape))
    (got * mg.tensor(g, device=device)).sum().backward()
    (want * torch.tensor(g)).sum().backward()
    for k, v in m_args.items():
        if v is not None:
            _close(v.grad, t_args[k].grad, rtol=1e-8, atol=1e-9)


def test_deform_conv2d_module_and_errors(tv):
    m = ops.DeformConv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    assert repr(m) == repr(tv.ops.DeformConv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False))
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [("weight", (6, 2, 3, 3))]
    x = mg.randn(1, 4, 6, 6)
    out = m(x, mg.zeros(1, 18, 3, 3))
    # zero offsets: an ordinary convolution
    _close(out, mg.nn.functional.conv2d(x, m.weight, None, 2, 1, 1, 2), rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="offset tensor at dimension 1"):
        m(x, mg.zeros(1, 10, 3, 3))
    with pytest.raises(RuntimeError, match="the output's batch and size"):
        m(x, mg.zeros(1, 18, 4, 4))
    with pytest.raises(ValueError, match="divisible by groups"):
        ops.DeformConv2d(3, 6, 3, groups=2)


# ---------------------------------------------------------------------------------------- layers


def _copy_state(mg_module, torch_module):
    state = {k: mg.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()}
    mg_module.load_state_dict(state)


def test_frozen_batch_norm(tv, device):
    rng = np.random.default_rng(13)
    t = tv.ops.FrozenBatchNorm2d(3, eps=1e-3)
    for name in ("weight", "bias", "running_mean"):
        getattr(t, name).copy_(torch.tensor(rng.standard_normal(3)))
    t.running_var.copy_(torch.tensor(rng.uniform(0.5, 2, 3)))
    m = ops.FrozenBatchNorm2d(3, eps=1e-3)
    assert list(m.state_dict()) == list(t.state_dict())
    state = {k: mg.tensor(v.numpy()) for k, v in t.state_dict().items()}
    state["num_batches_tracked"] = mg.tensor(5)  # a BatchNorm2d checkpoint loads too
    m.load_state_dict(state)
    assert repr(m) == repr(t)
    assert not list(m.parameters())
    m.to(device)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    mx, tx = _both(x, device)
    got, want = m(mx), t(tx)
    _close(got, want, rtol=1e-5, atol=1e-6)
    got.sum().backward()
    want.sum().backward()
    _close(mx.grad, tx.grad, rtol=1e-5, atol=1e-6)


LAYERS = [
    (lambda o, nn: o.Conv2dNormActivation(3, 4, stride=2), (2, 3, 7, 7)),
    (
        lambda o, nn: o.Conv2dNormActivation(
            3, 6, (3, 5), groups=3, dilation=(1, 2), norm_layer=None, activation_layer=None
        ),
        (2, 3, 8, 9),
    ),  # fmt: skip
    (lambda o, nn: o.Conv3dNormActivation(2, 3, kernel_size=(1, 3, 3)), (1, 2, 3, 5, 5)),
    (lambda o, nn: o.SqueezeExcitation(4, 2, activation=nn.SiLU), (2, 4, 3, 3)),
    (lambda o, nn: o.MLP(5, [7, 6, 3], norm_layer=nn.LayerNorm, inplace=False), (4, 5)),
    (lambda o, nn: o.Permute([0, 2, 3, 1]), (2, 3, 4, 5)),
]


@pytest.mark.parametrize("make,shape", LAYERS)
def test_layers_match_torchvision(tv, make, shape):
    t = make(tv.ops, torch.nn).double().train()
    m = make(ops, mg.nn).double().train()
    assert repr(m) == repr(t)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in t.state_dict().items()
    ]
    _copy_state(m, t)
    x = np.random.default_rng(14).standard_normal(shape)
    mx, tx = _both(x, "cpu")
    got, want = m(mx), t(tx)
    _close(got, want)
    got.sum().backward()
    want.sum().backward()
    _close(mx.grad, tx.grad)
    for p, q in zip(m.parameters(), t.parameters(), strict=True):
        _close(p.grad, q.grad)


@pytest.mark.parametrize("extra", ["none", "pool", "p6p7"])
def test_feature_pyramid_network_matches_torchvision(tv, extra):
    fpn_mod = importlib.import_module("manygrad.vision.ops.feature_pyramid_network")
    tv_mod = importlib.import_module("torchvision.ops.feature_pyramid_network")

    def make(mod):
        blocks = {"none": None, "pool": mod.LastLevelMaxPool(), "p6p7": mod.LastLevelP6P7(6, 4)}
        return mod.FeaturePyramidNetwork([4, 6], 4, extra_blocks=blocks[extra])

    t, m = make(tv_mod).double(), make(fpn_mod).double()
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in t.state_dict().items()
    ]
    state = {k: mg.tensor(v.numpy()) for k, v in t.state_dict().items()}
    if extra == "none":  # a checkpoint of the older layout: bare Conv2d blocks
        state = {k.replace(".0.", "."): v for k, v in state.items()}
    m.load_state_dict(state)
    rng = np.random.default_rng(18)
    feats = {"c3": rng.standard_normal((1, 4, 8, 10)), "c4": rng.standard_normal((1, 6, 4, 5))}
    mf = {k: mg.tensor(v, requires_grad=True) for k, v in feats.items()}
    tf = {k: torch.tensor(v, requires_grad=True) for k, v in feats.items()}
    got, want = m(mf), t(tf)
    assert list(got) == list(want)
    for k in want:
        _close(got[k], want[k])
    sum(v.sum() for v in got.values()).backward()
    sum(v.sum() for v in want.values()).backward()
    for k in feats:
        _close(mf[k].grad, tf[k].grad)


def test_stochastic_depth(device):
    x = mg.ones(200, 3, device=device, requires_grad=True)
    out = ops.stochastic_depth(x, 0.25, "row")
    rows = _np(out)
    assert set(np.unique(rows).tolist()) <= {0.0, float(np.float32(1 / 0.75))}
    assert (rows == rows[:, :1]).all()  # whole rows kept or dropped
    assert 0.6 < (rows[:, 0] > 0).mean() < 0.9
    out.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), rows)
    batch = _np(ops.stochastic_depth(mg.ones(50, 2, device=device), 0.5, "batch"))
    assert len(np.unique(batch)) == 1 and batch.flat[0] in (0.0, 2.0)
    assert (_np(ops.stochastic_depth(mg.ones(4, 2), 1.0, "row")) == 0).all()
    same = mg.ones(3)
    assert ops.stochastic_depth(same, 0.5, "row", training=False) is same
    m = ops.StochasticDepth(0.3, "batch").eval()
    assert m(same) is same and repr(m) == "StochasticDepth(p=0.3, mode=batch)"
    with pytest.raises(ValueError, match="between 0 and 1"):
        ops.stochastic_depth(same, 1.5, "row")
    with pytest.raises(ValueError, match="'batch' or 'row'"):
        ops.stochastic_depth(same, 0.5, "col")


def test_drop_block(tv, device):
    x = mg.ones(2, 3, 16, 16, device=device)
    out = _np(ops.drop_block2d(x, 0.2, 3))
    dropped = out == 0
    assert 0.05 < dropped.mean() < 0.4
    kept = out[~dropped]
    np.testing.assert_allclose(kept, out.size / (~dropped).sum(), rtol=1e-5)  # sum preserved
    # the zeros are exactly a union of whole 3x3 blocks inside the map
    h = 16
    whole = np.ones(dropped.shape[:2] + (h - 2, h - 2), bool)
    for dy in range(3):
        for dx in range(3):
            whole &= dropped[:, :, dy : dy + h - 2, dx : dx + h - 2]
    covered = np.zeros_like(dropped)
    for dy in range(3):
        for dx in range(3):
            covered[:, :, dy : dy + h - 2, dx : dx + h - 2] |= whole
    np.testing.assert_array_equal(covered, dropped)
    out3 = _np(ops.drop_block3d(mg.ones(1, 2, 6, 6, 6, device=device), 0.3, 3))
    assert (out3 == 0).any() and (out3 > 1).any()
    m = ops.DropBlock2d(0.1, 3)
    assert repr(m) == repr(tv.ops.DropBlock2d(0.1, 3))
    m.eval()
    assert m(x) is x
    with pytest.raises(ValueError, match="block size should be odd"):
        ops.drop_block2d(x, 0.1, 4)
    with pytest.raises(ValueError, match="4 dimensional"):
        ops.drop_block2d(mg.ones(3, 3), 0.1, 3)


def test_split_normalization_params(tv):
    def build(nn):
        return nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3), nn.Sequential(nn.Linear(3, 4),
                             nn.LayerNorm(4), nn.GroupNorm(2, 4)))  # fmt: skip

    mine = importlib.import_module("manygrad.vision.ops._utils").split_normalization_params
    theirs = importlib.import_module("torchvision.ops._utils").split_normalization_params
    got = [[tuple(p.shape) for p in ps] for ps in mine(build(mg.nn))]
    want = [[tuple(p.shape) for p in ps] for ps in theirs(build(torch.nn))]
    assert got == want and len(got[0]) == 6
    got = [[tuple(p.shape) for p in ps] for ps in mine(build(mg.nn), [mg.nn.LayerNorm])]
    assert got == [[(4,), (4,)], [(3, 2, 1, 1), (3,), (3,), (3,), (4, 3), (4,), (4,), (4,)]]


def test_all_names_of_torchvision_ops(tv):
    missing = [n for n in tv.ops.__all__ if not hasattr(ops, n)]
    assert not missing


def test_torchvision_ops_under_manygrad_run(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "detect_post.py"
    script.write_text(
        "import torch, torchvision\n"
        "from torchvision.ops import boxes as box_ops\n"
        "from torchvision.ops.misc import Conv2dNormActivation\n"
        "b = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])\n"
        "s = torch.tensor([0.9, 0.8, 0.7])\n"
        "print(torchvision.ops.nms(b, s, 0.5).tolist())\n"
        "print(box_ops.batched_nms(b, s, torch.tensor([0, 1, 0]), 0.5).tolist())\n"
        "x = Conv2dNormActivation(3, 4)(torch.ones(1, 3, 8, 8))\n"
        "r = torchvision.ops.roi_align(x, [b], 2, 0.5, 2, aligned=True)\n"
        "print(tuple(r.shape), type(x).__module__.split('.')[0])\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "manygrad", "run", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["[0, 2]", "[0, 1, 2]", "(3, 4, 2, 2) manygrad"]


def test_nms_names_mixed_devices():
    with pytest.raises(RuntimeError, match="boxes are on fakegpu and scores on cpu"):
        ops.nms(mg.rand(3, 4, device="fakegpu"), mg.rand(3), 0.5)
