"""manygrad.vision.models.detection against torchvision.models.detection: box codecs,
matchers, anchors and the R-CNN transform; then each detector with torchvision's weights
copied in: the same eval predictions and the same training losses; builders' state-dict
keys and shapes (on the meta device), weights enums, registry, checkpoints from the hub
cache.

The oracle: torchvision's compiled ops do not load here, so its ``nms`` is replaced by
``_torch_nms`` below (the greedy definition, in PyTorch), and its ``roi_align`` runs its
pure-Python fallback (undecorated: no ``torch.compile``). Detectors are small (a one-block
ResNet under a 32-channel FPN, 64-128 px images, few proposals) and run in float64 where
thresholds decide (score, IoU, NMS), so that rounding cannot flip a decision.

Training losses depend on ``BalancedPositiveNegativeSampler``'s random draws; the tests
make its batches larger than the candidates, so that every candidate is kept on both
sides whatever the permutation (``_ALL``), and check the sampler's draws on their own.
"""

from __future__ import annotations

import importlib
import types
from collections import OrderedDict
from functools import partial

import numpy as np
import pytest

import manygrad as mg
from manygrad.vision import ops as mg_ops
from manygrad.vision.models import _api
from manygrad.vision.models import detection as D
from manygrad.vision.models.detection import _utils as det_utils


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_nms(boxes, scores, iou_threshold):
    """Greedy NMS as torchvision's kernel: by decreasing score (stable), drop a box whose
    IoU (in the boxes' dtype) with a kept box exceeds the threshold (compared in double)."""
    import torch

    order = torch.sort(scores, descending=True, stable=True)[1]
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(b[:, None, :2], b[None, :, :2])
    rb = torch.min(b[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    over = (inter / (area[:, None] + area[None, :] - inter)).double() > iou_threshold
    removed = torch.zeros(len(b), dtype=torch.bool)
    keep = []
    for i in range(len(b)):
        if not removed[i]:
            keep.append(i)
            removed |= over[i]
    return order[torch.tensor(keep, dtype=torch.long)]


@pytest.fixture(scope="module")
def tvd(tv, torch):
    """torchvision.models.detection with the pure-PyTorch nms and roi_align."""
    roi_mod = importlib.import_module("torchvision.ops.roi_align")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tv.ops.boxes, "nms", _torch_nms)
        mp.setattr(tv.ops, "nms", _torch_nms)
        mp.setattr(
            roi_mod, "_roi_align", getattr(roi_mod._roi_align, "__wrapped__", roi_mod._roi_align)
        )
        yield tv.models.detection


def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "cpu") else t.detach().numpy()


def _sides(tv, torch, tvd):
    """The two libraries as the same namespace: (torchvision side, manygrad side)."""
    ref = types.SimpleNamespace(det=tvd, ops=tv.ops, models=tv.models, nn=torch.nn, lib=torch)
    ours = types.SimpleNamespace(det=D, ops=mg_ops, models=mg.vision.models, nn=mg.nn, lib=mg)
    return ref, ours


def _randomize(ref, torch, seed: int = 1) -> None:
    """Weights and norm statistics of order one, so that activations stay of order one."""
    g = torch.Generator().manual_seed(seed)
    frozen = importlib.import_module("torchvision.ops.misc").FrozenBatchNorm2d
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, frozen)):
                n = m.weight.shape[0]
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            elif isinstance(m, torch.nn.GroupNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.ConvTranspose2d)):
                fan_in = int(np.prod(m.weight.shape[1:]))
                if isinstance(m, torch.nn.ConvTranspose2d):
                    fan_in = m.weight.shape[0] * int(np.prod(m.weight.shape[2:])) // 4
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.5 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        # NOTE: milder predictions (class scores spread over classes, deltas of a few
        # tenths): many detections survive the score threshold and NMS to be compared
        for name, m in ref.named_modules():
            if name.rsplit(".", 1)[-1] in ("cls_score", "bbox_pred", "cls_logits", "bbox_reg"):
                m.weight.mul_(0.2)


