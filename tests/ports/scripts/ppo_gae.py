"""Proximal Policy Optimization (Schulman et al., 2017) with generalized advantage estimation,
in the single-file style of CleanRL's ppo.py / ppo_continuous_action.py: a vectorized toy
environment written with NumPy, a Categorical policy and a Gaussian (Normal) policy, the
clipped surrogate with torch.clamp / torch.min, value clipping, advantage normalisation,
minibatches from torch.randperm, gradient clipping and a linearly annealed learning rate."""

import argparse

import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical
from torch.distributions.normal import Normal


class ReachEnvs:
    """N copies of a 1-D reach task: move a point to a goal; reward is minus the distance.

    Discrete actions move by -0.2, 0 or +0.2; continuous actions by the clipped value."""

    def __init__(self, num_envs, continuous, seed, max_steps=16):
        self.rng = np.random.default_rng(seed)
        self.n, self.continuous, self.max_steps = num_envs, continuous, max_steps
        self.pos = np.zeros(num_envs)
        self.goal = np.zeros(num_envs)
        self.t = np.zeros(num_envs, dtype=np.int64)

    def _obs(self):
        return np.stack([self.pos, self.goal - self.pos], axis=1).astype(np.float32)

    def _reset(self, idx):
        self.pos[idx] = self.rng.uniform(-1.0, 1.0, size=len(idx))
        self.goal[idx] = self.rng.uniform(-1.0, 1.0, size=len(idx))
        self.t[idx] = 0

    def reset(self):
        self._reset(np.arange(self.n))
        return self._obs()

    def step(self, action):
        if self.continuous:
            delta = np.clip(action[:, 0], -0.3, 0.3)
        else:
            delta = (action - 1) * 0.2
        self.pos = self.pos + delta
        self.t += 1
        dist = np.abs(self.goal - self.pos)
        reward = -dist + 1.0 * (dist < 0.1)
        done = (dist < 0.1) | (self.t >= self.max_steps)
        self._reset(np.nonzero(done)[0])
        return self._obs(), reward.astype(np.float32), done


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):  # noqa: B008 - CleanRL's signature
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, obs_dim, n_actions, continuous):
        super().__init__()
        self.continuous = continuous
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 32)),
            nn.Tanh(),
            layer_init(nn.Linear(32, 32)),
            nn.Tanh(),
            layer_init(nn.Linear(32, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 32)),
            nn.Tanh(),
            layer_init(nn.Linear(32, 32)),
            nn.Tanh(),
            layer_init(nn.Linear(32, n_actions), std=0.01),
        )
        if continuous:
            self.actor_logstd = nn.Parameter(torch.zeros(1, n_actions))

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        if self.continuous:
            action_mean = self.actor(x)
            action_logstd = self.actor_logstd.expand_as(action_mean)
            probs = Normal(action_mean, torch.exp(action_logstd))
            if action is None:
                action = probs.sample()
            return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


def train(args, continuous, tag):
    envs = ReachEnvs(args.num_envs, continuous, seed=0)
    act_shape = (1,) if continuous else ()
    agent = Agent(2, 1 if continuous else 3, continuous)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    obs = torch.zeros((args.num_steps, args.num_envs, 2))
    actions = torch.zeros((args.num_steps, args.num_envs) + act_shape)
    logprobs = torch.zeros((args.num_steps, args.num_envs))
    rewards = torch.zeros((args.num_steps, args.num_envs))
    dones = torch.zeros((args.num_steps, args.num_envs))
    values = torch.zeros((args.num_steps, args.num_envs))

    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    next_obs = torch.Tensor(envs.reset())
    next_done = torch.zeros(args.num_envs)

    for update in range(1, args.num_updates + 1):
        frac = 1.0 - (update - 1.0) / args.num_updates
        optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(args.num_steps):
            obs[step] = next_obs
            dones[step] = next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob
            next_obs, reward, done = envs.step(action.cpu().numpy())
            rewards[step] = torch.tensor(reward).view(-1)
            next_obs, next_done = torch.Tensor(next_obs), torch.Tensor(done)

        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = (
                    delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
                )
            returns = advantages + values

        b_obs = obs.reshape((-1, 2))
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape((-1,) + act_shape)
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_values = values.reshape(-1)

        clipfracs = []
        for _epoch in range(args.update_epochs):
            b_inds = torch.randperm(batch_size)
            for start in range(0, batch_size, minibatch_size):
                mb_inds = b_inds[start : start + minibatch_size]
                mb_actions = b_actions[mb_inds] if continuous else b_actions.long()[mb_inds]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb_inds], mb_actions
                )
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean().item())

                mb_advantages = b_advantages[mb_inds]
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (
                    mb_advantages.std() + 1e-8
                )
                surr1 = ratio * mb_advantages
                surr2 = torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef) * mb_advantages
                pg_loss = -torch.min(surr1, surr2).mean()

                newvalue = newvalue.view(-1)
                v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                v_clipped = b_values[mb_inds] + torch.clamp(
                    newvalue - b_values[mb_inds], -args.clip_coef, args.clip_coef
                )
                v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
        var_y = np.var(y_true)
        explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y
        print(
            f"[{tag}] update {update} reward {rewards.mean().item():.4f} "
            f"value_loss {v_loss.item():.5f} policy_loss {pg_loss.item():.5f} "
            f"entropy_loss {entropy_loss.item():.5f} approx_kl {approx_kl.item():.5f} "
            f"clipfrac {np.mean(clipfracs):.4f} explained variance {explained_var:.4f}"
        )


def main():
    parser = argparse.ArgumentParser(description="PPO with GAE on a toy reach task")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--num-steps", type=int, default=16)
    parser.add_argument("--num-updates", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--gamma", type=float, default=0.95)
    parser.add_argument("--gae-lambda", type=float, default=0.9)
    parser.add_argument("--num-minibatches", type=int, default=4)
    parser.add_argument("--update-epochs", type=int, default=3)
    parser.add_argument("--clip-coef", type=float, default=0.2)
    parser.add_argument("--ent-coef", type=float, default=0.01)
    parser.add_argument("--vf-coef", type=float, default=0.5)
    parser.add_argument("--max-grad-norm", type=float, default=0.5)
    args = parser.parse_args()
    train(args, continuous=False, tag="discrete")
    train(args, continuous=True, tag="continuous")


if __name__ == "__main__":
    main()
