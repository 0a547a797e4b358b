"""A Dreamer-style world model (Hafner et al., 2019-2020) on a toy point-mass environment:
an RSSM with a GRUCell deterministic state and Normal prior and posterior stochastic
states (softplus standard deviations, wrapped in Independent), KL balancing with the
posterior or the prior detached on either side, then imagination rollouts of a tanh-Normal
policy inside the model, with lambda-returns computed backwards for actor and critic."""

import argparse

import numpy as np
import torch
import torch.distributions as td
import torch.nn as nn
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--kl-balance", type=float, default=0.8)
parser.add_argument("--free-nats", type=float, default=0.5)
args = parser.parse_args()

OBS, ACT, DETER, STOCH, HID = 4, 1, 32, 8, 32
HORIZON, GAMMA, LAMBDA = 6, 0.95, 0.9


class RSSM(nn.Module):
    def __init__(self):
        super().__init__()
        self.img_in = nn.Sequential(nn.Linear(STOCH + ACT, HID), nn.ELU())
        self.cell = nn.GRUCell(HID, DETER)
        self.prior_net = nn.Sequential(nn.Linear(DETER, HID), nn.ELU(), nn.Linear(HID, 2 * STOCH))
        self.post_net = nn.Sequential(
            nn.Linear(DETER + HID, HID), nn.ELU(), nn.Linear(HID, 2 * STOCH)
        )

    def initial(self, batch):
        return dict(
            mean=torch.zeros(batch, STOCH), std=torch.zeros(batch, STOCH),
            stoch=torch.zeros(batch, STOCH), deter=torch.zeros(batch, DETER),
        )  # fmt: skip

    @staticmethod
    def _stats(x):
        mean, std = torch.chunk(x, 2, dim=-1)
        return mean, F.softplus(std) + 0.1

    def get_dist(self, state):
        return td.Independent(td.Normal(state["mean"], state["std"]), 1)

    def img_step(self, prev_state, prev_action):
        x = self.img_in(torch.cat([prev_state["stoch"], prev_action], -1))
        deter = self.cell(x, prev_state["deter"])
        mean, std = self._stats(self.prior_net(deter))
        stoch = self.get_dist(dict(mean=mean, std=std)).rsample()
        return dict(mean=mean, std=std, stoch=stoch, deter=deter)

    def obs_step(self, prev_state, prev_action, embed):
        prior = self.img_step(prev_state, prev_action)
        mean, std = self._stats(self.post_net(torch.cat([prior["deter"], embed], -1)))
        stoch = self.get_dist(dict(mean=mean, std=std)).rsample()
        post = dict(mean=mean, std=std, stoch=stoch, deter=prior["deter"])
        return post, prior

    def observe(self, embed, action):
        # embed: (T, B, HID), action: (T, B, ACT)
        state = self.initial(embed.shape[1])
        posts, priors = [], []
        for t in range(embed.shape[0]):
            state, prior = self.obs_step(state, action[t], embed[t])
            posts.append(state)
            priors.append(prior)
        stack = lambda seq: {k: torch.stack([s[k] for s in seq], 0) for k in seq[0]}  # noqa: E731
        return stack(posts), stack(priors)

    def kl_loss(self, post, prior, balance, free):
        sg = lambda s: {k: v.detach() for k, v in s.items()}  # noqa: E731
        kl_lhs = td.kl_divergence(self.get_dist(sg(post)), self.get_dist(prior))
        kl_rhs = td.kl_divergence(self.get_dist(post), self.get_dist(sg(prior)))
        loss_lhs = torch.clamp(kl_lhs.mean(), min=free)
        loss_rhs = torch.clamp(kl_rhs.mean(), min=free)
        return balance * loss_lhs + (1 - balance) * loss_rhs, kl_lhs.mean()


def feat(state):
    return torch.cat([state["stoch"], state["deter"]], -1)


def mlp(inp, out):
    return nn.Sequential(nn.Linear(inp, HID), nn.ELU(), nn.Linear(HID, HID), nn.ELU(),
                         nn.Linear(HID, out))  # fmt: skip


class Actor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp(STOCH + DETER, 2 * ACT)

    def forward(self, f):
        mean, std = self.net(f).chunk(2, -1)
        std = 2 * torch.sigmoid(std / 2) + 0.1
        dist = td.Normal(torch.tanh(mean), std)
        return td.Independent(dist, 1)


def lambda_return(reward, value, bootstrap, discount, lambda_):
    # reward, value, discount: (H, B); bootstrap: (B,)
    next_values = torch.cat([value[1:], bootstrap[None]], 0)
    inputs = reward + discount * next_values * (1 - lambda_)
    outputs = []
    last = bootstrap
    for t in reversed(range(reward.shape[0])):
        last = inputs[t] + discount[t] * lambda_ * last
        outputs.append(last)
    return torch.stack(list(reversed(outputs)), 0)


