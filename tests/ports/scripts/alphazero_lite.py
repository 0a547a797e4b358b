"""A tiny AlphaZero (Silver et al., 2017) for tic-tac-toe: a policy/value network, a
PUCT Monte Carlo tree search in plain Python guided by the network under torch.no_grad
(softmax over legal moves only), self-play with moves drawn by torch.multinomial from the
visit counts, and training with cross-entropy to the visit distribution plus an MSE value
loss, with the board's eight symmetries as augmentation."""

import argparse
import math
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--iterations", type=int, default=3)
parser.add_argument("--games", type=int, default=4)
parser.add_argument("--simulations", type=int, default=16)
parser.add_argument("--temperature", type=float, default=1.0)
args = parser.parse_args()

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


class TicTacToe:
    """Board of 9 cells holding +1 (player to move made it), -1 or 0, from the mover's view."""

    @staticmethod
    def initial():
        return np.zeros(9, dtype=np.int8)

    @staticmethod
    def legal(board):
        return board == 0

    @staticmethod
    def play(board, move):
        nxt = board.copy()
        nxt[move] = 1
        return -nxt  # flip to the next mover's view

    @staticmethod
    def outcome(board):
        """From the view of the player to move: -1 if the previous mover won, 0 draw, None."""
        for a, b, c in LINES:
            s = board[a] + board[b] + board[c]
            if s == -3:
                return -1.0
            if s == 3:
                return 1.0
        if not (board == 0).any():
            return 0.0
        return None

    @staticmethod
    def encode(board):
        return (
            np.stack([board == 1, board == -1, np.ones(9, bool)])
            .astype(np.float32)
            .reshape(3, 3, 3)
        )


class PolicyValueNet(nn.Module):
    def __init__(self, channels=32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
        )  # fmt: skip
        self.policy_head = nn.Sequential(nn.Conv2d(channels, 2, 1), nn.Flatten(), nn.Linear(18, 9))
        self.value_head = nn.Sequential(
            nn.Conv2d(channels, 1, 1), nn.Flatten(), nn.Linear(9, 32), nn.ReLU(), nn.Linear(32, 1),
            nn.Tanh(),
        )  # fmt: skip

    def forward(self, x):
        h = self.body(x)
        return self.policy_head(h), self.value_head(h).squeeze(-1)


class Node:
    def __init__(self, prior):
        self.prior = prior
        self.visits = 0
        self.value_sum = 0.0
        self.children = {}

    def value(self):
        return self.value_sum / self.visits if self.visits else 0.0


class MCTS:
    def __init__(self, net, simulations, c_puct=1.5):
        self.net, self.simulations, self.c_puct = net, simulations, c_puct

    @torch.no_grad()
    def evaluate(self, board):
        x = torch.from_numpy(TicTacToe.encode(board)).unsqueeze(0)
        logits, value = self.net(x)
        legal = torch.from_numpy(TicTacToe.legal(board))
        logits = logits[0].masked_fill(~legal, float("-inf"))
        return F.softmax(logits, dim=-1), value.item()

    def expand(self, node, board):
        priors, value = self.evaluate(board)
        for move in np.flatnonzero(TicTacToe.legal(board)):
            node.children[int(move)] = Node(priors[move].item())
        return value

    def select(self, node):
        sqrt_n = math.sqrt(node.visits)
        best, best_score = None, -float("inf")
        for move, child in node.children.items():
            # a child's value is from its mover's view: negate for the parent
            u = self.c_puct * child.prior * sqrt_n / (1 + child.visits)
            score = -child.value() + u
            if score > best_score:
                best, best_score = move, score
        return best

    def run(self, board):
        root = Node(1.0)
        self.expand(root, board)
        for _ in range(self.simulations):
            node, b, path = root, board, [root]
            while node.children:
                move = self.select(node)
                node = node.children[move]
                b = TicTacToe.play(b, move)
                path.append(node)
            value = TicTacToe.outcome(b)
            if value is None:
                value = self.expand(node, b)
            for n in reversed(path):
                n.visits += 1
                n.value_sum += value
                value = -value
        counts = torch.zeros(9)
        for move, child in root.children.items():
            counts[move] = child.visits
        return counts


def self_play(net, n_games, simulations, temperature):
    net.eval()
    mcts = MCTS(net, simulations)
    examples = []
    for _ in range(n_games):
        board, history = TicTacToe.initial(), []
        while TicTacToe.outcome(board) is None:
            counts = mcts.run(board)
            pi = counts ** (1.0 / temperature)
            pi = pi / pi.sum()
            history.append((board, pi))
            move = torch.multinomial(pi, 1).item()
            board = TicTacToe.play(board, move)
        z = TicTacToe.outcome(board)
        # z is from the view of the player to move at the end; walk back alternating signs
        for board_t, pi_t in reversed(history):
            z = -z
            examples.append((board_t, pi_t, z))
    return examples


def augment(examples):
    """The 8 symmetries of the square applied to boards and visit distributions."""
    boards, pis, zs = [], [], []
    for board, pi, z in examples:
        b = torch.from_numpy(TicTacToe.encode(board))
        p = pi.view(3, 3)
        for k in range(4):
            for flip in (False, True):
                bb, pp = torch.rot90(b, k, (1, 2)), torch.rot90(p, k, (0, 1))
                if flip:
                    bb, pp = torch.flip(bb, (2,)), torch.flip(pp, (1,))
                boards.append(bb)
                pis.append(pp.reshape(9))
                zs.append(z)
    return torch.stack(boards), torch.stack(pis), torch.tensor(zs, dtype=torch.float32)


random.seed(0)
np.random.seed(0)
net = PolicyValueNet()
optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

for it in range(args.iterations):
    examples = self_play(net, args.games, args.simulations, args.temperature)
    boards, pis, zs = augment(examples)
    loader = DataLoader(TensorDataset(boards, pis, zs), batch_size=64, shuffle=True)
    net.train()
    total_p, total_v, n = 0.0, 0.0, 0
    for _epoch in range(2):
        for b, pi, z in loader:
            logits, v = net(b)
            policy_loss = torch.sum(-pi * F.log_softmax(logits, dim=1), dim=1).mean()
            value_loss = F.mse_loss(v, z)
            loss = policy_loss + value_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_p += policy_loss.item()
            total_v += value_loss.item()
            n += 1
    scheduler.step()
    print(f"iteration {it} examples {len(examples)} policy loss {total_p / n:.5f} "
          f"value loss {total_v / n:.5f}")  # fmt: skip

# the trained net's MCTS on a position where X must block
board = np.array([1, 1, 0, 0, -1, 0, 0, 0, -1], dtype=np.int8) * -1
counts = MCTS(net.eval(), 32).run(board)
print("visit counts", counts.int().tolist())