def _shapes(model) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _copy(ref, ours) -> None:
    assert list(_shapes(ours).items()) == list(_shapes(ref).items())
    ours.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})


def _pair(tv, torch, tvd, build, seed: int = 1, double: bool = True):
    """``build(side)`` on both sides, torchvision's randomized and copied into manygrad's."""
    ref_side, our_side = _sides(tv, torch, tvd)
    torch.manual_seed(0)
    ref = build(ref_side)
    ours = build(our_side)
    _randomize(ref, torch, seed)
    _copy(ref, ours)
    if double:
        ref, ours = ref.double(), ours.double()
    return ref, ours


def _body(s, norm=None, widths=(8, 8, 16, 24, 32)):
    """A tiny conv net with ResNet's stage names and strides (2, 4, 8, 16, 32)."""
    nn, norm = s.nn, norm or s.ops.FrozenBatchNorm2d
    names = ["stem", "layer1", "layer2", "layer3", "layer4"]
    stages, cin = [], 3
    for name, cout in zip(names, widths):
        conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        stages.append((name, nn.Sequential(conv, norm(cout), nn.ReLU())))
        cin = cout
    return nn.Sequential(OrderedDict(stages))


def _fpn_backbone(s, out_channels: int = 16, returned=(1, 2, 3, 4), extra=None, norm=None):
    """``_body`` under an FPN: small and fast, every level exercised."""
    widths = (8, 8, 16, 24, 32)
    layers = {f"layer{k}": str(v) for v, k in enumerate(returned)}
    channels = [widths[k] for k in returned]
    body = _body(s, norm, widths)
    return s.det.backbone_utils.BackboneWithFPN(body, layers, channels, out_channels, extra)


def _images(rng, sizes, dtype=np.float64):
    return [rng.random((3, h, w)).astype(dtype) for h, w in sizes]


def _targets(rng, sizes, n: int = 3, num_classes: int = 4, masks=False, keypoints=0):
    out = []
    for h, w in sizes:
        x1 = rng.uniform(0, w * 0.6, n)
        y1 = rng.uniform(0, h * 0.6, n)
        x2 = np.minimum(x1 + rng.uniform(8, w * 0.5, n), w - 1)
        y2 = np.minimum(y1 + rng.uniform(8, h * 0.5, n), h - 1)
        t = {
            "boxes": np.stack([x1, y1, x2, y2], 1),
            "labels": rng.integers(1, num_classes, n).astype(np.int64),
        }
        if masks:
            m = np.zeros((n, h, w), np.uint8)
            for i in range(n):
                m[i, int(y1[i]) : int(y2[i]), int(x1[i]) : int(x2[i])] = 1
                m[i, int(y1[i]) : int(y1[i] + 3)] = 0
            t["masks"] = m
        if keypoints:
            kx = rng.uniform(x1[:, None], x2[:, None], (n, keypoints))
            ky = rng.uniform(y1[:, None], y2[:, None], (n, keypoints))
            vis = (rng.random((n, keypoints)) > 0.2).astype(np.float64)
            t["keypoints"] = np.stack([kx, ky, vis], 2).astype(np.float32)
        out.append(t)
    return out


def _run(model, lib, images, targets=None, dtype=None):
    """``model`` on numpy images (and targets) through ``lib`` (torch or manygrad)."""
    imgs = [lib.tensor(im) for im in images]
    tgts = None
    if targets is not None:
        tgts = [{k: lib.tensor(v) for k, v in t.items()} for t in targets]
    if model.training:
        return model(imgs, tgts)
    with lib.no_grad():
        return model(imgs, tgts)


def _check_losses(ref_losses, losses, rtol: float = 1e-7) -> None:
    assert list(losses) == list(ref_losses)
    for k in ref_losses:
        want = float(ref_losses[k].detach())
        assert np.isfinite(want) and want != 0.0, f"{k}: {want} checks nothing"
        np.testing.assert_allclose(
            float(losses[k].detach()), want, rtol=rtol, atol=1e-12, err_msg=k
        )


