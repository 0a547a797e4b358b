"""DETR-style set prediction (Carion et al., 2020) on synthetic images of coloured boxes: a small
conv backbone, a 2-d sine positional encoding built from torch.cumsum over a padding mask, an
nn.Transformer (batch_first) whose decoder layers are run one by one (transformer.encoder,
transformer.decoder.layers and .norm) to get auxiliary outputs from every layer, learnt object
queries from an nn.Embedding, class and sigmoid box heads; an optimal bipartite matching written
in torch ops under torch.no_grad (class, torch.cdist(p=1) box and generalized-IoU costs, every
assignment enumerated and the cheapest taken by argmin); cross-entropy with a down-weighted
no-object class, L1 and GIoU box losses, AdamW with a lower backbone learning rate in its own
parameter group, clip_grad_norm_ and StepLR."""

import argparse
import itertools
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

N_CLASSES, SIZE = 3, 24
COLOURS = np.array([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.3, 0.3, 1.0]], np.float32)


def box_cxcywh_to_xyxy(b):
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_area(b):
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def generalized_box_iou(a, b):
    """Pairwise GIoU of xyxy boxes a (N, 4) and b (M, 4): IoU minus the fraction of the
    enclosing box that the union leaves empty."""
    area_a, area_b = box_area(a), box_area(b)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    iou = inter / union
    lt_c = torch.min(a[:, None, :2], b[None, :, :2])
    rb_c = torch.max(a[:, None, 2:], b[None, :, 2:])
    enclosing = (rb_c - lt_c).clamp(min=0).prod(dim=-1)
    return iou - (enclosing - union) / enclosing


def make_scenes(rng, n):
    """Images with 1-3 filled rectangles of random classes; targets hold labels and
    normalised (cx, cy, w, h) boxes."""
    images = 0.1 * rng.standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)
    targets = []
    for i in range(n):
        k = rng.integers(1, 4)
        labels, boxes = [], []
        for _ in range(k):
            w, h = rng.integers(5, 11, size=2)
            x0, y0 = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
            c = rng.integers(0, N_CLASSES)
            images[i, :, y0 : y0 + h, x0 : x0 + w] = COLOURS[c][:, None, None]
            labels.append(c)
            boxes.append([(x0 + w / 2) / SIZE, (y0 + h / 2) / SIZE, w / SIZE, h / SIZE])
        targets.append(
            {"labels": torch.tensor(labels), "boxes": torch.tensor(boxes, dtype=torch.float32)}
        )
    return torch.from_numpy(images), targets


class PositionEmbeddingSine(nn.Module):
    """Normalised row/column positions (cumsum over the valid pixels) through sin/cos."""

    def __init__(self, num_pos_feats, temperature=10000.0):
        super().__init__()
        self.num_pos_feats, self.temperature = num_pos_feats, temperature

    def forward(self, mask):
        not_mask = (~mask).float()
        y_embed = not_mask.cumsum(1)
        x_embed = not_mask.cumsum(2)
        eps, scale = 1e-6, 2 * math.pi
        y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
        x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32)
        dim_t = self.temperature ** (
            2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_pos_feats
        )
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


