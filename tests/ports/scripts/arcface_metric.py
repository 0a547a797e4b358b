"""Face-recognition style metric learning with additive angular margins (ArcFace, Deng et al.
2019; CosFace, Wang et al. 2018; the combined margin of InsightFace): a small ResNet embedder
whose head is Dropout -> Linear -> nn.BatchNorm1d (the "BN-neck"), class centres as a
Parameter (xavier_uniform_) compared with F.normalize'd embeddings through F.linear, the target
angle from torch.acos of the clamped cosine, margins put in with a one-hot scatter_ and
torch.where (the easy-margin and the th/mm fallbacks), a scaled cross entropy; SGD with
nesterov and parameter groups without weight decay for norms and biases, MultiStepLR, and
open-set retrieval of unseen classes by torch.cdist with recall@k from torch.topk."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Embedder(nn.Module):
    def __init__(self, embedding_size=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.layer1 = BasicBlock(8, 8)
        self.layer2 = BasicBlock(8, 16, stride=2)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(16 * 6 * 6, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = self.layer2(self.layer1(x))
        x = self.dropout(torch.flatten(x, 1))
        return self.features(self.fc(x))


class MarginHead(nn.Module):
    """Logits ``s * (cos(m1 * theta + m2) - m3)`` for the target class, ``s * cos(theta)``
    for the others: ArcFace is (1, m, 0), CosFace (1, 0, m)."""

    def __init__(
        self, embedding_size, n_classes, s=16.0, m1=1.0, m2=0.3, m3=0.0, easy_margin=False
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, embedding_size))
        nn.init.xavier_uniform_(self.weight)
        self.s, self.m1, self.m2, self.m3 = s, m1, m2, m3
        self.easy_margin = easy_margin
        # beyond theta = pi - m2 the margin would make cos(theta + m2) increase again
        self.th = math.cos(math.pi - m2)
        self.mm = math.sin(math.pi - m2) * m2

    def forward(self, embeddings, labels):
        cosine = F.linear(F.normalize(embeddings), F.normalize(self.weight))
        theta = torch.acos(cosine.clamp(-1.0 + 1e-7, 1.0 - 1e-7))
        target = torch.cos(self.m1 * theta + self.m2) - self.m3
        if self.easy_margin:
            target = torch.where(cosine > 0, target, cosine)
        elif self.m2 > 0:
            target = torch.where(cosine > self.th, target, cosine - self.mm)
        one_hot = torch.zeros_like(cosine).scatter_(1, labels.view(-1, 1), 1.0)
        logits = one_hot * target + (1.0 - one_hot) * cosine
        return logits * self.s, cosine


def make_faces(rng, n_classes, per_class, size=12, noise=0.5):
    """Each class: a random smooth pattern; samples are shifted, scaled and noisy copies."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    images, labels = [], []
    for c in range(n_classes):
        fx, fy, ph = rng.uniform(0.5, 2.5, 3)
        cx, cy = rng.uniform(0.25, 0.75, 2)
        proto = np.cos(2 * np.pi * (fx * xx - fy * yy) + ph * 2)
        proto += 1.5 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.04)
        for _ in range(per_class):
            img = np.roll(proto, rng.integers(-1, 2, 2), axis=(0, 1)) * rng.uniform(0.8, 1.2)
            images.append(img + noise * rng.standard_normal(img.shape))
            labels.append(c)
    order = rng.permutation(len(labels))
    images = torch.from_numpy(np.stack(images)[order, None].astype(np.float32))
    return images, torch.tensor(labels)[order]


@torch.no_grad()
def retrieval(model, images, labels, ks=(1, 3)):
    """Leave-one-out retrieval on unit embeddings: recall@k and the mean positive distance."""
    model.eval()
    emb = F.normalize(model(images))
    dist = torch.cdist(emb, emb)
    dist.fill_diagonal_(float("inf"))
    _, nearest = torch.topk(dist, max(ks), dim=1, largest=False)
    hits = labels[nearest] == labels.unsqueeze(1)
    recalls = [hits[:, :k].any(dim=1).float().mean().item() for k in ks]
    same = (labels.unsqueeze(0) == labels.unsqueeze(1)) & torch.isfinite(dist)
    return recalls, dist[same].mean().item()


def main():
    parser = argparse.ArgumentParser(description="ArcFace / CosFace metric learning")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--margin", choices=["arcface", "cosface", "combined"], default="arcface")
    parser.add_argument("--easy-margin", action="store_true")
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train_x, train_y = make_faces(rng, 8, 12)
    test_x, test_y = make_faces(rng, 4, 6)  # identities never seen in training
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(train_x, train_y), batch_size=args.batch_size, shuffle=True
    )
    margins = {"arcface": (1.0, 0.3, 0.0), "cosface": (1.0, 0.0, 0.2), "combined": (1.0, 0.2, 0.1)}
    m1, m2, m3 = margins[args.margin]

    model = Embedder()
    head = MarginHead(16, 8, m1=m1, m2=m2, m3=m3, easy_margin=args.easy_margin)
    decay, no_decay = [], []
    for module in (model, head):
        for p in module.parameters():
            (no_decay if p.ndim == 1 else decay).append(p)
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        momentum=0.9,
        nesterov=True,
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 3], gamma=0.3)
    criterion = nn.CrossEntropyLoss()

    for epoch in range(args.epochs):
        model.train()
        total, correct, n = 0.0, 0, 0
        for images, labels in loader:
            optimizer.zero_grad()
            logits, cosine = head(model(images), labels)
            loss = criterion(logits, labels)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(labels)
            correct += (cosine.argmax(dim=1) == labels).sum().item()
            n += len(labels)
        scheduler.step()
        (r1, r3), pos_dist = retrieval(model, test_x, test_y)
        with torch.no_grad():
            centres = F.normalize(head.weight)
            spread = torch.acos((centres @ centres.t()).fill_diagonal_(-1).max(dim=1).values)
        print(
            f"epoch {epoch} train loss {total / n:.6f} acc {correct / n:.4f} "
            f"recall@1 {r1:.4f} recall@3 {r3:.4f} positive-distance loss {pos_dist:.6f} "
            f"min centre angle {spread.min().item():.4f}"
        )


if __name__ == "__main__":
    main()