def _check_detections(ref_out, out, atol: float = 1e-6, min_count: int = 1) -> None:
    assert len(out) == len(ref_out)
    for want, got in zip(ref_out, out):
        assert list(got) == list(want)
        assert len(want["boxes"]) >= min_count, "no detections: the check means nothing"
        for k in want:
            w, g = _np(want[k]), _np(got[k])
            assert g.shape == w.shape and g.dtype == w.dtype, (k, g.shape, w.shape)
            if w.dtype.kind in "iub":
                np.testing.assert_array_equal(g, w, err_msg=k)
            else:
                scale = max(1.0, float(np.abs(w).max())) if w.size else 1.0
                np.testing.assert_allclose(g, w, rtol=atol, atol=atol * scale, err_msg=k)


# ------------------------------------------------------------------- codecs, matchers, anchors


def test_box_coders_match_torchvision(tvd, torch):
    rng = np.random.default_rng(0)
    ref_utils = importlib.import_module("torchvision.models.detection._utils")
    a = rng.uniform(0, 50, (20, 2))
    anchors = np.concatenate([a, a + rng.uniform(2, 30, (20, 2))], 1)
    b = rng.uniform(0, 50, (20, 2))
    gt = np.concatenate([b, b + rng.uniform(2, 30, (20, 2))], 1)
    codes = rng.standard_normal((20, 8)) * 3  # two boxes per row, some deltas clipped
    for w in [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]:
        ref, ours = ref_utils.BoxCoder(w), det_utils.BoxCoder(w)
        want = ref.encode_single(torch.tensor(gt), torch.tensor(anchors)).numpy()
        np.testing.assert_allclose(
            ours.encode_single(mg.tensor(gt), mg.tensor(anchors)).numpy(), want, rtol=1e-12
        )
        want = ref.decode(
            torch.tensor(codes), [torch.tensor(anchors[:8]), torch.tensor(anchors[8:])]
        )
        got = ours.decode(mg.tensor(codes), [mg.tensor(anchors[:8]), mg.tensor(anchors[8:])])
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
        enc = ours.encode(
            [mg.tensor(gt[:5]), mg.tensor(gt[5:])], [mg.tensor(anchors[:5]), mg.tensor(anchors[5:])]
        )
        assert [tuple(e.shape) for e in enc] == [(5, 4), (15, 4)]
    ref, ours = ref_utils.BoxLinearCoder(True), det_utils.BoxLinearCoder(True)
    np.testing.assert_allclose(
        ours.encode(mg.tensor(anchors), mg.tensor(gt)).numpy(),
        ref.encode(torch.tensor(anchors), torch.tensor(gt)).numpy(),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        ours.decode(mg.tensor(codes[:, :4]), mg.tensor(anchors)).numpy(),
        ref.decode(torch.tensor(codes[:, :4]), torch.tensor(anchors)).numpy(),
        rtol=1e-12,
    )


def test_matchers_match_torchvision(tvd, torch):
    ref_utils = importlib.import_module("torchvision.models.detection._utils")
    rng = np.random.default_rng(1)
    q = rng.random((4, 30)) * 0.9
    q[2, 7] = q[2, 9] = 0.95  # a tie for the best of ground truth 2
    q[3] *= 0.2  # ground truth 3 matches only in low quality
    for args in [(0.7, 0.3, True), (0.7, 0.3, False), (0.5, 0.5, False)]:
        want = ref_utils.Matcher(*args)(torch.tensor(q)).numpy()
        np.testing.assert_array_equal(det_utils.Matcher(*args)(mg.tensor(q)).numpy(), want)
    want = ref_utils.SSDMatcher(0.5)(torch.tensor(q)).numpy()
    np.testing.assert_array_equal(det_utils.SSDMatcher(0.5)(mg.tensor(q)).numpy(), want)
    with pytest.raises(ValueError, match="No ground-truth boxes"):
        det_utils.Matcher(0.5, 0.4)(mg.zeros(0, 5))
    with pytest.raises(ValueError, match="low_threshold should be <= high_threshold"):
        det_utils.Matcher(0.3, 0.5)


