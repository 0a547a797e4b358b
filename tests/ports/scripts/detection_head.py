"""An anchor-based single-stage detector head (RetinaNet-style, as in torchvision's
detection models) written in plain torch: anchors on a feature grid, pairwise IoU by
broadcasting, anchor-to-box matching with max(dim=...), box encoding/decoding with
log/exp, sigmoid focal loss and smooth L1 on the matched anchors, then a batched NMS
(argsort + a while loop over a keep mask) on the decoded predictions."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 3
IMG = 32
STRIDE = 4
SIZES = (6.0, 12.0)
RATIOS = (0.5, 1.0, 2.0)
BBOX_CLIP = math.log(1000.0 / 16)


def make_anchors():
    n = IMG // STRIDE
    shifts = (torch.arange(n, dtype=torch.float32) + 0.5) * STRIDE
    sy, sx = torch.meshgrid(shifts, shifts, indexing="ij")
    centers = torch.stack([sx.reshape(-1), sy.reshape(-1)], dim=1)
    ratios = torch.tensor(RATIOS)
    sizes = torch.tensor(SIZES)
    h = (sizes[:, None] * torch.sqrt(ratios)[None, :]).reshape(-1)
    w = (sizes[:, None] / torch.sqrt(ratios)[None, :]).reshape(-1)
    half = torch.stack([-w, -h, w, h], dim=1) / 2
    ctr = centers.repeat(1, 2)
    return (ctr[:, None, :] + half[None, :, :]).reshape(-1, 4)


def box_area(b):
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_iou(a, b):
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (box_area(a)[:, None] + box_area(b)[None, :] - inter)


def encode(ref, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    wx, wy, ww, wh = weights
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    gw, gh = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    gx, gy = ref[:, 0] + 0.5 * gw, ref[:, 1] + 0.5 * gh
    dx, dy = wx * (gx - ax) / aw, wy * (gy - ay) / ah
    dw, dh = ww * torch.log(gw / aw), wh * torch.log(gh / ah)
    return torch.stack((dx, dy, dw, dh), dim=1)


def decode(deltas, anchors):
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    dx, dy, dw, dh = deltas.unbind(dim=1)
    dw, dh = torch.clamp(dw, max=BBOX_CLIP), torch.clamp(dh, max=BBOX_CLIP)
    cx, cy = dx * aw + ax, dy * ah + ay
    w, h = torch.exp(dw) * aw, torch.exp(dh) * ah
    boxes = torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=1)
    return boxes.clamp(min=0, max=IMG)


def match(anchors, gt, high=0.5, low=0.4):
    iou = box_iou(gt, anchors)  # gt x anchors
    matched_vals, matches = iou.max(dim=0)
    below = matched_vals < low
    between = (matched_vals >= low) & (matched_vals < high)
    matches = torch.where(below, torch.full_like(matches, -1), matches)
    matches[between] = -2
    # allow low-quality matches: each gt keeps its best anchor(s)
    best_per_gt, _ = iou.max(dim=1)
    gt_idx, anchor_idx = torch.nonzero(iou == best_per_gt[:, None], as_tuple=True)
    matches.index_put_((anchor_idx,), gt_idx)
    return matches


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * loss).sum()


def nms(boxes, scores, iou_threshold):
    order = torch.argsort(scores, descending=True)
    boxes = boxes[order]
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    i = 0
    while i < len(order):
        if not suppressed[i]:
            keep.append(order[i])
            ious = box_iou(boxes[i : i + 1], boxes)[0]
            suppressed |= ious > iou_threshold
        i += 1
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long)


def batched_nms(boxes, scores, labels, iou_threshold):
    # the coordinate trick: offset boxes per class so classes never overlap
    offsets = labels.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


class Head(nn.Module):
    def __init__(self, num_anchors, channels=32):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.cls_logits = nn.Conv2d(channels, num_anchors * NUM_CLASSES, 3, padding=1)
        self.bbox_reg = nn.Conv2d(channels, num_anchors * 4, 3, padding=1)
        self.num_anchors = num_anchors

    def forward(self, x):
        f = self.backbone(x)
        n, _, h, w = f.shape
        cls = self.cls_logits(f).view(n, self.num_anchors, NUM_CLASSES, h, w)
        cls = cls.permute(0, 3, 4, 1, 2).reshape(n, -1, NUM_CLASSES)
        reg = self.bbox_reg(f).view(n, self.num_anchors, 4, h, w)
        reg = reg.permute(0, 3, 4, 1, 2).reshape(n, -1, 4)
        return cls, reg


def synthetic_batch(n):
    images = torch.zeros(n, 3, IMG, IMG)
    targets = []
    for i in range(n):
        k = 2
        xy = torch.rand(k, 2) * (IMG - 14)
        wh = 6 + torch.rand(k, 2) * 8
        boxes = torch.cat([xy, xy + wh], dim=1)
        labels = torch.randint(0, NUM_CLASSES, (k,))
        for b, c in zip(boxes.long().tolist(), labels.tolist()):
            images[i, c, b[1] : b[3], b[0] : b[2]] += 1.0
        targets.append({"boxes": boxes, "labels": labels})
    return images + 0.1 * torch.randn(n, 3, IMG, IMG), targets


def compute_loss(cls, reg, anchors, targets):
    cls_losses, reg_losses = [], []
    for i, t in enumerate(targets):
        matches = match(anchors, t["boxes"])
        fg = matches >= 0
        num_fg = max(1, int(fg.sum()))
        gt_classes = torch.zeros_like(cls[i])
        fg_idx = torch.nonzero(fg).squeeze(1)
        gt_classes[fg_idx, t["labels"][matches[fg_idx]]] = 1.0
        valid = matches != -2
        cls_losses.append(sigmoid_focal_loss(cls[i][valid], gt_classes[valid]) / num_fg)
        target_deltas = encode(t["boxes"][matches[fg_idx]], anchors[fg_idx])
        reg_losses.append(
            F.smooth_l1_loss(reg[i][fg_idx], target_deltas, beta=1.0 / 9, reduction="sum") / num_fg
        )
    return sum(cls_losses) / len(targets), sum(reg_losses) / len(targets)


def postprocess(cls, reg, anchors, score_thresh=0.2, iou_thresh=0.5, topk=50):
    results = []
    for i in range(cls.shape[0]):
        scores = torch.sigmoid(cls[i]).flatten()
        keep = scores > score_thresh
        scores = scores[keep]
        idxs = torch.nonzero(keep).squeeze(1)
        scores, order = scores.topk(min(topk, idxs.numel()))
        idxs = idxs[order]
        anchor_idx = torch.div(idxs, NUM_CLASSES, rounding_mode="floor")
        labels = idxs % NUM_CLASSES
        boxes = decode(reg[i][anchor_idx], anchors[anchor_idx])
        kept = batched_nms(boxes, scores, labels, iou_thresh)
        results.append((boxes[kept], scores[kept], labels[kept]))
    return results


def main():
    torch.manual_seed(0)
    anchors = make_anchors()
    model = Head(len(SIZES) * len(RATIOS))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    images, targets = synthetic_batch(8)
    for step in range(1, 31):
        cls, reg = model(images)
        cls_loss, reg_loss = compute_loss(cls, reg, anchors, targets)
        loss = cls_loss + reg_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 5 == 0:
            print(f"step {step} loss {loss.item():.5f} cls_loss {cls_loss.item():.5f} "
                  f"reg_loss {reg_loss.item():.5f}")  # fmt: skip
    model.eval()
    with torch.no_grad():
        cls, reg = model(images)
        dets = postprocess(cls, reg, anchors)
    # IoU-based recall of the detections as a final "loss" line
    hits = 0
    total = 0
    for (boxes, _scores, labels), t in zip(dets, targets):
        total += len(t["boxes"])
        if len(boxes):
            iou = box_iou(t["boxes"], boxes)
            same = t["labels"][:, None] == labels[None, :]
            best = torch.where(same, iou, torch.zeros_like(iou)).max(dim=1).values
            hits += int((best > 0.5).sum())
    mean_score = torch.cat([d[1] for d in dets]).mean().item() if total else 0.0
    print(f"detections {sum(len(d[0]) for d in dets)} recall {hits / total:.3f}")
    print(f"eval score_loss {1 - mean_score:.5f}")


if __name__ == "__main__":
    main()