class MLP(nn.Module):
    def __init__(self, dim, hidden, out, layers):
        super().__init__()
        dims = [dim] + [hidden] * (layers - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [out]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < len(self.layers) - 1 else layer(x)
        return x


class DETR(nn.Module):
    def __init__(self, d_model=32, num_queries=6, nhead=4):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
        )
        self.input_proj = nn.Conv2d(32, d_model, kernel_size=1)
        self.position = PositionEmbeddingSine(d_model // 2)
        self.transformer = nn.Transformer(
            d_model=d_model,
            nhead=nhead,
            num_encoder_layers=1,
            num_decoder_layers=2,
            dim_feedforward=64,
            dropout=0.0,
            batch_first=True,
        )
        self.query_embed = nn.Embedding(num_queries, d_model)
        self.class_embed = nn.Linear(d_model, N_CLASSES + 1)
        self.bbox_embed = MLP(d_model, d_model, 4, 3)

    def forward(self, images):
        features = self.input_proj(self.backbone(images))  # (B, C, H, W)
        batch, channels, h, w = features.shape
        mask = torch.zeros(batch, h, w, dtype=torch.bool)
        pos = self.position(mask)
        src = (features + pos).flatten(2).transpose(1, 2)  # (B, HW, C)
        memory = self.transformer.encoder(src)
        tgt = self.query_embed.weight.unsqueeze(0).repeat(batch, 1, 1)
        outputs = []
        for layer in self.transformer.decoder.layers:
            tgt = layer(tgt, memory)
            hs = self.transformer.decoder.norm(tgt)
            outputs.append({"logits": self.class_embed(hs), "boxes": self.bbox_embed(hs).sigmoid()})
        return outputs[-1], outputs[:-1]


class HungarianMatcher(nn.Module):
    """The assignment of queries to targets with the least total cost, by enumeration (fine
    for a handful of queries and objects)."""

    def __init__(self, cost_class=1.0, cost_bbox=5.0, cost_giou=2.0):
        super().__init__()
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou

    @torch.no_grad()
    def forward(self, outputs, targets):
        probs = outputs["logits"].softmax(-1)
        num_queries = probs.shape[1]
        indices = []
        for b, t in enumerate(targets):
            cost = (
                -self.cost_class * probs[b][:, t["labels"]]
                + self.cost_bbox * torch.cdist(outputs["boxes"][b], t["boxes"], p=1)
                - self.cost_giou
                * generalized_box_iou(
                    box_cxcywh_to_xyxy(outputs["boxes"][b]), box_cxcywh_to_xyxy(t["boxes"])
                )
            )  # (Q, n)
            n = len(t["labels"])
            perms = torch.tensor(list(itertools.permutations(range(num_queries), n)))
            totals = cost[perms, torch.arange(n)].sum(dim=1)
            best = perms[totals.argmin()]
            order = best.argsort()
            indices.append((best[order], torch.arange(n)[order]))
        return indices


class SetCriterion(nn.Module):
    def __init__(self, matcher, eos_coef=0.1, weights=(1.0, 5.0, 2.0)):
        super().__init__()
        self.matcher = matcher
        self.weights = weights
        empty_weight = torch.ones(N_CLASSES + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight)

    def single(self, outputs, targets):
        indices = self.matcher(outputs, targets)
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        src_idx = torch.cat([src for src, _ in indices])
        target_classes = torch.full(outputs["logits"].shape[:2], N_CLASSES, dtype=torch.long)
        target_classes[batch_idx, src_idx] = torch.cat(
            [t["labels"][j] for t, (_, j) in zip(targets, indices)]
        )
        loss_ce = F.cross_entropy(
            outputs["logits"].transpose(1, 2), target_classes, weight=self.empty_weight
        )
        num_boxes = max(float(sum(len(t["labels"]) for t in targets)), 1.0)
        src_boxes = outputs["boxes"][batch_idx, src_idx]
        target_boxes = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)])
        loss_bbox = F.l1_loss(src_boxes, target_boxes, reduction="none").sum() / num_boxes
        giou = torch.diag(
            generalized_box_iou(box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(target_boxes))
        )
        loss_giou = (1 - giou).sum() / num_boxes
        w_ce, w_bbox, w_giou = self.weights
        total = w_ce * loss_ce + w_bbox * loss_bbox + w_giou * loss_giou
        return total, {"ce": loss_ce, "bbox": loss_bbox, "giou": loss_giou}

    def forward(self, outputs, aux_outputs, targets):
        total, parts = self.single(outputs, targets)
        for aux in aux_outputs:
            total = total + self.single(aux, targets)[0]
        return total, parts


def main():
    parser = argparse.ArgumentParser(description="DETR with an enumerated Hungarian matcher")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--lr-backbone", type=float, default=2e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train_images, train_targets = make_scenes(rng, 48)
    val_images, val_targets = make_scenes(rng, 16)

    model = DETR()
    criterion = SetCriterion(HungarianMatcher())
    param_dicts = [
        {"params": [p for n, p in model.named_parameters() if not n.startswith("backbone")]},
        {
            "params": [p for n, p in model.named_parameters() if n.startswith("backbone")],
            "lr": args.lr_backbone,
        },
    ]
    optimizer = torch.optim.AdamW(param_dicts, lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)

    for epoch in range(args.epochs):
        model.train()
        total, n_batches = 0.0, 0
        for i in range(0, len(train_images), args.batch_size):
            images = train_images[i : i + args.batch_size]
            targets = train_targets[i : i + args.batch_size]
            outputs, aux = model(images)
            loss, _ = criterion(outputs, aux, targets)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
            optimizer.step()
            total += loss.item()
            n_batches += 1
        scheduler.step()

        model.eval()
        with torch.no_grad():
            outputs, aux = model(val_images)
            val_loss, parts = criterion(outputs, aux, val_targets)
            # the share of targets whose matched query predicts the right class
            indices = criterion.matcher(outputs, val_targets)
            hits = sum(
                (outputs["logits"][b, src].argmax(-1) == t["labels"][tgt]).sum().item()
                for b, ((src, tgt), t) in enumerate(zip(indices, val_targets))
            )
        n_targets = sum(len(t["labels"]) for t in val_targets)
        print(
            f"epoch {epoch} train loss {total / n_batches:.6f} val loss {val_loss.item():.6f} "
            f"ce loss {parts['ce'].item():.6f} bbox loss {parts['bbox'].item():.6f} "
            f"giou loss {parts['giou'].item():.6f} class acc {hits / n_targets:.3f}"
        )


if __name__ == "__main__":
    main()
