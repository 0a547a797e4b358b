"""An MLP classifier trained, checkpointed to memory, reloaded and trained on: the
save/load-a-checkpoint pattern of PyTorch's recipes."""

import io

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)


def run_epoch(model, loader, optimizer, loss_fn, epoch):
    model.train()
    for i, (x, y) in enumerate(loader):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"epoch {epoch} batch {i} loss: {loss.item():.5f}")


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 10)).astype(np.float32)
    y = (x[:, :3].argmax(1)).astype(np.int64)
    full = TensorDataset(torch.tensor(x), torch.tensor(y))
    train, val = random_split(full, [96, 24], generator=torch.Generator().manual_seed(0))
    loader = DataLoader(train, batch_size=32, shuffle=True)
    model = MLP()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    run_epoch(model, loader, optimizer, loss_fn, 0)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 0}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    model2 = MLP()
    model2.load_state_dict(ckpt["model"])
    optimizer2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    optimizer2.load_state_dict(ckpt["optimizer"])
    for epoch in range(ckpt["epoch"] + 1, 3):
        run_epoch(model2, loader, optimizer2, loss_fn, epoch)
    model2.eval()
    with torch.no_grad():
        xs = torch.stack([full[i][0] for i in val.indices])
        ys = torch.stack([full[i][1] for i in val.indices])
        print(f"val loss: {loss_fn(model2(xs), ys).item():.5f}")


if __name__ == "__main__":
    main()