def test_sampler_draws_balanced_subsets():
    labels = mg.tensor(np.r_[np.ones(30), np.zeros(200), -np.ones(20)].astype(np.int64))
    sampler = det_utils.BalancedPositiveNegativeSampler(64, 0.25)
    pos, neg = sampler([labels])
    pos, neg = pos[0].numpy().astype(bool), neg[0].numpy().astype(bool)
    assert pos.sum() == 16 and neg.sum() == 48
    assert labels.numpy()[pos].min() >= 1 and np.all(labels.numpy()[neg] == 0)
    mg.manual_seed(1)
    other = sampler([labels])[0][0].numpy().astype(bool)
    assert (other != pos).any()  # a fresh random draw
    pos, neg = det_utils.BalancedPositiveNegativeSampler(1000, 0.5)([labels])
    assert pos[0].numpy().sum() == 30 and neg[0].numpy().sum() == 200  # all kept: _ALL


def test_anchor_generators_match_torchvision(tvd, torch):
    rng = np.random.default_rng(2)
    feats = [rng.random((2, 4, h, w)) for h, w in [(16, 20), (8, 10), (4, 5)]]
    batch = rng.random((2, 3, 64, 80))
    sizes, ratios = ((16, 24), (32,), (64, 90)), ((0.5, 1.0, 2.0), (1.0,), (0.7, 1.3))
    ref_il = tvd.image_list.ImageList(torch.tensor(batch), [(60, 75), (64, 80)])
    our_il = D.image_list.ImageList(mg.tensor(batch), [(60, 75), (64, 80)])
    ref = tvd.anchor_utils.AnchorGenerator(sizes, ratios)
    ours = D.anchor_utils.AnchorGenerator(sizes, ratios)
    assert ours.num_anchors_per_location() == ref.num_anchors_per_location()
    want = ref(ref_il, [torch.tensor(f) for f in feats])
    got = ours(our_il, [mg.tensor(f) for f in feats])
    for w, g in zip(want, got):
        assert g.dtype == mg.float64
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    for kw in [dict(steps=[8, 16, 32]), dict(scales=[0.1, 0.3, 0.6, 0.9]), dict(clip=False)]:
        ref = tvd.anchor_utils.DefaultBoxGenerator([[2], [2, 3], [2]], **kw)
        ours = D.anchor_utils.DefaultBoxGenerator([[2], [2, 3], [2]], **kw)
        assert repr(ours) == repr(ref)
        assert ours.num_anchors_per_location() == ref.num_anchors_per_location()
        want = ref(ref_il, [torch.tensor(f) for f in feats])
        got = ours(our_il, [mg.tensor(f) for f in feats])
        for w, g in zip(want, got):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12)


