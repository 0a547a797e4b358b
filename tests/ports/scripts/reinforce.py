"""REINFORCE with a Categorical policy (after pytorch/examples: reinforcement_learning),
on a small corridor world written with NumPy in place of gym."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical


class Corridor:
    """Walk left/right on 6 cells; reward 1 at the right end, episodes of at most 12 steps."""

    def reset(self):
        self.pos, self.t = 0, 0
        return self._obs()

    def _obs(self):
        o = np.zeros(6, np.float32)
        o[self.pos] = 1
        return o

    def step(self, action):
        self.pos = int(np.clip(self.pos + (1 if action == 1 else -1), 0, 5))
        self.t += 1
        done = self.pos == 5 or self.t >= 12
        return self._obs(), float(self.pos == 5), done


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.affine1 = nn.Linear(6, 16)
        self.affine2 = nn.Linear(16, 2)
        self.saved_log_probs = []
        self.rewards = []

    def forward(self, x):
        x = F.relu(self.affine1(x))
        action_scores = self.affine2(x)
        return F.softmax(action_scores, dim=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--episodes", type=int, default=12)
    args = parser.parse_args()
    env = Corridor()
    policy = Policy()
    optimizer = optim.Adam(policy.parameters(), lr=3e-2)
    eps = np.finfo(np.float32).eps.item()

    def select_action(state):
        state = torch.from_numpy(state).float().unsqueeze(0)
        probs = policy(state)
        m = Categorical(probs)
        action = m.sample()
        policy.saved_log_probs.append(m.log_prob(action))
        return action.item()

    for i_episode in range(args.episodes):
        state, ep_reward = env.reset(), 0
        done = False
        while not done:
            action = select_action(state)
            state, reward, done = env.step(action)
            policy.rewards.append(reward)
            ep_reward += reward
        R = 0
        policy_loss = []
        returns = []
        for r in policy.rewards[::-1]:
            R = r + args.gamma * R
            returns.insert(0, R)
        returns = torch.tensor(returns)
        returns = (returns - returns.mean()) / (returns.std() + eps)
        for log_prob, R in zip(policy.saved_log_probs, returns):
            policy_loss.append(-log_prob * R)
        optimizer.zero_grad()
        policy_loss = torch.cat(policy_loss).sum()
        policy_loss.backward()
        optimizer.step()
        print(f"Episode {i_episode}\tsteps {len(policy.rewards)}\tloss {policy_loss.item():.5f}")
        del policy.rewards[:]
        del policy.saved_log_probs[:]


if __name__ == "__main__":
    main()
