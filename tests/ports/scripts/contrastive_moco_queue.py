"""MoCo v2 on synthetic 1-D signals: a query encoder trained with InfoNCE against a momentum
(key) encoder and a queue of negative keys kept as a registered buffer (updated in place
under no_grad with index_copy_), shuffled BatchNorm for the keys (randperm/argsort),
F.normalize, torch.einsum logits with a temperature, a cosine learning rate set by hand,
top-k accuracy of the instance discrimination, then a kNN and a linear probe."""

import argparse
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Encoder(nn.Module):
    def __init__(self, in_channels=1, width=16, feat_dim=32):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv1d(in_channels, width, 5, padding=2, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Conv1d(width, 2 * width, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm1d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(  # MoCo v2's MLP projection head
            nn.Linear(2 * width, feat_dim), nn.ReLU(), nn.Linear(feat_dim, feat_dim)
        )

    def forward(self, x, project=True):
        h = self.backbone(x)
        return self.fc(h) if project else h


class MoCo(nn.Module):
    def __init__(self, base_encoder, dim=32, K=96, m=0.9, T=0.2):  # noqa: N803
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.encoder_q = base_encoder(feat_dim=dim)
        self.encoder_k = None  # made at the first forward, from the query encoder's weights

        self.register_buffer("queue", torch.randn(dim, K))
        self.queue = F.normalize(self.queue, dim=0)
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def _get_key_encoder(self):
        if self.encoder_k is None:
            self.encoder_k = copy.deepcopy(self.encoder_q)
            for param_k in self.encoder_k.parameters():
                param_k.requires_grad = False  # not updated by gradient
        return self.encoder_k

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data = param_k.data * self.m + param_q.data * (1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        batch_size = keys.shape[0]
        ptr = int(self.queue_ptr)
        assert self.K % batch_size == 0  # for simplicity
        idx = torch.arange(ptr, ptr + batch_size)
        self.queue.index_copy_(1, idx, keys.T)
        self.queue_ptr[0] = (ptr + batch_size) % self.K

    @torch.no_grad()
    def _batch_shuffle(self, x):
        # single-device shuffling BN: the key batch's statistics mix other samples
        idx_shuffle = torch.randperm(x.shape[0])
        idx_unshuffle = torch.argsort(idx_shuffle)
        return x[idx_shuffle], idx_unshuffle

    def forward(self, im_q, im_k):
        q = F.normalize(self.encoder_q(im_q), dim=1)

        with torch.no_grad():
            encoder_k = self._get_key_encoder()
            self._momentum_update_key_encoder()
            im_k, idx_unshuffle = self._batch_shuffle(im_k)
            k = F.normalize(encoder_k(im_k), dim=1)
            k = k[idx_unshuffle]

        l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", [q, self.queue.clone().detach()])
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long)

        self._dequeue_and_enqueue(k)
        return logits, labels


def make_signals(rng, n, length=32, classes=4):
    """A class-dependent sine wave plus two Gaussian bumps that make each instance distinct."""
    t = np.arange(length, dtype=np.float32)
    y = rng.integers(0, classes, n)
    freq = 0.25 + 0.2 * y[:, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    centers = rng.uniform(0, length, (n, 2, 1))
    heights = rng.uniform(-2, 2, (n, 2, 1))
    bumps = (heights * np.exp(-((t - centers) ** 2) / 4.0)).sum(1)
    x = np.sin(freq * t + phase) + bumps + 0.2 * rng.standard_normal((n, length))
    return torch.from_numpy(x[:, None].astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def augment(x, max_shift=3):
    """Random gain, a small circular time shift, additive noise and a masked-out window."""
    b, _, length = x.shape
    gain = 0.8 + 0.4 * torch.rand(b, 1, 1)
    shifts = torch.randint(-max_shift, max_shift + 1, (b,))
    idx = (torch.arange(length).unsqueeze(0) - shifts.unsqueeze(1)) % length
    x = torch.gather(x * gain, 2, idx.unsqueeze(1))
    x = x + 0.1 * torch.randn_like(x)
    start = torch.randint(0, length - 4, (b, 1))
    pos = torch.arange(length).unsqueeze(0)
    keep = ~((pos >= start) & (pos < start + 4))
    return x * keep.unsqueeze(1).float()


def accuracy(output, target, topk=(1,)):
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


def adjust_learning_rate(optimizer, epoch, step, steps_per_epoch, args):
    progress = (epoch + step / steps_per_epoch) / args.epochs
    lr = args.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr
    return lr


@torch.no_grad()
def knn_predict(features, bank, bank_labels, classes, k=10, t=0.1):
    sim = features @ bank.T
    sim_weight, sim_idx = sim.topk(k=k, dim=-1)
    sim_labels = torch.gather(bank_labels.expand(features.size(0), -1), -1, sim_idx)
    one_hot = torch.zeros(features.size(0) * k, classes)
    one_hot.scatter_(-1, sim_labels.view(-1, 1), 1.0)
    scores = one_hot.view(features.size(0), -1, classes) * (sim_weight / t).exp().unsqueeze(-1)
    return scores.sum(1).argmax(-1)


def main():
    parser = argparse.ArgumentParser(description="MoCo v2 with a negative queue")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.06)
    parser.add_argument("--moco-k", type=int, default=96)
    parser.add_argument("--moco-m", type=float, default=0.9)  # 0.999 for long runs
    parser.add_argument("--moco-t", type=float, default=0.2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_signals(rng, 256)
    x_test, y_test = make_signals(rng, 128)
    loader = DataLoader(TensorDataset(x_train), batch_size=args.batch_size, shuffle=True,
                        drop_last=True)  # fmt: skip

    model = MoCo(Encoder, dim=32, K=args.moco_k, m=args.moco_m, T=args.moco_t)
    optimizer = torch.optim.SGD(model.parameters(), args.lr, momentum=0.9, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()
    print("queue", tuple(model.queue.shape), "buffers", [n for n, _ in model.named_buffers()][:2])

    for epoch in range(args.epochs):
        model.train()
        total, top1_sum, top5_sum = 0.0, 0.0, 0.0
        for i, (images,) in enumerate(loader):
            lr = adjust_learning_rate(optimizer, epoch, i, len(loader), args)
            output, target = model(im_q=augment(images), im_k=augment(images))
            loss = criterion(output, target)
            acc1, acc5 = accuracy(output, target, topk=(1, 5))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            top1_sum += acc1.item()
            top5_sum += acc5.item()
        n = len(loader)
        print(f"epoch {epoch} loss {total / n:.5f} acc@1 {top1_sum / n:.2f} "
              f"acc@5 {top5_sum / n:.2f} lr {lr:.5f} ptr {int(model.queue_ptr)}")  # fmt: skip
        print(f"  queue max |norm - 1| {(model.queue.norm(dim=0) - 1).abs().max().item():.6f}")

    # evaluation on frozen backbone features
    model.eval()
    encoder = model.encoder_q
    with torch.no_grad():
        bank = F.normalize(encoder(x_train, project=False), dim=1)
        feats = F.normalize(encoder(x_test, project=False), dim=1)
    pred = knn_predict(feats, bank, y_train, classes=4)
    print(f"knn acc {(pred == y_test).float().mean().item():.3f}")

    for p in encoder.parameters():
        p.requires_grad_(False)
    probe = nn.Linear(bank.shape[1], 4)
    probe_opt = torch.optim.Adam(probe.parameters(), lr=0.02)
    for step in range(1, 61):
        loss = F.cross_entropy(probe(bank), y_train)
        probe_opt.zero_grad()
        loss.backward()
        probe_opt.step()
        if step % 20 == 0:
            with torch.no_grad():
                test_loss = F.cross_entropy(probe(feats), y_test)
            print(f"probe step {step} loss {loss.item():.5f} test loss {test_loss.item():.5f}")


if __name__ == "__main__":
    main()
