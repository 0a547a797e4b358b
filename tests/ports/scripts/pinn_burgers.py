"""A physics-informed neural network (Raissi et al., 2019) for the viscous Burgers equation
u_t + u u_x = (0.01 / pi) u_xx on x in [-1, 1], t in [0, 1], with u(0, x) = -sin(pi x) and
u(t, -1) = u(t, 1) = 0. The PDE residual needs first and second derivatives of the network's
output with respect to its inputs: torch.autograd.grad with create_graph=True, twice, and the
loss's backward differentiates through both. Collocation points from torch.rand, boundary
grids from torch.linspace/meshgrid, a Tanh MLP with Xavier init, Adam with MultiStepLR."""

import argparse
import math

import torch
import torch.nn as nn

NU = 0.01 / math.pi


class PINN(nn.Module):
    def __init__(self, layers=(2, 24, 24, 24, 1)):
        super().__init__()
        mods = []
        for i in range(len(layers) - 2):
            mods += [nn.Linear(layers[i], layers[i + 1]), nn.Tanh()]
        mods.append(nn.Linear(layers[-2], layers[-1]))
        self.net = nn.Sequential(*mods)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, t, x):
        return self.net(torch.cat([t, x], dim=1))


def derivative(y, x, order=1):
    for _ in range(order):
        y = torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y), create_graph=True)[0]
    return y


def pde_residual(model, t, x):
    t = t.clone().requires_grad_(True)
    x = x.clone().requires_grad_(True)
    u = model(t, x)
    u_t = derivative(u, t)
    u_x = derivative(u, x)
    u_xx = derivative(u_x, x)
    return u_t + u * u_x - NU * u_xx


def boundary_data(n_initial, n_boundary):
    x0 = torch.linspace(-1, 1, n_initial).unsqueeze(1)
    t0 = torch.zeros_like(x0)
    u0 = -torch.sin(math.pi * x0)
    tb, xb = torch.meshgrid(
        torch.linspace(0, 1, n_boundary), torch.tensor([-1.0, 1.0]), indexing="ij"
    )
    tb, xb = tb.reshape(-1, 1), xb.reshape(-1, 1)
    t_all = torch.cat([t0, tb])
    x_all = torch.cat([x0, xb])
    u_all = torch.cat([u0, torch.zeros_like(tb)])
    return t_all, x_all, u_all


def main():
    parser = argparse.ArgumentParser(description="PINN for Burgers' equation")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--n-collocation", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-3)
    args = parser.parse_args()

    model = PINN()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[15, 25], gamma=0.5)
    mse = nn.MSELoss()
    t_b, x_b, u_b = boundary_data(50, 25)

    for it in range(args.iterations):
        if it % 10 == 0:  # resample the collocation points every few iterations
            t_f = torch.rand(args.n_collocation, 1)
            x_f = 2 * torch.rand(args.n_collocation, 1) - 1
        optimizer.zero_grad()
        loss_u = mse(model(t_b, x_b), u_b)
        residual = pde_residual(model, t_f, x_f)
        loss_f = mse(residual, torch.zeros_like(residual))
        loss = loss_u + loss_f
        loss.backward()
        optimizer.step()
        scheduler.step()
        if it % 3 == 0 or it == args.iterations - 1:
            print(
                f"iter {it} loss: {loss.item():.6e} boundary loss: {loss_u.item():.6e} "
                f"pde loss: {loss_f.item():.6e}"
            )

    # the residual on a fixed grid: no torch.no_grad here, the derivatives need autograd
    tt, xx = torch.meshgrid(torch.linspace(0, 1, 11), torch.linspace(-1, 1, 21), indexing="ij")
    r = pde_residual(model, tt.reshape(-1, 1), xx.reshape(-1, 1)).detach()
    print(f"grid residual loss: {r.pow(2).mean().item():.6e}")
    with torch.no_grad():
        u_mid = model(torch.full((5, 1), 0.5), torch.linspace(-1, 1, 5).unsqueeze(1))
    print("u(0.5, x):", [round(v, 4) for v in u_mid.squeeze(1).tolist()])


if __name__ == "__main__":
    main()
