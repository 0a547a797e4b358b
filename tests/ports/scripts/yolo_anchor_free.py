"""An anchor-free detector in the style of FCOS (Tian et al., 2019) and YOLOX's decoupled head,
on synthetic 32x32 images with one to three coloured boxes: a small strided CNN, a shared head
with class, box (distances to the four sides, through F.relu * stride) and centerness branches;
targets from point centers built with torch.meshgrid(indexing="ij") and torch.stack, center
sampling (a point must lie within radius * stride of a box center), ambiguity resolved by the
smallest box area (torch.where, masked_fill, min(dim=...)), gather; losses: a sigmoid focal loss
through F.binary_cross_entropy_with_logits and torch.sigmoid, a GIoU loss (or -log IoU with
--box-loss iou) written by hand (torch.min/torch.max/clamp), a centerness BCE; AdamW with OneCycleLR stepped per batch and
clip_grad_norm_. Evaluation scores points by sqrt(sigmoid(cls) * sigmoid(ctr)), keeps the
torch.topk, and runs a hand-written NMS loop (torch.argsort, boolean masks, nonzero)."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 3
IMG = 32
INF = 1e8


class Backbone(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.SiLU(),
            nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width * 2),
            nn.SiLU(),
            nn.Conv2d(width * 2, width * 2, 3, padding=1, bias=False),
            nn.BatchNorm2d(width * 2),
            nn.SiLU(),
        )
        self.out_channels = width * 2
        self.stride = 4

    def forward(self, x):
        return self.stem(x)


class Scale(nn.Module):
    """A learnt scalar per level, as in FCOS."""

    def __init__(self, init=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(init))

    def forward(self, x):
        return x * self.scale


class DecoupledHead(nn.Module):
    def __init__(self, ch, num_classes, prior=0.01):
        super().__init__()
        self.cls_tower = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1), nn.GroupNorm(4, ch), nn.ReLU()
        )
        self.reg_tower = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1), nn.GroupNorm(4, ch), nn.ReLU()
        )
        self.cls_logits = nn.Conv2d(ch, num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(ch, 4, 3, padding=1)
        self.centerness = nn.Conv2d(ch, 1, 3, padding=1)
        self.scale = Scale(1.0)
        nn.init.constant_(self.cls_logits.bias, -float(np.log((1 - prior) / prior)))

    def forward(self, feat, stride):
        c = self.cls_tower(feat)
        r = self.reg_tower(feat)
        ltrb = F.relu(self.scale(self.bbox_pred(r))) * stride
        return self.cls_logits(c), ltrb, self.centerness(r)


class FCOS(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        self.head = DecoupledHead(self.backbone.out_channels, NUM_CLASSES)

    def forward(self, x):
        feat = self.backbone(x)
        cls, ltrb, ctr = self.head(feat, self.backbone.stride)
        b = x.shape[0]
        # (B, C, H, W) -> (B, H*W, C), points in row-major order
        flat = lambda t: t.permute(0, 2, 3, 1).reshape(b, -1, t.shape[1])  # noqa: E731
        return flat(cls), flat(ltrb), flat(ctr).squeeze(-1), feat.shape[-2:]


def make_points(h, w, stride):
    ys = torch.arange(h, dtype=torch.float32) * stride + stride // 2
    xs = torch.arange(w, dtype=torch.float32) * stride + stride // 2
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1)  # (P, 2) as (x, y)


def assign_targets(points, boxes, labels, stride, radius=1.5):
    """FCOS targets for one image: class per point (NUM_CLASSES = background), ltrb distances."""
    if boxes.numel() == 0:
        p = points.shape[0]
        return torch.full((p,), NUM_CLASSES, dtype=torch.long), torch.zeros(p, 4)
    x, y = points[:, 0:1], points[:, 1:2]  # (P, 1)
    l = x - boxes[:, 0]  # noqa: E741
    t = y - boxes[:, 1]
    r = boxes[:, 2] - x
    bt = boxes[:, 3] - y
    ltrb = torch.stack([l, t, r, bt], dim=-1)  # (P, G, 4)
    inside_box = ltrb.min(dim=-1).values > 0
    # center sampling: only points near a box center are positives
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    rad = radius * stride
    x0 = torch.max(cx - rad, boxes[:, 0])
    y0 = torch.max(cy - rad, boxes[:, 1])
    x1 = torch.min(cx + rad, boxes[:, 2])
    y1 = torch.min(cy + rad, boxes[:, 3])
    in_center = (x > x0) & (x < x1) & (y > y0) & (y < y1) if radius > 0 else inside_box
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area = area[None].repeat(points.shape[0], 1)
    area = area.masked_fill(~(inside_box & in_center), INF)
    min_area, idx = area.min(dim=1)
    cls_t = labels[idx].clone()
    cls_t[min_area == INF] = NUM_CLASSES
    reg_t = torch.gather(ltrb, 1, idx[:, None, None].expand(-1, 1, 4)).squeeze(1)
    return cls_t, reg_t


def centerness_target(reg):
    lr = reg[:, [0, 2]]
    tb = reg[:, [1, 3]]
    ratio = (lr.min(dim=-1).values / lr.max(dim=-1).values) * (
        tb.min(dim=-1).values / tb.max(dim=-1).values
    )
    return torch.sqrt(ratio.clamp(min=0))


def iou_loss(pred, target, kind="giou", eps=1e-7):
    """IoU (-log IoU, as UnitBox) or GIoU loss for ltrb distances from the same point."""
    pl, pt, pr, pb = pred.unbind(-1)
    tl, tt, tr, tb = target.unbind(-1)
    pred_area = (pl + pr) * (pt + pb)
    target_area = (tl + tr) * (tt + tb)
    w_inter = torch.min(pl, tl) + torch.min(pr, tr)
    h_inter = torch.min(pb, tb) + torch.min(pt, tt)
    inter = w_inter.clamp(min=0) * h_inter.clamp(min=0)
    union = pred_area + target_area - inter
    iou = inter / (union + eps)
    if kind == "iou":
        return -torch.log(iou.clamp(min=eps))
    w_enc = torch.max(pl, tl) + torch.max(pr, tr)
    h_enc = torch.max(pb, tb) + torch.max(pt, tt)
    enclose = w_enc * h_enc + eps
    giou = iou - (enclose - union) / enclose
    return 1 - giou


def sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * loss).sum()


def compute_loss(outputs, boxes, labels, stride, box_loss="giou", radius=1.5):
    cls, ltrb, ctr, (h, w) = outputs
    points = make_points(h, w, stride)
    targets = [assign_targets(points, b, lab, stride, radius) for b, lab in zip(boxes, labels)]
    cls_t = torch.stack([t[0] for t in targets])  # (B, P)
    reg_t = torch.stack([t[1] for t in targets])  # (B, P, 4)
    pos = cls_t < NUM_CLASSES
    num_pos = max(pos.sum().item(), 1.0)
    onehot = F.one_hot(cls_t, NUM_CLASSES + 1)[..., :NUM_CLASSES].to(cls.dtype)
    loss_cls = sigmoid_focal_loss(cls, onehot) / num_pos
    ctr_t = centerness_target(reg_t[pos])
    loss_box = (iou_loss(ltrb[pos], reg_t[pos], box_loss) * ctr_t).sum() / ctr_t.sum().clamp(
        min=1e-6
    )
    loss_ctr = F.binary_cross_entropy_with_logits(ctr[pos], ctr_t, reduction="sum") / num_pos
    return loss_cls, loss_box, loss_ctr


def box_iou(a, b):
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None] - inter)


def nms(boxes, scores, iou_threshold):
    order = torch.argsort(scores, descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        ious = box_iou(boxes[i].unsqueeze(0), boxes[order[1:]]).squeeze(0)
        order = order[1:][ious <= iou_threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def detect(model, images, k=20, score_thresh=0.05, iou_thresh=0.5):
    cls, ltrb, ctr, (h, w) = model(images)
    points = make_points(h, w, model.backbone.stride)
    scores_all = torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(ctr)[..., None])
    results = []
    for b in range(images.shape[0]):
        scores, flat_idx = scores_all[b].flatten().topk(k)
        point_idx = torch.div(flat_idx, NUM_CLASSES, rounding_mode="floor")
        classes = flat_idx % NUM_CLASSES
        keep = (scores > score_thresh).nonzero(as_tuple=True)[0]
        scores, point_idx, classes = scores[keep], point_idx[keep], classes[keep]
        p, d = points[point_idx], ltrb[b, point_idx]
        boxes = torch.cat([p - d[:, :2], p + d[:, 2:]], dim=1).clamp(0, IMG)
        # class-aware NMS through a coordinate offset per class
        kept = nms(boxes + classes[:, None].float() * 2 * IMG, scores, iou_thresh)
        results.append((boxes[kept], scores[kept], classes[kept]))
    return results


def make_data(rng, n):
    images = np.zeros((n, 3, IMG, IMG), np.float32)
    boxes, labels = [], []
    for i in range(n):
        images[i] += rng.normal(0, 0.05, (3, IMG, IMG)).astype(np.float32)
        bs, ls = [], []
        for _ in range(rng.integers(1, 4)):
            w, h = rng.integers(6, 16, 2)
            x0, y0 = rng.integers(0, IMG - w), rng.integers(0, IMG - h)
            c = int(rng.integers(0, NUM_CLASSES))
            images[i, c, y0 : y0 + h, x0 : x0 + w] += 1.0
            bs.append([x0, y0, x0 + w, y0 + h])
            ls.append(c)
        boxes.append(torch.tensor(bs, dtype=torch.float32))
        labels.append(torch.tensor(ls, dtype=torch.long))
    return torch.from_numpy(images), boxes, labels


def main():
    parser = argparse.ArgumentParser(description="anchor-free detector")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--box-loss", choices=["giou", "iou"], default="giou")
    parser.add_argument("--radius", type=float, default=1.5, help="center sampling; 0: off")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images, boxes, labels = make_data(rng, 48)
    test_images, test_boxes, test_labels = make_data(rng, 8)
    model = FCOS()
    decay, no_decay = [], []
    for _name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
    )
    steps_per_epoch = (len(images) + args.batch_size - 1) // args.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=args.lr,
        epochs=args.epochs,
        steps_per_epoch=steps_per_epoch,
        pct_start=0.3,
        anneal_strategy="cos",
    )
    stride = model.backbone.stride
    for epoch in range(args.epochs):
        model.train()
        sums = np.zeros(3)
        for i in range(0, len(images), args.batch_size):
            sl = slice(i, i + args.batch_size)
            loss_cls, loss_box, loss_ctr = compute_loss(
                model(images[sl]), boxes[sl], labels[sl], stride, args.box_loss, args.radius
            )
            loss = loss_cls + loss_box + loss_ctr
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
            optimizer.step()
            scheduler.step()
            sums += [loss_cls.item(), loss_box.item(), loss_ctr.item()]
        model.eval()
        with torch.no_grad():
            t_cls, t_box, t_ctr = compute_loss(
                model(test_images), test_boxes, test_labels, stride, args.box_loss, args.radius
            )
        dets = detect(model, test_images)
        best_iou, hits = [], 0
        for (pb, _ps, pc), gb, gl in zip(dets, test_boxes, test_labels):
            if len(pb):
                ious = box_iou(gb, pb)
                ious = torch.where(gl[:, None] == pc[None], ious, torch.zeros_like(ious))
                best_iou.append(ious.max(dim=1).values)
                hits += int((ious.max(dim=1).values > 0.5).sum())
        mean_iou = torch.cat(best_iou).mean().item() if best_iou else 0.0
        n = steps_per_epoch
        print(
            f"epoch {epoch} cls loss {sums[0] / n:.6f} box loss {sums[1] / n:.6f} "
            f"ctr loss {sums[2] / n:.6f} test loss {(t_cls + t_box + t_ctr).item():.6f} "
            f"detections {sum(len(d[0]) for d in dets)} hits {hits} "
            f"iou loss {1 - mean_iou:.6f} lr {scheduler.get_last_lr()[0]:.6f}"
        )


if __name__ == "__main__":
    main()
