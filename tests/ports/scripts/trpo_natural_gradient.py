"""TRPO (Schulman et al., 2015) on toy problems: a contextual bandit with a Categorical policy
and a 1-D continuous bandit with a Normal policy. The natural-gradient step solves F x = g by
conjugate gradient, with Fisher-vector products as Hessian-vector products of the mean KL
divergence (torch.autograd.grad with create_graph=True, twice), over flat parameter vectors
(parameters_to_vector / vector_to_parameters), then a backtracking line search under
torch.no_grad that keeps the KL inside the trust region."""

import argparse

import numpy as np
import torch
import torch.nn as nn
from torch.distributions import Categorical, Normal, kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters


class CategoricalPolicy(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, n_actions)
        )

    def forward(self, obs):
        return Categorical(logits=self.net(obs))


class GaussianPolicy(nn.Module):
    def __init__(self, obs_dim, act_dim, hidden=32):
        super().__init__()
        self.mu = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, act_dim))
        self.log_std = nn.Parameter(torch.full((act_dim,), -0.5))

    def forward(self, obs):
        return Normal(self.mu(obs), self.log_std.exp().expand(obs.shape[0], -1))


def flat_grad(y, params, **kwargs):
    grads = torch.autograd.grad(y, params, **kwargs)
    return torch.cat([g.reshape(-1) for g in grads])


def conjugate_gradient(fvp, b, iters=10, residual_tol=1e-10):
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rdotr = torch.dot(r, r)
    for _ in range(iters):
        Ap = fvp(p)
        alpha = rdotr / torch.dot(p, Ap)
        x += alpha * p
        r -= alpha * Ap
        new_rdotr = torch.dot(r, r)
        if new_rdotr < residual_tol:
            break
        p = r + (new_rdotr / rdotr) * p
        rdotr = new_rdotr
    return x


def trpo_step(policy, obs, actions, advantages, max_kl, damping):
    params = list(policy.parameters())
    with torch.no_grad():
        old_dist = policy(obs)
        old_log_prob = old_dist.log_prob(actions)
        if old_log_prob.dim() > 1:
            old_log_prob = old_log_prob.sum(-1)

    def surrogate():
        dist = policy(obs)
        log_prob = dist.log_prob(actions)
        if log_prob.dim() > 1:
            log_prob = log_prob.sum(-1)
        return (torch.exp(log_prob - old_log_prob) * advantages).mean()

    def mean_kl():
        kl = kl_divergence(old_dist, policy(obs))
        return kl.sum(-1).mean() if kl.dim() > 1 else kl.mean()

    def fisher_vector_product(v):
        grads = flat_grad(mean_kl(), params, create_graph=True)
        kl_v = (grads * v).sum()
        return flat_grad(kl_v, params).detach() + damping * v

    loss = surrogate()
    g = flat_grad(loss, params)
    step_dir = conjugate_gradient(fisher_vector_product, g)
    shs = 0.5 * torch.dot(step_dir, fisher_vector_product(step_dir))
    lagrange = torch.sqrt(shs / max_kl)
    full_step = step_dir / lagrange
    expected = torch.dot(g, full_step)

    old_params = parameters_to_vector(params)
    accepted, improve = 0.0, torch.zeros(())
    with torch.no_grad():
        for frac in 0.5 ** torch.arange(10, dtype=torch.float32):
            vector_to_parameters(old_params + frac * full_step, params)
            improve = surrogate() - loss
            kl = mean_kl()
            if kl <= 1.5 * max_kl and improve / (expected * frac) > 0.1 and improve > 0:
                accepted = frac.item()
                break
        else:
            vector_to_parameters(old_params, params)
            improve = torch.zeros(())
    return improve.item(), kl.item(), accepted, g.norm().item()


def bandit_rewards(obs, actions, table):
    # the expected reward of each action depends on which feature is largest
    ctx = obs.argmax(-1)
    return table[ctx, actions]


def run_discrete(args, rng):
    n_ctx, n_actions = 4, 5
    table = torch.from_numpy(rng.uniform(-1.0, 1.0, (n_ctx, n_actions)).astype(np.float32))
    policy = CategoricalPolicy(n_ctx, n_actions)
    for it in range(args.iterations):
        obs = torch.from_numpy(rng.normal(size=(args.batch, n_ctx)).astype(np.float32))
        with torch.no_grad():
            actions = policy(obs).sample()
        rewards = bandit_rewards(obs, actions, table)
        adv = (rewards - rewards.mean()) / (rewards.std() + 1e-8)
        surr, kl, frac, gnorm = trpo_step(policy, obs, actions, adv, args.max_kl, args.damping)
        with torch.no_grad():
            probs = policy(obs).probs
            expected = (probs * table[obs.argmax(-1)]).sum(-1).mean()
            entropy = policy(obs).entropy().mean()
        print(
            f"[categorical] iter {it:02d} surrogate gain loss {surr:.6f} kl loss {kl:.6f} "
            f"reward loss {expected.item():.6f} entropy loss {entropy.item():.6f} step {frac:.4f}"
        )


def run_continuous(args, rng):
    obs_dim = 3
    w_true = torch.from_numpy(rng.normal(size=(obs_dim, 1)).astype(np.float32))
    policy = GaussianPolicy(obs_dim, 1)
    for it in range(args.iterations):
        obs = torch.from_numpy(rng.normal(size=(args.batch, obs_dim)).astype(np.float32))
        with torch.no_grad():
            actions = policy(obs).sample()
        rewards = -((actions - obs @ w_true) ** 2).squeeze(-1)
        adv = (rewards - rewards.mean()) / (rewards.std() + 1e-8)
        surr, kl, frac, gnorm = trpo_step(policy, obs, actions, adv, args.max_kl, args.damping)
        with torch.no_grad():
            mse = nn.functional.mse_loss(policy.mu(obs), obs @ w_true)
        print(
            f"[gaussian] iter {it:02d} surrogate gain loss {surr:.6f} kl loss {kl:.6f} "
            f"mse loss {mse.item():.6f} log_std {policy.log_std.item():.4f} step {frac:.4f}"
        )


def main():
    parser = argparse.ArgumentParser(description="TRPO on toy bandits")
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--max-kl", type=float, default=0.01)
    parser.add_argument("--damping", type=float, default=0.1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    run_discrete(args, rng)
    run_continuous(args, rng)


if __name__ == "__main__":
    main()