def test_transform_matches_torchvision(tvd, torch):
    rng = np.random.default_rng(3)
    sizes = [(50, 70), (64, 41)]
    images = _images(rng, sizes)
    targets = _targets(rng, sizes, masks=True, keypoints=5)
    args = (48, 80, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    for kw in [{}, {"size_divisible": 1, "fixed_size": (60, 44)}]:
        ref = tvd.transform.GeneralizedRCNNTransform(*args, **kw)
        ours = D.transform.GeneralizedRCNNTransform(*args, **kw)
        assert repr(ours) == repr(ref)
        r_il, r_t = _run(ref.train(), torch, images, targets)
        o_il, o_t = _run(ours.train(), mg, images, targets)
        assert o_il.image_sizes == [tuple(s) for s in r_il.image_sizes]
        np.testing.assert_allclose(_np(o_il.tensors), _np(r_il.tensors), atol=1e-12)
        for w, g in zip(r_t, o_t):
            for k in w:
                np.testing.assert_allclose(_np(g[k]), _np(w[k]), rtol=1e-6, err_msg=k)
    # predictions back to the original sizes: boxes, keypoints, masks pasted into images
    ref.eval()
    ours.eval()
    preds = []
    for h, w in sizes:
        t = _targets(rng, [(h, w)], n=4, keypoints=3)[0]
        t["masks"] = rng.random((4, 1, 14, 14))
        preds.append(t)
    want = ref.postprocess([{k: torch.tensor(v) for k, v in p.items()} for p in preds],
                           [(44, 60), (44, 60)], sizes)  # fmt: skip
    got = ours.postprocess([{k: mg.tensor(v) for k, v in p.items()} for p in preds],
                           [(44, 60), (44, 60)], sizes)  # fmt: skip
    for w, g in zip(want, got):
        for k in w:
            np.testing.assert_allclose(_np(g[k]), _np(w[k]), rtol=1e-6, atol=1e-12, err_msg=k)
    with pytest.raises(TypeError, match="floating type"):
        ours([mg.zeros(3, 10, 10, dtype=mg.uint8)])


# ---------------------------------------------------------------------------- R-CNN family

_ALL = 100_000  # sampler batches larger than any candidate set: every candidate kept


def _rcnn_kw(s, num_classes: int = 4, channels: int = 16) -> dict:
    """Small heads and few proposals for the R-CNN family."""
    return dict(
        min_size=64,
        max_size=96,
        box_head=s.det.faster_rcnn.TwoMLPHead(channels * 49, 32),
        box_predictor=s.det.faster_rcnn.FastRCNNPredictor(32, num_classes),
        rpn_pre_nms_top_n_train=60,
        rpn_post_nms_top_n_train=25,
        rpn_pre_nms_top_n_test=60,
        rpn_post_nms_top_n_test=25,
        rpn_batch_size_per_image=_ALL,
        box_batch_size_per_image=_ALL,
        box_detections_per_img=15,
    )


def _check_grads(ref, ours, rtol: float = 1e-6) -> None:
    ref_params = dict(ref.named_parameters())
    seen = 0
    for k, p in ours.named_parameters():
        want = ref_params[k].grad
        if want is None:
            assert p.grad is None or not np.any(p.grad.numpy()), k
            continue
        want = want.numpy()
        # NOTE: some gradients are zero up to rounding (a bias under a softmax over cells)
        atol = max(rtol * float(np.abs(want).max()), 1e-12)
        np.testing.assert_allclose(p.grad.numpy(), want, rtol=rtol, atol=atol, err_msg=k)
        seen += 1
    assert seen > 10


def _check_detector(tv, torch, tvd, build, sizes, target_kw=None, grads=True, seed=1, double=True):
    """Eval predictions, then training losses (and gradients) of ``build`` on both sides."""
    ref, ours = _pair(tv, torch, tvd, build, seed=seed, double=double)
    dtype, tol = (np.float64, 1e-6) if double else (np.float32, 1e-4)
    if hasattr(ref, "rpn"):
        # NOTE: no proposals under 2 px: RoIAlign pools all of them alike (their width is
        # clamped to one), so their scores tie to rounding and NMS picks either
        ref.rpn.min_size = ours.rpn.min_size = 2.0
    rng = np.random.default_rng(seed)
    images = _images(rng, sizes, dtype)
    _check_detections(_run(ref.eval(), torch, images), _run(ours.eval(), mg, images), tol)
    targets = _targets(rng, sizes, **(target_kw or {}))
    if not double:
        for t in targets:
            t["boxes"] = t["boxes"].astype(np.float32)
    ref_losses = _run(ref.train(), torch, images, targets)
    losses = _run(ours.train(), mg, images, targets)
    _check_losses(ref_losses, losses, rtol=1e-7 if double else 1e-4)
    if grads:
        sum(ref_losses.values()).backward()
        sum(losses.values()).backward()
        _check_grads(ref, ours)


def test_faster_rcnn_matches_torchvision(tv, torch, tvd):
    def build(s):
        return s.det.faster_rcnn.FasterRCNN(_fpn_backbone(s), **_rcnn_kw(s))

    _check_detector(tv, torch, tvd, build, [(64, 80), (72, 60)])


def test_mask_rcnn_matches_torchvision(tv, torch, tvd):
    # NOTE: 14 x 14 masks on 48 px images: torchvision's Python roi_align projects each
    # ground-truth mask by sampling all of its pixels for every bin
    def build(s):
        mr = s.det.mask_rcnn
        kw = {**_rcnn_kw(s), "min_size": 48, "max_size": 64}
        return mr.MaskRCNN(
            _fpn_backbone(s),
            mask_roi_pool=s.ops.MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2),
            mask_head=mr.MaskRCNNHeads(16, (16, 16), 1),
            mask_predictor=mr.MaskRCNNPredictor(16, 8, 4),
            **kw,
        )

    _check_detector(tv, torch, tvd, build, [(48, 60), (52, 44)], {"masks": True}, seed=2)


