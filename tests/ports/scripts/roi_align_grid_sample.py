"""A Mask R-CNN-style second stage (He et al., 2017) on synthetic 32x32 images of rectangles and
discs: RoIAlign written with F.affine_grid + F.grid_sample (bilinear, a sampling ratio of 2
averaged by F.avg_pool2d; --align-corners picks the pixel convention of both), per-image
proposals (jittered ground-truth boxes plus random ones) flattened with torch.cat and an image
index, split back with torch.split and matched by pairwise IoU; a box head (nn.Flatten,
nn.Linear) with F.cross_entropy over classes and F.smooth_l1_loss(beta=1/9) on encoded box
deltas of the true class (torch.arange indexing, index_select), and a mask head (nn.Conv2d,
nn.ConvTranspose2d) whose per-class logits are picked by the label and trained with
F.binary_cross_entropy_with_logits against RoI-aligned ground-truth masks; Adam with weight
decay and MultiStepLR; evaluation in no_grad on held-out images."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 2  # + background (0)
IMG = 32
POOL = 4
MASK = 8


def roi_align(features, rois, output_size, spatial_scale, sampling_ratio=2, align_corners=False):
    """rois: (R, 5) as (batch_index, x1, y1, x2, y2) in image coordinates."""
    n, c, h, w = features.shape
    idx = rois[:, 0].long()
    boxes = rois[:, 1:] * spatial_scale
    x1, y1, x2, y2 = boxes.unbind(1)
    if align_corners:
        # pixel centers at -1 and 1: the grid's corners sit on the box's corner pixels
        sx, sy = (x2 - x1) / (w - 1), (y2 - y1) / (h - 1)
        tx, ty = (x1 + x2) / (w - 1) - 1, (y1 + y2) / (h - 1) - 1
    else:
        # pixel edges at -1 and 1, box corners in continuous coordinates
        sx, sy = (x2 - x1) / w, (y2 - y1) / h
        tx, ty = (x1 + x2) / w - 1, (y1 + y2) / h - 1
    zeros = torch.zeros_like(sx)
    theta = torch.stack(
        [torch.stack([sx, zeros, tx], 1), torch.stack([zeros, sy, ty], 1)], dim=1
    )  # (R, 2, 3)
    size = output_size * sampling_ratio
    grid = F.affine_grid(theta, [rois.shape[0], c, size, size], align_corners=align_corners)
    per_roi = features.index_select(0, idx)
    sampled = F.grid_sample(
        per_roi, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners
    )
    return F.avg_pool2d(sampled, sampling_ratio)


def box_iou(a, b):
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None] - inter)


def encode(proposals, gt, weights=(10.0, 10.0, 5.0, 5.0)):
    pw, ph = proposals[:, 2] - proposals[:, 0], proposals[:, 3] - proposals[:, 1]
    px, py = proposals[:, 0] + 0.5 * pw, proposals[:, 1] + 0.5 * ph
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    wx, wy, ww, wh = weights
    return torch.stack(
        [
            wx * (gx - px) / pw,
            wy * (gy - py) / ph,
            ww * torch.log(gw / pw),
            wh * torch.log(gh / ph),
        ],
        dim=1,
    )


class Backbone(nn.Module):
    def __init__(self, ch=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, ch, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.stride = 2

    def forward(self, x):
        return self.body(x)


class BoxHead(nn.Module):
    def __init__(self, ch, hidden=64):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(ch * POOL * POOL, hidden), nn.ReLU())
        self.cls_score = nn.Linear(hidden, NUM_CLASSES + 1)
        self.bbox_pred = nn.Linear(hidden, (NUM_CLASSES + 1) * 4)

    def forward(self, x):
        x = self.fc(x)
        return self.cls_score(x), self.bbox_pred(x)


class MaskHead(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU()
        )
        self.deconv = nn.ConvTranspose2d(ch, ch, 2, stride=2)
        self.logits = nn.Conv2d(ch, NUM_CLASSES + 1, 1)

    def forward(self, x):
        return self.logits(F.relu(self.deconv(self.convs(x))))


class RoIHeads(nn.Module):
    def __init__(self, align_corners):
        super().__init__()
        self.backbone = Backbone()
        self.box_head = BoxHead(16)
        self.mask_head = MaskHead(16)
        self.align_corners = align_corners

    def forward(self, images, rois):
        feats = self.backbone(images)
        scale = 1.0 / self.backbone.stride
        box_feats = roi_align(feats, rois, POOL, scale, align_corners=self.align_corners)
        mask_feats = roi_align(feats, rois, MASK // 2, scale, align_corners=self.align_corners)
        cls_logits, deltas = self.box_head(box_feats)
        return cls_logits, deltas, self.mask_head(mask_feats)


def sample_proposals(rng, gt_boxes, n_random=4):
    """Jittered copies of each ground-truth box plus random boxes, clipped to the image."""
    props = []
    for box in gt_boxes.numpy():
        w, h = box[2] - box[0], box[3] - box[1]
        for _ in range(3):
            j = rng.normal(0, 0.15, 4) * np.array([w, h, w, h])
            props.append(box + j)
    for _ in range(n_random):
        x0, y0 = rng.uniform(0, IMG - 8, 2)
        w, h = rng.uniform(6, 16, 2)
        props.append([x0, y0, x0 + w, y0 + h])
    props = np.clip(np.array(props, np.float32), 0, IMG)
    props[:, 2:] = np.maximum(props[:, 2:], props[:, :2] + 2)
    return torch.from_numpy(props)


def make_data(rng, n):
    yy, xx = np.mgrid[0:IMG, 0:IMG].astype(np.float32) + 0.5
    images = np.zeros((n, 1, IMG, IMG), np.float32)
    masks = np.zeros((n, 3, IMG, IMG), np.float32)  # one instance mask per object
    boxes, labels = [], []
    for i in range(n):
        bs, ls = [], []
        for k in range(rng.integers(1, 4)):
            w, h = rng.integers(8, 16, 2)
            x0, y0 = rng.integers(0, IMG - w), rng.integers(0, IMG - h)
            label = int(rng.integers(1, NUM_CLASSES + 1))
            if label == 1:  # rectangle
                m = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
            else:  # ellipse inscribed in the box
                cx, cy = x0 + w / 2, y0 + h / 2
                m = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1
            masks[i, k] = m
            images[i, 0] = np.maximum(images[i, 0], m * rng.uniform(0.5, 1.0))
            bs.append([x0, y0, x0 + w, y0 + h])
            ls.append(label)
        boxes.append(torch.tensor(bs, dtype=torch.float32))
        labels.append(torch.tensor(ls))
    images += rng.normal(0, 0.05, images.shape).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(masks), boxes, labels


def build_targets(proposals, gt_boxes, gt_labels, fg_iou=0.5):
    """Per image: the label of each proposal's best-matching box (0 if its IoU is too low)."""
    labels, matched = [], []
    for props, gtb, gtl in zip(proposals, gt_boxes, gt_labels):
        iou = box_iou(props, gtb)
        best, idx = iou.max(dim=1)
        lab = gtl[idx].clone()
        lab[best < fg_iou] = 0
        labels.append(lab)
        matched.append(idx)
    return labels, matched


