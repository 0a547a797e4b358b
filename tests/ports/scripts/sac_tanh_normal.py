"""Soft Actor-Critic (Haarnoja et al., 2018) on a toy continuous-control task written here in
torch (a point mass pushed towards a goal, vectorized over a few environments): a tanh-squashed
Gaussian policy as torch.distributions.TransformedDistribution(Normal, [TanhTransform(
cache_size=1)]) with rsample and log_prob (the cached inverse gives back the pre-tanh sample),
twin Q networks with target copies (copy.deepcopy, requires_grad_(False)) moved by Polyak
averaging under torch.no_grad (p_targ.data.mul_(tau).add_((1 - tau) * p.data)), a learnable
log-temperature tuned towards a target entropy (or a fixed one: --fixed-alpha), and a replay
buffer of preallocated tensors sampled with torch.randint."""

import argparse
import copy
import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform


class PointMass:
    """Move a point in the plane to the origin; actions are velocities in [-1, 1]^2."""

    def __init__(self, num_envs=4, horizon=25, dt=0.2):
        self.num_envs, self.horizon, self.dt = num_envs, horizon, dt
        self.obs_dim, self.act_dim = 4, 2

    def reset(self):
        self.t = 0
        self.pos = torch.rand(self.num_envs, 2) * 4 - 2
        self.vel = torch.zeros(self.num_envs, 2)
        return self._obs()

    def _obs(self):
        return torch.cat([self.pos, self.vel], dim=-1)

    def step(self, action):
        self.vel = 0.7 * self.vel + 0.3 * action
        self.pos = (self.pos + self.dt * self.vel).clamp(-2.5, 2.5)
        self.t += 1
        dist = self.pos.norm(dim=-1)
        reward = -dist - 0.05 * action.pow(2).sum(-1) + (dist < 0.2).float()
        done = torch.full((self.num_envs,), float(self.t >= self.horizon))
        return self._obs(), reward, done


class ReplayBuffer:
    def __init__(self, obs_dim, act_dim, capacity):
        self.obs = torch.zeros(capacity, obs_dim)
        self.act = torch.zeros(capacity, act_dim)
        self.rew = torch.zeros(capacity)
        self.next_obs = torch.zeros(capacity, obs_dim)
        self.done = torch.zeros(capacity)
        self.capacity, self.ptr, self.size = capacity, 0, 0

    def add(self, obs, act, rew, next_obs, done):
        n = obs.shape[0]
        idx = (torch.arange(n) + self.ptr) % self.capacity
        self.obs[idx], self.act[idx], self.rew[idx] = obs, act, rew
        self.next_obs[idx], self.done[idx] = next_obs, done
        self.ptr = (self.ptr + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size):
        idx = torch.randint(0, self.size, (batch_size,))
        return self.obs[idx], self.act[idx], self.rew[idx], self.next_obs[idx], self.done[idx]


def mlp(d_in, d_out, hidden=64):
    return nn.Sequential(
        nn.Linear(d_in, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, d_out),
    )


class Actor(nn.Module):
    LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0

    def __init__(self, obs_dim, act_dim):
        super().__init__()
        self.body = mlp(obs_dim, 2 * act_dim)

    def forward(self, obs):
        mu, log_std = self.body(obs).chunk(2, dim=-1)
        log_std = torch.tanh(log_std)
        log_std = self.LOG_STD_MIN + 0.5 * (self.LOG_STD_MAX - self.LOG_STD_MIN) * (log_std + 1)
        return TransformedDistribution(Normal(mu, log_std.exp()), [TanhTransform(cache_size=1)])

    def sample(self, obs):
        dist = self(obs)
        action = dist.rsample()
        # NOTE: with cache_size=1 the transform's inverse returns the pre-tanh sample, so the
        # log-probability stays finite where tanh saturates to +-1
        return action, dist.log_prob(action).sum(-1)

    @torch.no_grad()
    def act(self, obs):
        return torch.tanh(self(obs).base_dist.loc)


class QNetwork(nn.Module):
    def __init__(self, obs_dim, act_dim):
        super().__init__()
        self.net = mlp(obs_dim + act_dim, 1)

    def forward(self, obs, act):
        return self.net(torch.cat([obs, act], dim=-1)).squeeze(-1)


