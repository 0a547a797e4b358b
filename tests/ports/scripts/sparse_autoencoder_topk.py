"""A top-k sparse autoencoder (Gao et al., 2024) on synthetic model activations built from
known sparse feature directions: k-sparse latents by topk + scatter, unit-norm decoder rows
kept by renormalising after each step and by projecting out the gradient along each row,
an auxiliary top-k loss that revives dead latents, and a full backward hook on the
encoder that watches the gradient reaching the latents."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def make_activations(n, d_model, n_features, rng, p_active=0.04):
    directions = rng.normal(size=(n_features, d_model))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    active = rng.random((n, n_features)) < p_active
    coeffs = active * rng.exponential(1.0, size=(n, n_features))
    acts = coeffs @ directions + 0.3 + 0.01 * rng.normal(size=(n, d_model))
    return torch.from_numpy(acts.astype(np.float32)), torch.from_numpy(
        directions.astype(np.float32)
    )


class TopKSAE(nn.Module):
    def __init__(self, d_model, n_latents, k, k_aux):
        super().__init__()
        self.k, self.k_aux = k, k_aux
        self.b_dec = nn.Parameter(torch.zeros(d_model))
        self.encoder = nn.Linear(d_model, n_latents)
        self.W_dec = nn.Parameter(torch.empty(n_latents, d_model))
        nn.init.kaiming_uniform_(self.W_dec)
        # remove the part of each decoder row's gradient that would change its norm
        self.W_dec.register_hook(self._project_out_parallel)

    def _project_out_parallel(self, grad):
        w = self.W_dec.detach()
        return grad - (grad * w).sum(-1, keepdim=True) * w

    @torch.no_grad()
    def init_from_data(self, acts):
        self.b_dec.copy_(acts.median(dim=0).values)
        self.normalize_decoder()
        self.encoder.weight.copy_(self.W_dec)  # nn.Linear stores W_enc transposed
        self.encoder.bias.zero_()

    @torch.no_grad()
    def normalize_decoder(self):
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))

    def topk_latents(self, pre, k):
        top = pre.topk(k, dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter_(-1, top.indices, F.relu(top.values))

    def forward(self, x):
        pre = self.encoder(x - self.b_dec)
        z = self.topk_latents(pre, self.k)
        return z @ self.W_dec + self.b_dec, z, pre


def normalized_mse(recon, x):
    return (recon - x).pow(2).sum(-1).mean() / (x - x.mean(0)).pow(2).sum(-1).mean()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    d_model, n_features = 24, 48
    acts, true_dirs = make_activations(3072, d_model, n_features, rng)
    std, mean = torch.std_mean(acts, dim=0)
    print(f"activation mean {mean.mean().item():.4f} std {std.mean().item():.4f}")
    # scale so that the mean squared norm is d_model, as SAE training code does
    acts = acts * (d_model / acts.pow(2).sum(-1).mean()).sqrt()
    loader = DataLoader(TensorDataset(acts), batch_size=128, shuffle=True)

    model = TopKSAE(d_model, n_latents=256, k=4, k_aux=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=4e-3, eps=6.25e-10)
    model.init_from_data(acts)
    grad_norms = []
    model.encoder.register_full_backward_hook(
        lambda module, grad_input, grad_output: grad_norms.append(grad_output[0].norm().item())
    )
    steps_since_fired = torch.zeros(256, dtype=torch.long)
    history = []
    for epoch in range(args.epochs):
        for step, (x,) in enumerate(loader):
            recon, z, pre = model(x)
            loss = normalized_mse(recon, x)
            steps_since_fired += 1
            steps_since_fired[(z > 0).any(0)] = 0
            dead = steps_since_fired > 3
            aux = torch.zeros(())
            if dead.any():
                # the dead latents try to explain what the live ones left over
                z_aux = model.topk_latents(
                    torch.where(dead, pre, torch.full_like(pre, -float("inf"))),
                    min(model.k_aux, int(dead.sum())),
                )
                residual = (x - recon).detach()
                aux = normalized_mse(z_aux @ model.W_dec, residual).nan_to_num(0.0)
            total = loss + aux / 32
            optimizer.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            model.normalize_decoder()
            history.append(loss.item())
            if step % 8 == 0:
                print(
                    f"epoch {epoch} step {step} loss {loss.item():.5f} aux_loss {aux.item():.5f} "
                    f"dead {int(dead.sum())} latent_grad {grad_norms[-1]:.5f}"
                )
    with torch.no_grad():
        recon, z, _ = model(acts)
        cos = true_dirs @ model.W_dec.t()  # (features, latents): decoder rows are unit norm
        recovered = cos.max(dim=1).values
        best = torch.cummin(torch.tensor(history), dim=0).values
    print(
        f"final loss {normalized_mse(recon, acts).item():.5f} l0 {(z > 0).sum(-1).float().mean():.2f}"
    )
    print(
        f"feature recovery mean_cos {recovered.mean().item():.4f} best loss {best[-1].item():.5f}"
    )


if __name__ == "__main__":
    main()