def test_keypoint_rcnn_matches_torchvision(tv, torch, tvd):
    def build(s):
        kr = s.det.keypoint_rcnn
        return kr.KeypointRCNN(
            _fpn_backbone(s),
            keypoint_head=kr.KeypointRCNNHeads(16, (16, 16)),
            keypoint_predictor=kr.KeypointRCNNPredictor(16, 5),
            **_rcnn_kw(s),
        )

    _check_detector(tv, torch, tvd, build, [(64, 80), (56, 72)], {"keypoints": 5}, seed=3)


# ------------------------------------------------------------------ one-stage detectors


@pytest.mark.parametrize("v2", [False, True], ids=["v1-l1", "v2-giou-groupnorm"])
def test_retinanet_matches_torchvision(tv, torch, tvd, v2):
    def build(s):
        rn = s.det.retinanet
        p6p7 = s.ops.feature_pyramid_network.LastLevelP6P7(32 if v2 else 16, 16)
        backbone = _fpn_backbone(s, returned=(2, 3, 4), extra=p6p7)
        head = None
        if v2:
            head = rn.RetinaNetHead(16, 9, 4, norm_layer=partial(s.nn.GroupNorm, 8))
            head.regression_head._loss_type = "giou"
        kw = dict(min_size=64, max_size=96, topk_candidates=40, detections_per_img=20)
        return rn.RetinaNet(backbone, 4, head=head, **kw)

    _check_detector(tv, torch, tvd, build, [(64, 80), (72, 60)], seed=4)


def test_fcos_matches_torchvision(tv, torch, tvd):
    def build(s):
        p6p7 = s.ops.feature_pyramid_network.LastLevelP6P7(32, 32)
        backbone = _fpn_backbone(s, 32, returned=(2, 3, 4), extra=p6p7)
        head = s.det.fcos.FCOSHead(32, 1, 4, num_convs=2)
        kw = dict(min_size=96, max_size=128, topk_candidates=40, detections_per_img=20)
        return s.det.fcos.FCOS(backbone, 4, head=head, score_thresh=0.3, **kw)

    _check_detector(tv, torch, tvd, build, [(96, 120), (100, 90)], seed=5)


def test_ssd_matches_torchvision(tv, torch, tvd):
    def build(s):
        body = s.det.backbone_utils.IntermediateLayerGetter(
            _body(s), {"layer2": "0", "layer3": "1", "layer4": "2"}
        )  # no out_channels: SSD finds them with a forward pass
        anchors = s.det.anchor_utils.DefaultBoxGenerator([[2], [2, 3], [2]], steps=[8, 16, 32])
        kw = dict(topk_candidates=40, detections_per_img=20, score_thresh=0.2)
        return s.det.ssd.SSD(body, anchors, (64, 64), 4, **kw)

    _check_detector(tv, torch, tvd, build, [(64, 80), (72, 60)], seed=6)


def test_ssdlite_builder_matches_torchvision(tv, torch, tvd):
    # the real builder (images resized to 320) in float32: PyTorch has no fast float64
    # depthwise convolution
    def build(s):
        return s.det.ssdlite.ssdlite320_mobilenet_v3_large(
            weights_backbone=None, num_classes=3, topk_candidates=30, detections_per_img=20
        )

    sizes = [(60, 80), (50, 40)]
    _check_detector(
        tv, torch, tvd, build, sizes, {"num_classes": 3}, grads=False, seed=7, double=False
    )


# ------------------------------------------------------------------ builders and weights