def collect(n_episodes, length, rng):
    """A damped point mass pushed by random forces; reward is closeness to the origin."""
    obs = np.zeros((length, n_episodes, OBS), np.float32)
    act = rng.uniform(-1, 1, size=(length, n_episodes, ACT)).astype(np.float32)
    rew = np.zeros((length, n_episodes), np.float32)
    x = rng.normal(size=n_episodes)
    v = np.zeros(n_episodes)
    for t in range(length):
        v = 0.9 * v + 0.2 * act[t, :, 0]
        x = x + 0.2 * v
        obs[t] = np.stack([x, v, np.sin(x), np.cos(x)], -1)
        rew[t] = -(x**2)
    return torch.tensor(obs), torch.tensor(act), torch.tensor(rew)


rng = np.random.default_rng(0)
obs_all, act_all, rew_all = collect(32, 10, rng)

rssm = RSSM()
encoder = nn.Sequential(nn.Linear(OBS, HID), nn.ELU())
decoder = mlp(STOCH + DETER, OBS)
reward_head = mlp(STOCH + DETER, 1)
actor, critic = Actor(), mlp(STOCH + DETER, 1)
world_params = [*rssm.parameters(), *encoder.parameters(), *decoder.parameters(),
                *reward_head.parameters()]  # fmt: skip
model_opt = torch.optim.Adam(world_params, lr=3e-3, eps=1e-5)
actor_opt = torch.optim.Adam(actor.parameters(), lr=1e-3, eps=1e-5)
critic_opt = torch.optim.Adam(critic.parameters(), lr=1e-3, eps=1e-5)

for epoch in range(args.epochs):
    for start in range(0, 32, 16):
        obs, act, rew = obs_all[:, start:start + 16], act_all[:, start:start + 16], rew_all[:, start:start + 16]  # fmt: skip
        # actions are taken before the observation they lead to
        prev_act = torch.cat([torch.zeros_like(act[:1]), act[:-1]], 0)
        post, prior = rssm.observe(encoder(obs), prev_act)
        f = feat(post)
        obs_dist = td.Independent(td.Normal(decoder(f), 1.0), 1)
        rew_dist = td.Normal(reward_head(f).squeeze(-1), 1.0)
        recon = -obs_dist.log_prob(obs).mean()
        rew_loss = -rew_dist.log_prob(rew).mean()
        kl, kl_value = rssm.kl_loss(post, prior, args.kl_balance, args.free_nats)
        model_loss = recon + rew_loss + kl
        model_opt.zero_grad()
        model_loss.backward()
        nn.utils.clip_grad_norm_(world_params, 100.0)
        model_opt.step()

        # imagination from every posterior state, world model frozen
        for p in world_params:
            p.requires_grad_(False)
        start_state = {k: v.detach().reshape(-1, v.shape[-1]) for k, v in post.items()}
        state, feats, entropies = start_state, [], []
        for _ in range(HORIZON):
            feats.append(feat(state))
            policy = actor(feats[-1].detach())
            action = policy.rsample().clamp(-1, 1)
            entropies.append(policy.entropy())
            state = rssm.img_step(state, action)
        feats.append(feat(state))
        imag_feat = torch.stack(feats, 0)
        imag_reward = reward_head(imag_feat[1:]).squeeze(-1)
        value = critic(imag_feat).squeeze(-1)
        discount = GAMMA * torch.ones_like(imag_reward)
        returns = lambda_return(imag_reward, value[:-1], value[-1], discount, LAMBDA)
        weights = torch.cumprod(torch.cat([torch.ones_like(discount[:1]), discount[:-1]], 0), 0).detach()  # fmt: skip
        actor_loss = -(weights * (returns + 1e-3 * torch.stack(entropies, 0))).mean()
        actor_opt.zero_grad()
        actor_loss.backward()
        nn.utils.clip_grad_norm_(actor.parameters(), 100.0)
        actor_opt.step()
        for p in world_params:
            p.requires_grad_(True)

        value_pred = critic(imag_feat[:-1].detach()).squeeze(-1)
        critic_loss = (weights * 0.5 * (value_pred - returns.detach()) ** 2).mean()
        critic_opt.zero_grad()
        critic_loss.backward()
        nn.utils.clip_grad_norm_(critic.parameters(), 100.0)
        critic_opt.step()
    print(f"epoch {epoch} model loss {model_loss.item():.5f} kl {kl_value.item():.5f} "
          f"actor loss {actor_loss.item():.5f} critic loss {critic_loss.item():.5f}")  # fmt: skip