def losses(model, images, masks, proposals, gt_boxes, gt_labels):
    labels, matched = build_targets(proposals, gt_boxes, gt_labels)
    counts = [len(p) for p in proposals]
    rois = torch.cat(
        [torch.cat([torch.full((len(p), 1), float(i)), p], 1) for i, p in enumerate(proposals)]
    )
    cls_logits, deltas, mask_logits = model(images, rois)
    labels_all = torch.cat(labels)
    loss_cls = F.cross_entropy(cls_logits, labels_all)

    fg = torch.nonzero(labels_all > 0).squeeze(1)
    gt_per_roi = torch.cat([gtb[m] for gtb, m in zip(gt_boxes, matched)])
    targets = encode(rois[fg, 1:], gt_per_roi.index_select(0, fg))
    deltas = deltas.view(-1, NUM_CLASSES + 1, 4)[fg, labels_all[fg]]
    loss_box = F.smooth_l1_loss(deltas, targets, beta=1 / 9, reduction="sum") / max(
        labels_all.numel(), 1
    )

    # mask targets: the matched instance's mask, RoI-aligned to MASK x MASK, thresholded
    with torch.no_grad():
        inst = torch.cat([m[mi][:, None] for m, mi in zip(masks, matched)])  # (R, 1, H, W)
        flat_rois = torch.cat([torch.arange(len(rois))[:, None].float(), rois[:, 1:]], 1)
        mask_t = roi_align(inst, flat_rois, MASK // 2, 1.0, sampling_ratio=4,
                           align_corners=model.align_corners)  # fmt: skip
        mask_t = F.interpolate(mask_t, size=(MASK, MASK), mode="nearest")
        mask_t = (mask_t >= 0.5).float()
    picked = mask_logits[fg, labels_all[fg]]
    loss_mask = F.binary_cross_entropy_with_logits(picked, mask_t[fg, 0])
    # per-image accuracy, the flat batch split back into images
    per_image = torch.split(cls_logits.detach(), counts)
    acc = torch.stack(
        [(pi.argmax(1) == li).float().mean() for pi, li in zip(per_image, labels)]
    ).mean()
    return loss_cls, loss_box, loss_mask, acc


def main():
    parser = argparse.ArgumentParser(description="RoIAlign with grid_sample")
    parser.add_argument("--align-corners", action="store_true")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images, masks, gt_boxes, gt_labels = make_data(rng, 32)
    proposals = [sample_proposals(rng, b) for b in gt_boxes]
    test = make_data(rng, 8)
    test_proposals = [sample_proposals(rng, b) for b in test[2]]
    model = RoIHeads(args.align_corners)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[3], gamma=0.1)
    for epoch in range(args.epochs):
        model.train()
        sums = np.zeros(4)
        steps = 0
        for i in range(0, len(images), args.batch_size):
            sl = slice(i, i + args.batch_size)
            loss_cls, loss_box, loss_mask, acc = losses(
                model, images[sl], masks[sl], proposals[sl], gt_boxes[sl], gt_labels[sl]
            )
            loss = loss_cls + loss_box + loss_mask
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            sums += [loss_cls.item(), loss_box.item(), loss_mask.item(), acc.item()]
            steps += 1
        scheduler.step()
        model.eval()
        with torch.no_grad():
            t_img, t_masks, t_boxes, t_labels = test
            t_cls, t_box, t_mask, t_acc = losses(
                model, t_img, t_masks, test_proposals, t_boxes, t_labels
            )
        cls_l, box_l, mask_l, acc = sums / steps
        print(
            f"epoch {epoch} cls loss {cls_l:.6f} box loss {box_l:.6f} mask loss {mask_l:.6f} "
            f"accuracy {acc:.4f} test loss {(t_cls + t_box + t_mask).item():.6f} "
            f"test accuracy {t_acc.item():.4f}"
        )


if __name__ == "__main__":
    main()