def evaluate(env, actor):
    obs, total = env.reset(), torch.zeros(env.num_envs)
    for _ in range(env.horizon):
        obs, reward, _ = env.step(actor.act(obs))
        total += reward
    return total.mean().item()


def main():
    parser = argparse.ArgumentParser(description="SAC on a point-mass task")
    parser.add_argument("--fixed-alpha", action="store_true")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps-per-epoch", type=int, default=25)
    parser.add_argument("--start-steps", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gamma", type=float, default=0.95)
    parser.add_argument("--tau", type=float, default=0.995)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    env = PointMass()
    actor = Actor(env.obs_dim, env.act_dim)
    q1, q2 = QNetwork(env.obs_dim, env.act_dim), QNetwork(env.obs_dim, env.act_dim)
    q1_targ, q2_targ = copy.deepcopy(q1), copy.deepcopy(q2)
    for p in itertools.chain(q1_targ.parameters(), q2_targ.parameters()):
        p.requires_grad_(False)
    q_params = list(itertools.chain(q1.parameters(), q2.parameters()))
    pi_opt = torch.optim.Adam(actor.parameters(), lr=args.lr)
    q_opt = torch.optim.Adam(q_params, lr=args.lr)
    log_alpha = torch.tensor(-1.0, requires_grad=True)
    alpha_opt = torch.optim.Adam([log_alpha], lr=args.lr)
    target_entropy = -float(env.act_dim)
    buffer = ReplayBuffer(env.obs_dim, env.act_dim, capacity=2000)

    def update(obs, act, rew, next_obs, done):
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            next_act, next_logp = actor.sample(next_obs)
            q_next = torch.min(q1_targ(next_obs, next_act), q2_targ(next_obs, next_act))
            backup = rew + args.gamma * (1 - done) * (q_next - alpha * next_logp)
        q_loss = F.mse_loss(q1(obs, act), backup) + F.mse_loss(q2(obs, act), backup)
        q_opt.zero_grad()
        q_loss.backward()
        q_opt.step()

        for p in q_params:  # the policy step must not leave gradients on the critics
            p.requires_grad_(False)
        new_act, logp = actor.sample(obs)
        q_pi = torch.min(q1(obs, new_act), q2(obs, new_act))
        pi_loss = (alpha * logp - q_pi).mean()
        pi_opt.zero_grad()
        pi_loss.backward()
        pi_opt.step()
        for p in q_params:
            p.requires_grad_(True)

        alpha_loss = torch.zeros(())
        if not args.fixed_alpha:
            alpha_loss = -(log_alpha * (logp.detach() + target_entropy)).mean()
            alpha_opt.zero_grad()
            alpha_loss.backward()
            alpha_opt.step()

        with torch.no_grad():
            for net, targ in ((q1, q1_targ), (q2, q2_targ)):
                for p, p_targ in zip(net.parameters(), targ.parameters()):
                    p_targ.data.mul_(args.tau).add_((1 - args.tau) * p.data)
        return q_loss.item(), pi_loss.item(), alpha_loss.item(), -logp.mean().item()

    obs = env.reset()
    for epoch in range(args.epochs):
        stats = []
        for step in range(args.steps_per_epoch):
            if epoch * args.steps_per_epoch + step < args.start_steps:
                act = torch.rand(env.num_envs, env.act_dim) * 2 - 1
            else:
                with torch.no_grad():
                    act, _ = actor.sample(obs)
            next_obs, rew, done = env.step(act)
            buffer.add(obs, act, rew, next_obs, done)
            obs = env.reset() if done[0] else next_obs
            if buffer.size >= args.batch_size:
                stats.append(update(*buffer.sample(args.batch_size)))
        q_loss, pi_loss, alpha_loss, entropy = torch.tensor(stats).mean(0).tolist()
        print(
            f"epoch {epoch} critic loss {q_loss:.6f} actor loss {pi_loss:.6f} "
            f"alpha loss {alpha_loss:.6f} alpha {log_alpha.exp().item():.4f} "
            f"entropy {entropy:.4f}"
        )
    ret = evaluate(PointMass(num_envs=8), actor)
    print(f"eval return {ret:.4f}")


if __name__ == "__main__":
    main()