_BUILDERS = [
    ("fasterrcnn_resnet50_fpn", {}),
    ("fasterrcnn_resnet50_fpn_v2", {}),
    ("fasterrcnn_mobilenet_v3_large_fpn", {}),
    ("fasterrcnn_mobilenet_v3_large_320_fpn", {"num_classes": 5}),
    ("maskrcnn_resnet50_fpn", {}),
    ("maskrcnn_resnet50_fpn_v2", {}),
    ("keypointrcnn_resnet50_fpn", {"num_keypoints": 5}),
    ("retinanet_resnet50_fpn", {}),
    ("retinanet_resnet50_fpn_v2", {}),
    ("fcos_resnet50_fpn", {}),
    ("ssd300_vgg16", {}),
    ("ssdlite320_mobilenet_v3_large", {}),
]


@pytest.mark.parametrize("name,kw", _BUILDERS, ids=[n for n, _ in _BUILDERS])
def test_builders_have_torchvisions_keys_and_shapes(tv, torch, tvd, name, kw):
    # on the meta device: no memory, no random init
    with torch.device("meta"):
        ref = tv.models.get_model(name, weights_backbone=None, **kw)
    with mg.device("meta"):
        ours = _api.get_model(name, weights_backbone=None, **kw)
    assert list(_shapes(ours).items()) == list(_shapes(ref).items())
    assert repr(ours.transform) == repr(ref.transform)
    trainable = [k for k, p in ours.named_parameters() if p.requires_grad]
    assert trainable == [k for k, p in ref.named_parameters() if p.requires_grad]


def test_pretrained_backbones_freeze_and_norm_as_torchvision(tv, torch, tvd):
    # with backbone weights: frozen batch norm, the first stages frozen (the weights enum
    # stands in for the checkpoint: no file is read on the meta device)
    kw = dict(weights_backbone=None, trainable_backbone_layers=2)
    with pytest.warns(UserWarning, match="has no effect"):
        D.fasterrcnn_resnet50_fpn(**kw)
    with torch.device("meta"):
        ref = tvd.backbone_utils.resnet_fpn_backbone(
            backbone_name="resnet50", weights=None, trainable_layers=2
        )
        ref_m = tvd.backbone_utils.mobilenet_backbone(
            backbone_name="mobilenet_v3_large", weights=None, fpn=True, trainable_layers=3
        )
        ref_s = tvd.ssd._vgg_extractor(tv.models.vgg16(), False, 3)
    with mg.device("meta"):
        ours = D.backbone_utils.resnet_fpn_backbone(
            backbone_name="resnet50", weights=None, trainable_layers=2
        )
        ours_m = D.backbone_utils.mobilenet_backbone(
            backbone_name="mobilenet_v3_large", weights=None, fpn=True, trainable_layers=3
        )
        ours_s = D.ssd._vgg_extractor(mg.vision.models.vgg16(), False, 3)
    for r, o in [(ref, ours), (ref_m, ours_m), (ref_s, ours_s)]:
        assert list(_shapes(o).items()) == list(_shapes(r).items())
        assert [k for k, p in o.named_parameters() if p.requires_grad] == [
            k for k, p in r.named_parameters() if p.requires_grad
        ]
    assert any(type(m).__name__ == "FrozenBatchNorm2d" for m in ours.modules())
    # SSD's VGG feature maps: what torchvision finds by a forward pass, manygrad knows
    with torch.device("meta"):
        want = tvd._utils.retrieve_out_channels(ref_s, (300, 300))
    assert ours_s.out_channels == want == [512, 1024, 512, 256, 256, 256]


def test_registry_and_weights_match_torchvision(tv, tvd):
    names = _api.list_models(module=D)
    assert names == tv.models.list_models(module=tvd)
    for name in names:
        ours, ref = _api.get_model_weights(name), tv.models.get_model_weights(name)
        assert ours.__name__ == ref.__name__
        assert [w.name for w in ours] == [w.name for w in ref]
        assert ours.DEFAULT.name == ref.DEFAULT.name
        for w in ours:
            r = ref[w.name]
            assert repr(w) == repr(r)
            assert w.url == r.url
            for key in ("categories", "num_params", "min_size", "recipe", "_metrics", "_ops",
                        "_file_size"):  # fmt: skip
                assert w.meta[key] == r.meta[key], (name, key)
            assert w.meta.get("keypoint_names") == r.meta.get("keypoint_names")
            assert repr(w.transforms()) == repr(r.transforms())


