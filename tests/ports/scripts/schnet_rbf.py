"""SchNet (Schütt et al., 2017) on a toy molecular-dynamics set: continuous-filter convolutions
over point clouds, with pairwise distances from torch.cdist, a Gaussian radial basis, a cosine
cutoff and an edge list from a radius mask; messages are summed with index_add_ (or
scatter_add_); the energy is a sum over atoms and the forces -dE/dpos come from
torch.autograd.grad(create_graph=True), trained on energies and forces together."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=6)
parser.add_argument("--aggregate", choices=["index_add", "scatter"], default="index_add")
parser.add_argument("--force-weight", type=float, default=10.0)
args = parser.parse_args()


class ShiftedSoftplus(nn.Module):
    def __init__(self):
        super().__init__()
        self.shift = math.log(2.0)

    def forward(self, x):
        return F.softplus(x) - self.shift


class GaussianSmearing(nn.Module):
    def __init__(self, start=0.0, stop=3.0, num_gaussians=16):
        super().__init__()
        offset = torch.linspace(start, stop, num_gaussians)
        self.coeff = -0.5 / (offset[1] - offset[0]).item() ** 2
        self.register_buffer("offset", offset)

    def forward(self, dist):
        dist = dist.view(-1, 1) - self.offset.view(1, -1)
        return torch.exp(self.coeff * torch.pow(dist, 2))


class CosineCutoff(nn.Module):
    def __init__(self, cutoff):
        super().__init__()
        self.register_buffer("cutoff", torch.tensor(cutoff))

    def forward(self, dist):
        out = 0.5 * (torch.cos(dist * math.pi / self.cutoff) + 1.0)
        return out * (dist < self.cutoff).float()


class CFConv(nn.Module):
    def __init__(self, hidden, num_filters, num_gaussians, cutoff):
        super().__init__()
        self.lin1 = nn.Linear(hidden, num_filters, bias=False)
        self.lin2 = nn.Linear(num_filters, hidden)
        self.filter_net = nn.Sequential(
            nn.Linear(num_gaussians, num_filters), ShiftedSoftplus(),
            nn.Linear(num_filters, num_filters),
        )  # fmt: skip
        self.cutoff = CosineCutoff(cutoff)

    def forward(self, x, edge_index, edge_weight, edge_attr):
        W = self.filter_net(edge_attr) * self.cutoff(edge_weight).unsqueeze(-1)
        src, dst = edge_index
        msg = self.lin1(x)[src] * W
        if args.aggregate == "index_add":
            out = torch.zeros(x.size(0), msg.size(1), dtype=msg.dtype).index_add_(0, dst, msg)
        else:
            idx = dst.unsqueeze(-1).expand_as(msg)
            out = torch.zeros(x.size(0), msg.size(1), dtype=msg.dtype).scatter_add_(0, idx, msg)
        return self.lin2(out)


class Interaction(nn.Module):
    def __init__(self, hidden, num_filters, num_gaussians, cutoff):
        super().__init__()
        self.conv = CFConv(hidden, num_filters, num_gaussians, cutoff)
        self.act = ShiftedSoftplus()
        self.lin = nn.Linear(hidden, hidden)

    def forward(self, x, edge_index, edge_weight, edge_attr):
        return self.lin(self.act(self.conv(x, edge_index, edge_weight, edge_attr)))


def radius_graph(pos, batch, cutoff):
    dist = torch.cdist(pos, pos)
    same = batch.unsqueeze(0) == batch.unsqueeze(1)
    mask = (dist < cutoff) & same & ~torch.eye(pos.size(0), dtype=torch.bool)
    edge_index = torch.nonzero(mask, as_tuple=False).t()
    return edge_index


class SchNet(nn.Module):
    def __init__(self, hidden=32, num_filters=32, num_interactions=2, num_gaussians=16,
                 cutoff=2.5, num_types=3):  # fmt: skip
        super().__init__()
        self.cutoff = cutoff
        self.embedding = nn.Embedding(num_types, hidden)
        self.distance_expansion = GaussianSmearing(0.0, cutoff, num_gaussians)
        self.interactions = nn.ModuleList(
            [Interaction(hidden, num_filters, num_gaussians, cutoff)
             for _ in range(num_interactions)]
        )  # fmt: skip
        self.lin1 = nn.Linear(hidden, hidden // 2)
        self.act = ShiftedSoftplus()
        self.lin2 = nn.Linear(hidden // 2, 1)

    def forward(self, z, pos, batch, num_graphs):
        edge_index = radius_graph(pos.detach(), batch, self.cutoff)
        row, col = edge_index
        # NOTE: the distances are recomputed from pos so that forces flow through them
        edge_weight = (pos[row] - pos[col]).norm(dim=-1)
        edge_attr = self.distance_expansion(edge_weight)
        h = self.embedding(z)
        for interaction in self.interactions:
            h = h + interaction(h, edge_index, edge_weight, edge_attr)
        h = self.lin2(self.act(self.lin1(h)))
        energy = torch.zeros(num_graphs, 1).index_add_(0, batch, h)
        return energy.squeeze(-1)


# toy molecules: 6 atoms of 3 types with a pairwise Morse-like reference potential
rng = np.random.default_rng(0)
n_mol, n_atoms = 48, 6
types_np = rng.integers(0, 3, size=(n_mol, n_atoms))
pos_np = rng.normal(size=(n_mol, n_atoms, 3)) * 0.8


def reference(pos, types):
    d = torch.cdist(pos, pos) + torch.eye(pos.shape[-2]) * 10.0
    depth = 0.5 + 0.25 * (types.unsqueeze(-1) + types.unsqueeze(-2)).float()
    pair = depth * (1.0 - torch.exp(-1.5 * (d - 1.0))) ** 2 - depth
    return 0.5 * (pair * (d < 5.0).float()).sum((-1, -2))


pos_all = torch.tensor(pos_np, dtype=torch.float32).requires_grad_(True)
types_all = torch.tensor(types_np)
e_all = reference(pos_all, types_all)
f_all = -torch.autograd.grad(e_all.sum(), pos_all)[0]
e_all, pos_all = e_all.detach(), pos_all.detach()
e_mean, e_std = e_all.mean(), e_all.std()

model = SchNet()
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
batch_size = 12

for epoch in range(args.epochs):
    total_e, total_f = 0.0, 0.0
    for start in range(0, n_mol, batch_size):
        sl = slice(start, start + batch_size)
        n = e_all[sl].shape[0]
        z = types_all[sl].reshape(-1)
        pos = pos_all[sl].reshape(-1, 3).clone().requires_grad_(True)
        batch = torch.arange(n).repeat_interleave(n_atoms)
        energy = model(z, pos, batch, n) * e_std + e_mean
        forces = -torch.autograd.grad(energy.sum(), pos, create_graph=True)[0]
        loss_e = F.mse_loss(energy, e_all[sl]) / e_std**2
        loss_f = F.l1_loss(forces, f_all[sl].reshape(-1, 3))
        loss = loss_e + args.force_weight * loss_f
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        total_e += loss_e.item()
        total_f += loss_f.item()
    scheduler.step(total_f)
    print(f"epoch {epoch} energy loss {total_e / 4:.5f} force loss {total_f / 4:.5f} "
          f"lr {optimizer.param_groups[0]['lr']:.5f}")  # fmt: skip
