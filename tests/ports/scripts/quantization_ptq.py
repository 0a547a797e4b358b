"""Post-training static quantization of a small conv net (fused conv+bn+relu, linear+relu)
and dynamic quantization of an MLP, with torch.ao.quantization's eager-mode API."""

import torch
import torch.ao.quantization as tq
import torch.nn as nn

torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 16)
        self.relu2 = nn.ReLU()
        self.out = nn.Linear(16, 5)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.pool(self.relu(self.bn(self.conv(self.quant(x)))))
        x = self.relu2(self.fc(torch.flatten(x, 1)))
        return self.dequant(self.out(x))


net = Net()
opt = torch.optim.SGD(net.parameters(), lr=0.05)  # NOTE: a few steps give the BN real stats
data = torch.randn(32, 3, 8, 8)
target = torch.randint(0, 5, (32,))
for _ in range(3):
    loss = nn.functional.cross_entropy(net(data), target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print(f"train loss: {loss.item():.6f}")
net.eval()
with torch.no_grad():
    print(f"float loss: {nn.functional.cross_entropy(net(data), target).item():.6f}")
net.qconfig = tq.QConfig(
    activation=tq.MinMaxObserver.with_args(reduce_range=True),
    weight=tq.default_per_channel_weight_observer,
)
tq.fuse_modules(net, [["conv", "bn", "relu"], ["fc", "relu2"]], inplace=True)
tq.prepare(net, inplace=True)
with torch.no_grad():
    net(data)
tq.convert(net, inplace=True)
with torch.no_grad():
    out = net(data)
    print(f"static int8 loss: {nn.functional.cross_entropy(out, target).item():.6f}")
    print(f"static int8 loss_mean_abs: {out.abs().mean().item():.6f}")

mlp = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
opt = torch.optim.SGD(mlp.parameters(), lr=0.1)
x = torch.randn(64, 20)
y = torch.randn(64, 4)
for _ in range(3):
    loss = nn.functional.mse_loss(mlp(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
mlp.eval()
qmlp = tq.quantize_dynamic(mlp, {nn.Linear}, dtype=torch.qint8)
with torch.no_grad():
    print(f"float mlp loss: {nn.functional.mse_loss(mlp(x), y).item():.6f}")
    print(f"dynamic int8 loss: {nn.functional.mse_loss(qmlp(x), y).item():.6f}")