def test_object_detection_preset_matches_torchvision(tv, torch):
    ours = D.FasterRCNN_ResNet50_FPN_Weights.DEFAULT.transforms()
    ref = tvd_preset = tv.models.detection.FasterRCNN_ResNet50_FPN_Weights.DEFAULT.transforms()
    u8 = np.random.default_rng(8).integers(0, 256, (3, 20, 30), dtype=np.uint8)
    np.testing.assert_allclose(ours(mg.tensor(u8)).numpy(), ref(torch.tensor(u8)).numpy())
    pil = pytest.importorskip("PIL.Image").fromarray(u8.transpose(1, 2, 0))
    np.testing.assert_allclose(ours(pil).numpy(), tvd_preset(pil).numpy())
    assert ours.describe() == ref.describe()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_weights_load_from_hub_cache(tv, torch, tvd, torch_home):
    torch.manual_seed(0)
    ref = tvd.ssdlite320_mobilenet_v3_large(weights_backbone=None)
    _randomize(ref, torch)
    ckpt = torch_home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(ref.state_dict(), ckpt / "ssdlite320_mobilenet_v3_large_coco-a79551df.pth")
    model = D.ssdlite320_mobilenet_v3_large(weights="DEFAULT", progress=False)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k].numpy(), v.numpy(), err_msg=k)
    assert model.head.classification_head.num_columns == 91
    with pytest.raises(ValueError, match="num_classes"):
        D.ssdlite320_mobilenet_v3_large(weights="DEFAULT", num_classes=3)
    # the first COCO checkpoints ran their frozen norms with eps 0
    frozen = mg_ops.FrozenBatchNorm2d(3)
    det_utils.overwrite_eps(mg.nn.Sequential(frozen), 0.0)
    assert frozen.eps == 0.0


def test_detector_errors():
    model = D.fasterrcnn_mobilenet_v3_large_320_fpn(weights_backbone=None, num_classes=3)
    with pytest.raises(ValueError, match="targets should not be none"):
        model.train()([mg.rand(3, 32, 32)])
    bad = [{"boxes": mg.tensor([[5.0, 5.0, 5.0, 9.0]]), "labels": mg.tensor([1])}]
    with pytest.raises(ValueError, match="positive height and width"):
        model.train()([mg.rand(3, 32, 32)], bad)
    with pytest.raises(ValueError, match="shape \\[N, 4\\]"):
        model.train()([mg.rand(3, 32, 32)], [{"boxes": mg.zeros(4), "labels": mg.tensor([1])}])
    with pytest.raises(ValueError, match="num_classes should be None"):
        D.FasterRCNN(model.backbone, 3, box_predictor=model.roi_heads.box_predictor)
    with pytest.raises(ValueError, match="out_channels"):
        D.RetinaNet(mg.nn.ReLU(), 3)
    with pytest.raises(TypeError, match="expected FCOS_ResNet50_FPN_Weights"):
        D.fcos_resnet50_fpn(weights=D.RetinaNet_ResNet50_FPN_Weights.DEFAULT)


def test_faster_rcnn_runs_on_the_fake_gpu():
    # device placement: every tensor the model makes follows its input (no host leaks)
    model = D.FasterRCNN(
        _fpn_backbone(types.SimpleNamespace(det=D, ops=mg_ops, nn=mg.nn)),
        **_rcnn_kw(types.SimpleNamespace(det=D)),
    ).to("fakegpu")
    model.eval()
    with mg.no_grad():
        out = model([mg.rand(3, 48, 64, device="fakegpu")])
    assert out[0]["boxes"].device == mg.device("fakegpu")
    model.train()
    target = {"boxes": mg.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": mg.tensor([2])}
    target = {k: v.to("fakegpu") for k, v in target.items()}
    losses = model([mg.rand(3, 48, 64, device="fakegpu")], [target])
    sum(losses.values()).backward()
    assert all(v.device == mg.device("fakegpu") for v in losses.values())
