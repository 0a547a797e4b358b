"""Child-sum Tree-LSTM (Tai et al., 2015) for node-level "sentiment" on random trees whose
leaves carry signed word ids: a node's label is the sign of its subtree's score (negative,
neutral, positive), as in the Stanford Sentiment Treebank. A batch of trees is flattened
into one node array and evaluated bottom-up, one depth level at a time: children's hidden
states are summed into their parents with index_add (or averaged with scatter_reduce
"mean"), per-child forget gates are applied before the memory cells are added up, and the
new states are written with index_copy so that autograd follows every level. nn.Embedding
with padding_idx for inner nodes, CrossEntropyLoss over all nodes and over roots, Adagrad."""

import argparse
import random

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 24  # word ids 1..23; 0 pads inner nodes


def random_tree(rng, max_leaves=9):
    """Nodes as (parent, word); leaves only carry words; returns parents, words, labels."""
    n_leaves = rng.randint(3, max_leaves)
    nodes = [[-1, rng.randint(1, VOCAB - 1)] for _ in range(n_leaves)]
    frontier = list(range(n_leaves))
    while len(frontier) > 1:
        k = min(len(frontier), rng.choice([2, 2, 3]))
        picked = [frontier.pop(rng.randrange(len(frontier))) for _ in range(k)]
        nodes.append([-1, 0])
        for child in picked:
            nodes[child][0] = len(nodes) - 1
        frontier.append(len(nodes) - 1)
    parents = [p for p, _ in nodes]
    words = [w for _, w in nodes]
    # word polarity: ids below the middle are negative, weighted by distance from it
    score = [(w - VOCAB // 2) / 4 if w else 0.0 for w in words]
    for i in range(len(nodes)):  # children always come before their parents
        if parents[i] >= 0:
            score[parents[i]] += score[i]
    labels = [0 if s < -0.5 else 2 if s > 0.5 else 1 for s in score]
    return parents, words, labels


def batch_trees(trees):
    """Concatenate trees; depth levels (leaves first) and global parent indices."""
    parents, words, labels, roots, depth = [], [], [], [], []
    for tree_parents, tree_words, tree_labels in trees:
        offset = len(parents)
        local_depth = [0] * len(tree_parents)
        for i, p in enumerate(tree_parents):
            if p >= 0:
                local_depth[p] = max(local_depth[p], local_depth[i] + 1)
        parents += [p + offset if p >= 0 else -1 for p in tree_parents]
        words += tree_words
        labels += tree_labels
        depth += local_depth
        roots.append(offset + len(tree_parents) - 1)
    return (torch.tensor(parents), torch.tensor(words), torch.tensor(labels),
            torch.tensor(roots), torch.tensor(depth))  # fmt: skip


class ChildSumTreeLSTM(nn.Module):
    def __init__(self, embed_dim=16, hidden=32, num_classes=3, aggregate="sum"):
        super().__init__()
        self.hidden = hidden
        self.aggregate = aggregate
        self.embed = nn.Embedding(VOCAB, embed_dim, padding_idx=0)
        self.W_iou = nn.Linear(embed_dim, 3 * hidden)
        self.U_iou = nn.Linear(hidden, 3 * hidden, bias=False)
        self.W_f = nn.Linear(embed_dim, hidden)
        self.U_f = nn.Linear(hidden, hidden, bias=False)
        self.classify = nn.Linear(hidden, num_classes)

    def forward(self, parents, words, depth):
        n = len(words)
        x = self.embed(words)
        h = x.new_zeros(n, self.hidden)
        c = x.new_zeros(n, self.hidden)
        for level in range(int(depth.max()) + 1):
            nodes = torch.nonzero(depth == level).squeeze(1)
            children = torch.nonzero((parents >= 0) & (depth < level)).squeeze(1)
            children = children[depth[parents[children]] == level]
            slot = torch.searchsorted(nodes, parents[children])  # parent's row among nodes
            h_kids = h[children]
            if self.aggregate == "sum":
                h_sum = x.new_zeros(len(nodes), self.hidden).index_add(0, slot, h_kids)
            else:
                h_sum = x.new_zeros(len(nodes), self.hidden).scatter_reduce(
                    0, slot[:, None].expand_as(h_kids), h_kids, "mean", include_self=False
                )
            xs = x[nodes]
            i, o, u = (self.W_iou(xs) + self.U_iou(h_sum)).chunk(3, dim=-1)
            i, o, u = torch.sigmoid(i), torch.sigmoid(o), torch.tanh(u)
            f = torch.sigmoid(self.W_f(xs)[slot] + self.U_f(h_kids))
            fc = x.new_zeros(len(nodes), self.hidden).index_add(0, slot, f * c[children])
            c_new = i * u + fc
            h_new = o * torch.tanh(c_new)
            c = c.index_copy(0, nodes, c_new)
            h = h.index_copy(0, nodes, h_new)
        return self.classify(h)


def main():
    parser = argparse.ArgumentParser(description="Child-sum Tree-LSTM")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--aggregate", default="sum", choices=["sum", "mean"])
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    rng = random.Random(0)
    trees = [random_tree(rng) for _ in range(160)]
    train, test = trees[:128], trees[128:]
    model = ChildSumTreeLSTM(aggregate=args.aggregate)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.05, weight_decay=1e-4)
    test_batch = batch_trees(test)

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for start in range(0, len(train), args.batch_size):
            parents, words, labels, roots, depth = batch_trees(
                train[start : start + args.batch_size]
            )
            logits = model(parents, words, depth)
            loss = F.cross_entropy(logits, labels) + 0.5 * F.cross_entropy(
                logits[roots], labels[roots]
            )
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            parents, words, labels, roots, depth = test_batch
            logits = model(parents, words, depth)
            node_loss = F.cross_entropy(logits, labels).item()
            node_acc = (logits.argmax(1) == labels).float().mean().item()
            root_acc = (logits[roots].argmax(1) == labels[roots]).float().mean().item()
        print(
            f"epoch {epoch} train loss {total / (len(train) // args.batch_size):.6f} "
            f"test node loss {node_loss:.6f} node acc {node_acc:.3f} root acc {root_acc:.3f}"
        )


if __name__ == "__main__":
    main()
