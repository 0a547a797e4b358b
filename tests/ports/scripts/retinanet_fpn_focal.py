"""A RetinaNet-style dense detector (Lin et al., 2017) on synthetic rectangles: a tiny
convolutional backbone with a two-level feature pyramid (lateral 1x1 convs, nearest
upsampling with F.interpolate), classification and box subnets shared across levels (GroupNorm,
the prior-probability bias of the paper), anchors per level from torch.meshgrid/torch.stack,
IoU matching with torch.max/torch.clamp and an ignore band, a sigmoid focal loss written by
hand (F.binary_cross_entropy_with_logits(reduction="none"), torch.where on the targets,
alpha/gamma), F.huber_loss on the encoded box deltas, box decoding with exp, SGD with momentum
and clip_grad_norm_; evaluation decodes the best-scoring anchors and reports their IoU."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IMG = 32
NUM_CLASSES = 2
STRIDES = (4, 8)
SCALES = (8.0, 16.0)
ASPECTS = (0.5, 1.0, 2.0)


def level_anchors(stride, size):
    n = IMG // stride
    xs = torch.arange(n, dtype=torch.float32) * stride + stride / 2
    ys = torch.arange(n, dtype=torch.float32) * stride + stride / 2
    grid_x, grid_y = torch.meshgrid(xs, ys, indexing="xy")
    centers = torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 1, 2)
    aspects = torch.tensor(ASPECTS)
    wh = torch.stack([size / aspects.sqrt(), size * aspects.sqrt()], dim=-1)  # A x 2
    boxes = torch.cat([centers - wh / 2, centers + wh / 2], dim=-1)  # HW x A x 4
    return boxes.reshape(-1, 4)


def all_anchors():
    return torch.cat([level_anchors(s, z) for s, z in zip(STRIDES, SCALES)], dim=0)


def box_iou(boxes1, boxes2):
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = torch.clamp(rb - lt, min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    return inter / (area1[:, None] + area2 - inter)


def to_cxcywh(b):
    return torch.stack(
        [(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2,
         b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]], dim=-1,
    )  # fmt: skip


def encode(gt, anchors):
    g, a = to_cxcywh(gt), to_cxcywh(anchors)
    return torch.cat([(g[:, :2] - a[:, :2]) / a[:, 2:], torch.log(g[:, 2:] / a[:, 2:])], dim=1)


def decode(deltas, anchors):
    a = to_cxcywh(anchors)
    ctr = deltas[:, :2] * a[:, 2:] + a[:, :2]
    wh = torch.exp(deltas[:, 2:].clamp(max=math.log(1000.0 / 16))) * a[:, 2:]
    return torch.cat([ctr - wh / 2, ctr + wh / 2], dim=1)


def match(anchors, gt_boxes, fg_iou=0.5, bg_iou=0.4):
    """Per anchor: the index of its gt box, -1 for background, -2 for ignored."""
    iou = box_iou(gt_boxes, anchors)
    vals, idx = torch.max(iou, dim=0)
    idx = torch.where(vals >= fg_iou, idx, torch.full_like(idx, -2))
    idx = torch.where(vals < bg_iou, torch.full_like(idx, -1), idx)
    # every gt keeps its best anchor even below the threshold
    best_anchor = iou.argmax(dim=1)
    idx[best_anchor] = torch.arange(len(gt_boxes))
    return idx


def sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = torch.where(targets == 1, p, 1 - p)
    alpha_t = torch.where(targets == 1, torch.full_like(p, alpha), torch.full_like(p, 1 - alpha))
    return alpha_t * (1 - p_t).pow(gamma) * ce


class Backbone(nn.Module):
    def __init__(self, c=16, fpn=24):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
        )
        self.c2 = nn.Sequential(
            nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
        )
        self.c3 = nn.Sequential(
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * c),
            nn.ReLU(inplace=True),
        )
        self.lateral2 = nn.Conv2d(c, fpn, 1)
        self.lateral3 = nn.Conv2d(2 * c, fpn, 1)
        self.out2 = nn.Conv2d(fpn, fpn, 3, padding=1)
        self.out3 = nn.Conv2d(fpn, fpn, 3, padding=1)

    def forward(self, x):
        c2 = self.c2(self.stem(x))  # stride 4
        c3 = self.c3(c2)  # stride 8
        p3 = self.lateral3(c3)
        p2 = self.lateral2(c2) + F.interpolate(p3, size=c2.shape[-2:], mode="nearest")
        return [self.out2(p2), self.out3(p3)]


class Subnet(nn.Module):
    def __init__(self, channels, out_per_anchor, num_anchors, prior=None, depth=2):
        super().__init__()
        layers = []
        for _ in range(depth):
            layers.append(nn.Conv2d(channels, channels, 3, padding=1, bias=False))
            layers.append(nn.GroupNorm(4, channels))
            layers.append(nn.ReLU())
        self.tower = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, num_anchors * out_per_anchor, 3, padding=1)
        self.k = out_per_anchor
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
        if prior is not None:
            nn.init.constant_(self.head.bias, -math.log((1 - prior) / prior))

    def forward(self, features):
        outs = []
        for f in features:
            o = self.head(self.tower(f))
            n, _, h, w = o.shape
            o = o.view(n, -1, self.k, h, w).permute(0, 3, 4, 1, 2)  # N, H, W, A, K
            outs.append(o.reshape(n, -1, self.k))
        return torch.cat(outs, dim=1)


class RetinaNet(nn.Module):
    def __init__(self, fpn=24):
        super().__init__()
        a = len(ASPECTS)
        self.backbone = Backbone(fpn=fpn)
        self.cls_subnet = Subnet(fpn, NUM_CLASSES, a, prior=0.01)
        self.box_subnet = Subnet(fpn, 4, a)

    def forward(self, x):
        feats = self.backbone(x)
        return self.cls_subnet(feats), self.box_subnet(feats)


def make_scenes(rng, n):
    images = np.zeros((n, 3, IMG, IMG), dtype=np.float32)
    boxes, labels = [], []
    for i in range(n):
        k = rng.integers(1, 3)
        bs, ls = [], []
        for _ in range(k):
            w, h = rng.uniform(6, 16, 2)
            x0, y0 = rng.uniform(0, IMG - w), rng.uniform(0, IMG - h)
            c = rng.integers(0, NUM_CLASSES)
            xi0, yi0, xi1, yi1 = int(x0), int(y0), int(np.ceil(x0 + w)), int(np.ceil(y0 + h))
            images[i, c, yi0:yi1, xi0:xi1] += 1.0
            images[i, 2, yi0:yi1, xi0:xi1] += 0.5
            bs.append([xi0, yi0, xi1, yi1])
            ls.append(c)
        boxes.append(torch.tensor(bs, dtype=torch.float32))
        labels.append(torch.tensor(ls))
    images += 0.1 * rng.standard_normal(images.shape).astype(np.float32)
    return torch.from_numpy(images), boxes, labels


def detection_loss(cls_out, box_out, anchors, boxes, labels):
    cls_losses, box_losses = [], []
    for i in range(cls_out.shape[0]):
        matched = match(anchors, boxes[i])
        fg = matched >= 0
        valid = matched >= -1
        num_fg = fg.sum().clamp(min=1).float()
        target = torch.zeros_like(cls_out[i])
        target[fg] = F.one_hot(labels[i][matched[fg]], NUM_CLASSES).float()
        cls_losses.append(sigmoid_focal_loss(cls_out[i][valid], target[valid]).sum() / num_fg)
        reg_target = encode(boxes[i][matched[fg]], anchors[fg])
        box_losses.append(
            F.huber_loss(box_out[i][fg], reg_target, delta=0.11, reduction="sum") / num_fg
        )
    return torch.stack(cls_losses).mean(), torch.stack(box_losses).mean()


def evaluate(model, anchors, images, boxes, labels):
    model.eval()
    with torch.no_grad():
        cls_out, box_out = model(images)
        cls_loss, box_loss = detection_loss(cls_out, box_out, anchors, boxes, labels)
        ious = []
        for i in range(len(images)):
            scores = cls_out[i].sigmoid()
            best = scores.max(dim=1).values.argmax()
            pred = decode(box_out[i][best : best + 1], anchors[best : best + 1])
            ious.append(box_iou(pred, boxes[i]).max())
        mean_iou = torch.stack(ious).mean().item()
    model.train()
    return cls_loss.item(), box_loss.item(), mean_iou


def main():
    parser = argparse.ArgumentParser(description="RetinaNet on synthetic rectangles")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--clip", type=float, default=1.0)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images, boxes, labels = make_scenes(rng, 64)
    test_images, test_boxes, test_labels = make_scenes(rng, 16)
    anchors = all_anchors()
    model = RetinaNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)

    for epoch in range(args.epochs):
        totals = np.zeros(3)
        steps = 0
        for s in range(0, len(images), args.batch_size):
            x = images[s : s + args.batch_size]
            b, lbl = boxes[s : s + args.batch_size], labels[s : s + args.batch_size]
            cls_out, box_out = model(x)
            cls_loss, box_loss = detection_loss(cls_out, box_out, anchors, b, lbl)
            loss = cls_loss + box_loss
            optimizer.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            totals += [cls_loss.item(), box_loss.item(), grad_norm.item()]
            steps += 1
        t_cls, t_box, t_iou = evaluate(model, anchors, test_images, test_boxes, test_labels)
        print(
            f"epoch {epoch} cls loss {totals[0] / steps:.6f} box loss {totals[1] / steps:.6f} "
            f"grad norm {totals[2] / steps:.4f} | test cls loss {t_cls:.6f} "
            f"box loss {t_box:.6f} iou {t_iou:.4f}"
        )


if __name__ == "__main__":
    main()
