"""A network assembled from the layers few examples use, with lazy shape inference: LazyConv2d,
LazyBatchNorm2d, LazyConvTranspose2d, LazyInstanceNorm2d and LazyLinear materialised by a dry
run, PixelUnshuffle / PixelShuffle, ReflectionPad1d / ReplicationPad1d / ZeroPad1d /
ConstantPad2d / CircularPad1d, Softmin / Softsign / Tanhshrink / Softshrink / Hardshrink /
Threshold / Hardtanh / LogSigmoid / RReLU (eval), UpsamplingBilinear2d / UpsamplingNearest2d,
AdaptiveMaxPool1d, LPPool1d / LPPool2d, AvgPool3d, Dropout1d/2d/3d and AlphaDropout (eval),
CosineSimilarity and PairwiseDistance heads, a ParameterDict, trained with HingeEmbeddingLoss,
SoftMarginLoss and MultiLabelMarginLoss."""

import argparse

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=3)
args = p.parse_args()
torch.manual_seed(0)


class Zoo(nn.Module):
    # NOTE: the convolutions before norms have no bias: a bias there has a zero gradient,
    # whose rounding noise Adam would turn into full steps (PyTorch against itself too)
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.ConstantPad2d((1, 1, 1, 1), 0.5), nn.LazyConv2d(8, 3, bias=False),
                                  nn.LazyBatchNorm2d(), nn.Hardtanh(-2.0, 2.0))  # fmt: skip
        self.down = nn.PixelUnshuffle(2)  # 8 -> 32 channels, half size
        self.mix = nn.Sequential(nn.LazyConv2d(16, 1, bias=False), nn.LazyInstanceNorm2d(affine=True),
                                 nn.Softsign(), nn.Dropout2d(0.1))  # fmt: skip
        self.up = nn.Sequential(nn.LazyConvTranspose2d(8, 2, stride=2), nn.Tanhshrink(),
                                nn.UpsamplingBilinear2d(scale_factor=0.5),
                                nn.UpsamplingNearest2d(scale_factor=2))  # fmt: skip
        self.pool2d = nn.LPPool2d(2, 2)
        self.pool3d = nn.AvgPool3d((2, 1, 1))
        self.seq = nn.Sequential(nn.ReflectionPad1d(2), nn.ReplicationPad1d(1), nn.ZeroPad1d(1),
                                 nn.CircularPad1d(1), nn.LPPool1d(3, 2),
                                 nn.AdaptiveMaxPool1d(6))  # fmt: skip
        self.acts = nn.ModuleList([nn.Softshrink(0.1), nn.Hardshrink(0.2), nn.Threshold(0.05, -1.0),
                                   nn.LogSigmoid(), nn.RReLU(0.1, 0.3)])  # fmt: skip
        self.head = nn.Sequential(nn.Dropout1d(0.1), nn.AlphaDropout(0.1), nn.LazyLinear(12))
        self.scale = nn.ParameterDict({"cos": nn.Parameter(torch.tensor(2.0)),
                                       "dist": nn.Parameter(torch.tensor(0.5))})  # fmt: skip
        self.cos = nn.CosineSimilarity(dim=1)
        self.dist = nn.PairwiseDistance(p=1.5)
        self.softmin = nn.Softmin(dim=1)

    def embed(self, x):
        h = self.up(self.mix(self.down(self.stem(x))))  # (b, 8, 8, 8)
        h = self.pool2d(h)  # (b, 8, 4, 4)
        h = self.pool3d(h.unsqueeze(1)).squeeze(1)  # (b, 4, 4, 4)
        s = self.seq(h.flatten(2).transpose(1, 2))  # (b, 16, 6)
        for act in self.acts:
            s = act(s) + s
        return self.head(s.flatten(1).unsqueeze(1)).squeeze(1)

    def forward(self, a, b):
        ea, eb = self.embed(a), self.embed(b)
        sim = self.cos(ea, eb) * self.scale["cos"]
        dist = self.dist(ea, eb) * self.scale["dist"]
        return ea, sim, dist, self.softmin(ea)


def make_pairs(n):
    labels = torch.randint(0, 3, (n,))
    base = torch.randn(3, 1, 8, 8)
    a = base[labels] + 0.3 * torch.randn(n, 1, 8, 8)
    same = torch.rand(n) < 0.5
    other = torch.where(same, labels, (labels + 1) % 3)
    b = base[other] + 0.3 * torch.randn(n, 1, 8, 8)
    return a, b, labels, same


a, b, labels, same = make_pairs(48)
model = Zoo()
model.eval()
with torch.no_grad():
    model(a[:2], b[:2])  # the dry run that gives the lazy layers their shapes
print("params", sum(p.numel() for p in model.parameters()), type(model.head[2]).__name__)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
hinge, soft, mlm = nn.HingeEmbeddingLoss(margin=2.0), nn.SoftMarginLoss(), nn.MultiLabelMarginLoss()
multi = torch.full((48, 12), -1, dtype=torch.long)
multi[:, 0] = labels
multi[:, 1] = labels + 3
for epoch in range(args.epochs):
    total = 0.0
    for i in range(0, 48, 12):
        model.train()
        model.acts[4].eval()  # RReLU's random slopes in eval: their mean
        for m in model.modules():
            if isinstance(m, (nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)):
                m.eval()
        sl = slice(i, i + 12)
        ea, sim, dist, weights = model(a[sl], b[sl])
        y = same[sl].float() * 2 - 1
        loss = (
            hinge(dist, y) + soft(sim, y) + mlm(ea, multi[sl]) + 0.01 * weights.max(1).values.mean()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    model.eval()
    with torch.no_grad():
        ea, sim, dist, _ = model(a, b)
        acc = ((sim > 0) == same).float().mean().item()
        val = (hinge(dist, same.float() * 2 - 1) + soft(sim, same.float() * 2 - 1)).item()
    print(f"epoch {epoch} train loss {total / 4:.6f} pair loss {val:.6f} acc {acc:.3f}")
