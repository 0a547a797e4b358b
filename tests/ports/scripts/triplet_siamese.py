"""Metric learning with a siamese embedding network (after Hermans et al., "In Defense of the
Triplet Loss", and the common PyTorch triplet-network examples): P classes x K samples per batch,
L2-normalized embeddings, online batch-hard mining on the torch.cdist distance matrix with
same-class and diagonal masks, nn.TripletMarginLoss; then a fine-tuning phase with
nn.TripletMarginWithDistanceLoss on a cosine distance with semi-hard negatives; evaluated by a
batch-all triplet loss and recall@1 retrieval."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class EmbeddingNet(nn.Module):
    def __init__(self, embedding_dim=16):
        super().__init__()
        self.convnet = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.PReLU(),
            nn.MaxPool2d(2, stride=2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.PReLU(),
            nn.MaxPool2d(2, stride=2),
        )
        self.fc = nn.Sequential(nn.Linear(16 * 3 * 3, 32), nn.PReLU(), nn.Linear(32, embedding_dim))

    def forward(self, x):
        output = self.convnet(x)
        output = output.view(output.size()[0], -1)
        output = self.fc(output)
        return F.normalize(output, p=2, dim=1)

    def get_embedding(self, x):
        return self.forward(x)


def make_prototypes(rng, n_classes, size=12):
    """Smooth random patterns, one per class."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    protos = []
    for _ in range(n_classes):
        fx, fy, ph = rng.uniform(1, 3), rng.uniform(1, 3), rng.uniform(0, 2 * np.pi)
        cx, cy = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05)
        protos.append(np.sin(2 * np.pi * (fx * xx + fy * yy) + ph) + 2 * blob)
    return np.stack(protos)


def sample_images(rng, protos, labels, noise=0.6):
    imgs = []
    for c in labels:
        img = np.roll(protos[c], rng.integers(-1, 2, 2), axis=(0, 1))
        imgs.append(img + noise * rng.standard_normal(img.shape))
    return torch.from_numpy(np.stack(imgs)[:, None].astype(np.float32))


def pk_batches(rng, protos, n_batches, p, k):
    """Each batch holds k samples of each of p randomly chosen classes."""
    batches = []
    for _ in range(n_batches):
        classes = rng.choice(len(protos), p, replace=False)
        labels = np.repeat(classes, k)
        batches.append((sample_images(rng, protos, labels), torch.from_numpy(labels)))
    return batches


def pairwise_masks(labels):
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool)
    return same & ~eye, ~same  # positives (not self), negatives


def batch_hard_triplets(embeddings, labels):
    """Hardest positive (furthest same-class) and hardest negative (closest other-class)."""
    with torch.no_grad():
        dist = torch.cdist(embeddings, embeddings)
        pos_mask, neg_mask = pairwise_masks(labels)
        hardest_pos = (dist * pos_mask).argmax(dim=1)
        hardest_neg = dist.masked_fill(~neg_mask, float("inf")).argmin(dim=1)
    return embeddings[hardest_pos], embeddings[hardest_neg]


def semi_hard_negatives(embeddings, positives, labels, margin):
    """Negatives further than the positive but inside the margin; else the hardest one."""
    with torch.no_grad():
        dist = 1.0 - embeddings @ embeddings.t()  # cosine distance of unit vectors
        d_ap = 1.0 - F.cosine_similarity(embeddings, positives).unsqueeze(1)
        _, neg_mask = pairwise_masks(labels)
        semi = neg_mask & (dist > d_ap) & (dist < d_ap + margin)
        inf = torch.full_like(dist, float("inf"))
        semi_idx = torch.where(semi, dist, inf).argmin(dim=1)
        hard_idx = torch.where(neg_mask, dist, inf).argmin(dim=1)
        idx = torch.where(semi.any(dim=1), semi_idx, hard_idx)
    return embeddings[idx], semi.any(dim=1).float().mean()


def batch_all_loss(embeddings, labels, margin):
    """Mean over all valid (anchor, positive, negative) triplets with a positive loss."""
    dist = torch.cdist(embeddings, embeddings)
    pos_mask, neg_mask = pairwise_masks(labels)
    loss = dist.unsqueeze(2) - dist.unsqueeze(1) + margin  # [a, p, n]
    valid = pos_mask.unsqueeze(2) & neg_mask.unsqueeze(1)
    loss = F.relu(loss) * valid
    n_pos = (loss > 1e-16).sum()
    return loss.sum() / n_pos.clamp(min=1), n_pos.float() / valid.sum()


@torch.no_grad()
def recall_at_1(model, images, labels):
    emb = model.get_embedding(images)
    dist = torch.cdist(emb, emb)
    dist.fill_diagonal_(float("inf"))
    nearest = dist.argmin(dim=1)
    return (labels[nearest] == labels).float().mean().item()


def main():
    parser = argparse.ArgumentParser(description="triplet siamese network")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--classes-per-batch", type=int, default=4)
    parser.add_argument("--samples-per-class", type=int, default=6)
    parser.add_argument("--margin", type=float, default=0.3)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    protos = make_prototypes(rng, 8)
    train = pk_batches(rng, protos, args.batches, args.classes_per_batch, args.samples_per_class)
    test_labels = np.repeat(np.arange(8), 5)
    test_images = sample_images(rng, protos, test_labels)
    test_labels = torch.from_numpy(test_labels)

    model = EmbeddingNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2, gamma=0.5)
    triplet_loss = nn.TripletMarginLoss(margin=args.margin, p=2)

    def evaluate(tag):
        model.eval()
        with torch.no_grad():
            val_loss, frac = batch_all_loss(model(test_images), test_labels, args.margin)
        r1 = recall_at_1(model, test_images, test_labels)
        print(
            f"{tag} val batch-all loss: {val_loss.item():.6f} "
            f"active triplets {frac.item():.4f} recall@1 {r1:.4f}"
        )

    evaluate("init")
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for images, labels in train:
            optimizer.zero_grad()
            anchors = model(images)
            positives, negatives = batch_hard_triplets(anchors, labels)
            loss = triplet_loss(anchors, positives, negatives)
            loss.backward()
            optimizer.step()
            total += loss.item()
        scheduler.step()
        print(f"Epoch: {epoch} batch-hard train loss: {total / len(train):.6f}")
        evaluate(f"Epoch: {epoch}")

    # fine-tune with a cosine distance and semi-hard negatives; swap uses the harder of
    # (anchor, negative) and (positive, negative)
    cosine_loss = nn.TripletMarginWithDistanceLoss(
        distance_function=lambda x, y: 1.0 - F.cosine_similarity(x, y),
        margin=0.2,
        swap=True,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(1, args.finetune_epochs + 1):
        model.train()
        total, semi_frac = 0.0, 0.0
        for images, labels in train:
            optimizer.zero_grad()
            anchors = model(images)
            positives, _ = batch_hard_triplets(anchors, labels)
            negatives, frac = semi_hard_negatives(anchors, positives, labels, 0.2)
            loss = cosine_loss(anchors, positives, negatives)
            loss.backward()
            optimizer.step()
            total += loss.item()
            semi_frac += frac.item()
        print(
            f"Finetune: {epoch} cosine train loss: {total / len(train):.6f} "
            f"semi-hard {semi_frac / len(train):.3f}"
        )
        evaluate(f"Finetune: {epoch}")


if __name__ == "__main__":
    main()
