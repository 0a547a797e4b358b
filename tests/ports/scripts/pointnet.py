"""PointNet classification (after Qi et al., 2017) on synthetic point clouds: shared per-point
MLPs as 1x1 Conv1d with BatchNorm1d, input and feature T-nets regressing alignment matrices
(added to the identity), global max pooling, the orthogonality regulariser on the feature
transform, NLL loss on log-softmax, Adam with StepLR, train and eval modes."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class TNet(nn.Module):
    def __init__(self, k=3):
        super().__init__()
        self.k = k
        self.conv1 = nn.Conv1d(k, 16, 1, bias=False)
        self.conv2 = nn.Conv1d(16, 32, 1, bias=False)
        self.conv3 = nn.Conv1d(32, 64, 1, bias=False)
        self.fc1 = nn.Linear(64, 32, bias=False)
        self.fc2 = nn.Linear(32, 16, bias=False)
        self.fc3 = nn.Linear(16, k * k)
        self.bn1 = nn.BatchNorm1d(16)
        self.bn2 = nn.BatchNorm1d(32)
        self.bn3 = nn.BatchNorm1d(64)
        self.bn4 = nn.BatchNorm1d(32)
        self.bn5 = nn.BatchNorm1d(16)
        # start from the identity transform
        nn.init.zeros_(self.fc3.weight)
        nn.init.zeros_(self.fc3.bias)

    def forward(self, x):
        batchsize = x.size()[0]
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = torch.max(x, 2, keepdim=True)[0]
        x = x.view(-1, 64)
        x = F.relu(self.bn4(self.fc1(x)))
        x = F.relu(self.bn5(self.fc2(x)))
        x = self.fc3(x)
        iden = torch.eye(self.k).flatten().view(1, self.k * self.k)
        iden = iden.repeat(batchsize, 1)
        x = x + iden
        return x.view(-1, self.k, self.k)


class PointNetFeat(nn.Module):
    def __init__(self, feature_transform=True):
        super().__init__()
        self.stn = TNet(k=3)
        self.conv1 = nn.Conv1d(3, 16, 1, bias=False)
        self.conv2 = nn.Conv1d(16, 32, 1, bias=False)
        self.conv3 = nn.Conv1d(32, 64, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(16)
        self.bn2 = nn.BatchNorm1d(32)
        self.bn3 = nn.BatchNorm1d(64)
        self.feature_transform = feature_transform
        if feature_transform:
            self.fstn = TNet(k=16)

    def forward(self, x):
        trans = self.stn(x)
        x = x.transpose(2, 1)
        x = torch.bmm(x, trans)
        x = x.transpose(2, 1)
        x = F.relu(self.bn1(self.conv1(x)))
        if self.feature_transform:
            trans_feat = self.fstn(x)
            x = x.transpose(2, 1)
            x = torch.bmm(x, trans_feat)
            x = x.transpose(2, 1)
        else:
            trans_feat = None
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        x = torch.max(x, 2, keepdim=True)[0]
        x = x.view(-1, 64)
        return x, trans, trans_feat


class PointNetCls(nn.Module):
    def __init__(self, k=3, feature_transform=True):
        super().__init__()
        self.feat = PointNetFeat(feature_transform=feature_transform)
        self.fc1 = nn.Linear(64, 64, bias=False)
        self.fc2 = nn.Linear(64, 32, bias=False)
        self.fc3 = nn.Linear(32, k)
        self.dropout = nn.Dropout(p=0.3)
        self.bn1 = nn.BatchNorm1d(64)
        self.bn2 = nn.BatchNorm1d(32)

    def forward(self, x):
        x, trans, trans_feat = self.feat(x)
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.dropout(self.fc2(x))))
        x = self.fc3(x)
        return F.log_softmax(x, dim=1), trans, trans_feat


def feature_transform_regularizer(trans):
    d = trans.size()[1]
    eye = torch.eye(d)[None, :, :]
    return torch.mean(torch.norm(eye - torch.bmm(trans, trans.transpose(2, 1)), dim=(1, 2)))


def make_clouds(rng, n, npts=32):
    """Three classes: points on a sphere, in a cube, on a flat disc; randomly rotated about z."""
    xs, ys = [], []
    for i in range(n):
        c = i % 3
        if c == 0:
            p = rng.standard_normal((npts, 3))
            p /= np.linalg.norm(p, axis=1, keepdims=True)
        elif c == 1:
            p = rng.uniform(-1, 1, (npts, 3))
        else:
            r, th = np.sqrt(rng.random(npts)), rng.uniform(0, 2 * np.pi, npts)
            p = np.stack([r * np.cos(th), r * np.sin(th), 0.05 * rng.standard_normal(npts)], 1)
        a = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        xs.append((p @ rot.T).T)
        ys.append(c)
    return torch.from_numpy(np.array(xs, dtype=np.float32)), torch.tensor(ys)


def main():
    parser = argparse.ArgumentParser(description="PointNet classifier")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--feature-transform", action="store_true", default=True)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    points, target = make_clouds(rng, 64)
    test_points, test_target = make_clouds(rng, 32)

    classifier = PointNetCls(k=3, feature_transform=args.feature_transform)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=args.lr, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

    for epoch in range(args.epochs):
        classifier.train()
        for i in range(0, len(points), args.batch_size):
            x, y = points[i : i + args.batch_size], target[i : i + args.batch_size]
            optimizer.zero_grad()
            pred, trans, trans_feat = classifier(x)
            loss = F.nll_loss(pred, y)
            if args.feature_transform:
                loss = loss + feature_transform_regularizer(trans_feat) * 0.001
            loss.backward()
            optimizer.step()
            pred_choice = pred.data.max(1)[1]
            correct = pred_choice.eq(y.data).cpu().sum()
        scheduler.step()
        print(
            f"[{epoch}] train loss: {loss.item():.6f} "
            f"accuracy: {correct.item() / float(len(y)):.4f}"
        )
        classifier.eval()
        with torch.no_grad():
            pred, _, trans_feat = classifier(test_points)
            test_loss = F.nll_loss(pred, test_target)
            reg = feature_transform_regularizer(trans_feat)
            correct = pred.max(1)[1].eq(test_target).sum().item()
        print(
            f"[{epoch}] test loss: {test_loss.item():.6f} reg loss: {reg.item():.6f} "
            f"accuracy: {correct / len(test_target):.4f} lr {scheduler.get_last_lr()[0]:.6f}"
        )
    bn = classifier.feat.bn1
    print(
        f"running stats loss: {bn.running_mean.abs().mean().item():.6f} {bn.running_var.mean().item():.6f}"
    )


if __name__ == "__main__":
    main()
