"""Differentiable optimal control (in the spirit of "Differentiable MPC", Amos et al., 2018):
a torque-limited pendulum, an iLQR solver whose dynamics Jacobians come from
torch.func.vmap(torch.func.jacrev(...)), whose backward Riccati pass solves batched
Q_uu systems with torch.linalg.solve or torch.linalg.cholesky + torch.cholesky_solve,
and whose unrolled iterations are differentiated to learn the cost weights that make the
controller imitate an expert's trajectories."""

import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import jacrev, vmap

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=6)
parser.add_argument("--solver", choices=["solve", "cholesky"], default="solve")
parser.add_argument("--horizon", type=int, default=10)
parser.add_argument("--ilqr-iters", type=int, default=3)
args = parser.parse_args()

DT, G, L, M, DAMPING, U_MAX = 0.1, 9.81, 1.0, 1.0, 0.1, 4.0
N_X, N_U = 2, 1


def pendulum_step(x, u):
    """One semi-implicit Euler step for a single state x = (theta, omega), torque u."""
    theta, omega = x[0], x[1]
    torque = U_MAX * torch.tanh(u[0] / U_MAX)
    alpha = -G / L * torch.sin(theta) - DAMPING * omega + torque / (M * L * L)
    omega_next = omega + DT * alpha
    theta_next = theta + DT * omega_next
    return torch.stack([theta_next, omega_next])


batched_step = vmap(pendulum_step)
batched_jac = vmap(jacrev(pendulum_step, argnums=(0, 1)))


class QuadraticCost(nn.Module):
    """0.5 (x - goal)' Q (x - goal) + 0.5 u' R u with learnable diagonal Q and R."""

    def __init__(self, q=None, r=None):
        super().__init__()
        self.log_q = nn.Parameter(torch.log(q) if q is not None else torch.zeros(N_X))
        self.log_r = nn.Parameter(torch.log(r) if r is not None else torch.zeros(N_U))
        self.register_buffer("goal", torch.tensor([math.pi, 0.0]))

    def matrices(self):
        return torch.diag_embed(self.log_q.exp()), torch.diag_embed(self.log_r.exp())

    def forward(self, xs, us):
        Q, R = self.matrices()
        dx = xs - self.goal
        state_cost = 0.5 * torch.einsum("tbi,ij,tbj->b", dx, Q, dx)
        control_cost = 0.5 * torch.einsum("tbi,ij,tbj->b", us, R, us)
        return state_cost + control_cost


def solve_uu(q_uu, rhs):
    if args.solver == "solve":
        return torch.linalg.solve(q_uu, rhs)
    chol = torch.linalg.cholesky(q_uu)
    return torch.cholesky_solve(rhs, chol)


def rollout(x0, us):
    xs = [x0]
    for t in range(us.shape[0]):
        xs.append(batched_step(xs[-1], us[t]))
    return torch.stack(xs, 0)


def ilqr(cost, x0, us, iters, reg=1e-3):
    """Unrolled iLQR: each iteration linearises the dynamics along the current trajectory,
    runs the Riccati backward pass and rolls the new feedback policy forward (full step)."""
    Q, R = cost.matrices()
    goal = cost.goal
    T, B = us.shape[0], x0.shape[0]
    eye_u = torch.eye(N_U).expand(B, N_U, N_U)
    xs = rollout(x0, us)
    for _ in range(iters):
        A, Bm = batched_jac(xs[:-1].reshape(-1, N_X), us.reshape(-1, N_U))
        A, Bm = A.view(T, B, N_X, N_X), Bm.view(T, B, N_X, N_U)
        V_x = (xs[-1] - goal) @ Q  # terminal cost uses Q as well
        V_xx = Q.expand(B, N_X, N_X)
        ks, Ks = [None] * T, [None] * T
        for t in reversed(range(T)):
            At, Bt = A[t], Bm[t]
            l_x = (xs[t] - goal) @ Q
            l_u = us[t] @ R
            Q_x = l_x + (At.transpose(1, 2) @ V_x.unsqueeze(-1)).squeeze(-1)
            Q_u = l_u + (Bt.transpose(1, 2) @ V_x.unsqueeze(-1)).squeeze(-1)
            Q_xx = Q + At.transpose(1, 2) @ V_xx @ At
            Q_uu = R + Bt.transpose(1, 2) @ V_xx @ Bt + reg * eye_u
            Q_ux = Bt.transpose(1, 2) @ V_xx @ At
            rhs = torch.cat([Q_u.unsqueeze(-1), Q_ux], dim=-1)
            sol = -solve_uu(Q_uu, rhs)
            k, K = sol[..., 0], sol[..., 1:]
            ks[t], Ks[t] = k, K
            Kt = K.transpose(1, 2)
            V_x = (Q_x + (Kt @ Q_uu @ k.unsqueeze(-1)).squeeze(-1)
                   + (Kt @ Q_u.unsqueeze(-1)).squeeze(-1)
                   + (Q_ux.transpose(1, 2) @ k.unsqueeze(-1)).squeeze(-1))  # fmt: skip
            V_xx = Q_xx + Kt @ Q_uu @ K + Kt @ Q_ux + Q_ux.transpose(1, 2) @ K
            V_xx = 0.5 * (V_xx + V_xx.transpose(1, 2))
        new_xs, new_us = [x0], []
        for t in range(T):
            dx = (new_xs[-1] - xs[t]).unsqueeze(-1)
            u = us[t] + ks[t] + (Ks[t] @ dx).squeeze(-1)
            new_us.append(u)
            new_xs.append(batched_step(new_xs[-1], u))
        xs, us = torch.stack(new_xs, 0), torch.stack(new_us, 0)
    return xs, us


# expert: iLQR with hidden cost weights from a fixed set of starting states
batch = 8
angles = torch.linspace(-0.6, 0.6, batch) + math.pi * 0.6
x0_all = torch.stack([angles, torch.linspace(-0.5, 0.5, batch)], -1)
expert_cost = QuadraticCost(q=torch.tensor([4.0, 0.3]), r=torch.tensor([0.05]))
with torch.no_grad():
    expert_xs, expert_us = ilqr(expert_cost, x0_all, torch.zeros(args.horizon, batch, N_U), 5)

learner = QuadraticCost()
optimizer = torch.optim.Adam(learner.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)

for epoch in range(args.epochs):
    total = 0.0
    for half in (slice(0, 4), slice(4, 8)):
        x0 = x0_all[half]
        us0 = torch.zeros(args.horizon, x0.shape[0], N_U)
        xs, us = ilqr(learner, x0, us0, args.ilqr_iters)
        loss = F.mse_loss(xs, expert_xs[:, half]) + 0.1 * F.mse_loss(us, expert_us[:, half])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    scheduler.step()
    with torch.no_grad():
        q = learner.log_q.exp().tolist()
        r = learner.log_r.exp().item()
        task_cost = learner(xs, us).mean().item()
    print(f"epoch {epoch} imitation loss {total / 2:.6f} task cost {task_cost:.4f} "
          f"q [{q[0]:.4f}, {q[1]:.4f}] r {r:.4f}")  # fmt: skip
