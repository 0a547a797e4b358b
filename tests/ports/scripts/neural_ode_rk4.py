"""A neural ODE fitted to a spiral (after torchdiffeq's ode_demo.py, Chen et al. 2018) with a
hand-written fixed-step RK4 integrator instead of odeint: the true dynamics dy/dt = (y^3) A are
integrated once to make the data, random short windows of the trajectory are the mini-batches,
and backprop runs through every RK4 stage of every step."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim


def rk4_step(func, t, dt, y):
    k1 = func(t, y)
    k2 = func(t + dt / 2, y + dt * k1 / 2)
    k3 = func(t + dt / 2, y + dt * k2 / 2)
    k4 = func(t + dt, y + dt * k3)
    return y + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6


def odeint(func, y0, t, substeps=2):
    """Integrate from t[0] through every time in t; returns [len(t), *y0.shape]."""
    ys = [y0]
    y = y0
    for t0, t1 in zip(t[:-1], t[1:]):
        dt = (t1 - t0) / substeps
        for k in range(substeps):
            y = rk4_step(func, t0 + k * dt, dt, y)
        ys.append(y)
    return torch.stack(ys)


class Lambda(nn.Module):
    def __init__(self, matrix):
        super().__init__()
        self.matrix = matrix

    def forward(self, t, y):
        return torch.mm(y**3, self.matrix)


class ODEFunc(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, 32),
            nn.Tanh(),
            nn.Linear(32, 2),
        )
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0, std=0.1)
                nn.init.constant_(m.bias, val=0)
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        return self.net(y**3)


class RunningAverageMeter:
    """Computes and stores the average and current value"""

    def __init__(self, momentum=0.99):
        self.momentum = momentum
        self.reset()

    def reset(self):
        self.val = None
        self.avg = 0

    def update(self, val):
        if self.val is None:
            self.avg = val
        else:
            self.avg = self.avg * self.momentum + val * (1 - self.momentum)
        self.val = val


def main():
    parser = argparse.ArgumentParser("ODE demo")
    parser.add_argument("--data_size", type=int, default=100)
    parser.add_argument("--batch_time", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--niters", type=int, default=60)
    parser.add_argument("--test_freq", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    true_y0 = torch.tensor([[2.0, 0.0]])
    t = torch.linspace(0.0, 10.0, args.data_size)
    true_A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]])

    with torch.no_grad():
        true_y = odeint(Lambda(true_A), true_y0, t, substeps=4)  # [T, 1, 2]
    print(f"spiral radius {true_y[0].norm().item():.4f} -> {true_y[-1].norm().item():.4f}")

    rng = np.random.default_rng(0)

    def get_batch():
        s = rng.choice(args.data_size - args.batch_time, args.batch_size, replace=False)
        s = torch.from_numpy(s.astype(np.int64))
        batch_y0 = true_y[s]  # (M, 1, D)
        batch_t = t[: args.batch_time]  # (T)
        batch_y = torch.stack([true_y[s + i] for i in range(args.batch_time)], dim=0)
        return batch_y0, batch_t, batch_y  # (T, M, 1, D)

    func = ODEFunc()
    optimizer = optim.RMSprop(func.parameters(), lr=args.lr)
    loss_meter = RunningAverageMeter(0.97)
    criterion = nn.MSELoss()

    for itr in range(1, args.niters + 1):
        optimizer.zero_grad()
        batch_y0, batch_t, batch_y = get_batch()
        pred_y = odeint(func, batch_y0, batch_t)
        loss = criterion(pred_y, batch_y)
        loss.backward()
        optimizer.step()
        loss_meter.update(loss.item())

        if itr % args.test_freq == 0:
            with torch.no_grad():
                pred_y = odeint(func, true_y0, t)
                test_loss = criterion(pred_y, true_y)
                l1 = torch.mean(torch.abs(pred_y - true_y))
            print(
                f"Iter {itr:04d} | Total Loss {test_loss.item():.6f} | L1 loss {l1.item():.6f} "
                f"| running loss {loss_meter.avg:.6f} | nfe {func.nfe}"
            )


if __name__ == "__main__":
    main()
