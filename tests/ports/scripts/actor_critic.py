"""Actor-critic with a Gaussian policy (Normal) on a 1-D reach task written with NumPy."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal


class ActorCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(2, 16)
        self.mu = nn.Linear(16, 1)
        self.log_std = nn.Parameter(torch.zeros(1))
        self.value = nn.Linear(16, 1)

    def forward(self, x):
        h = torch.tanh(self.body(x))
        return self.mu(h), self.log_std.exp().expand(x.size(0), 1), self.value(h)


def main():
    model = ActorCritic()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    gamma = 0.9
    for episode in range(10):
        pos, goal = 0.0, 1.0
        log_probs, values, rewards, entropies = [], [], [], []
        for _t in range(8):
            state = torch.tensor([[pos, goal - pos]])
            mu, std, value = model(state)
            dist = Normal(mu, std)
            action = dist.sample()
            log_probs.append(dist.log_prob(action).sum())
            entropies.append(dist.entropy().sum())
            values.append(value.squeeze())
            pos = pos + float(action.clamp(-0.5, 0.5))
            rewards.append(-abs(goal - pos))
        R, returns = 0.0, []
        for r in reversed(rewards):
            R = r + gamma * R
            returns.insert(0, R)
        returns = torch.tensor(returns)
        values = torch.stack(values)
        advantage = returns - values.detach()
        policy_loss = -(torch.stack(log_probs) * advantage).sum()
        value_loss = F.smooth_l1_loss(values, returns)
        loss = policy_loss + value_loss - 0.01 * torch.stack(entropies).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"episode {episode} return {sum(rewards):.4f} loss {loss.item():.5f}")


if __name__ == "__main__":
    main()
