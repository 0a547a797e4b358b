"""Magnitude pruning of a small CNN with torch.nn.utils.prune (after the PyTorch pruning
tutorial): train, then prune whole conv filters by their L2 norm (ln_structured), prune the
remaining weights of all layers together by global magnitude (global_unstructured with
L1Unstructured, stacked into a PruningContainer), prune biases by count (l1_unstructured with
an int amount) and by a custom BasePruningMethod, fine-tune through the weight_orig/weight_mask
reparametrization, round-trip the masks through a state dict, report sparsity, and make the
pruning permanent with prune.remove."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch.utils.data import DataLoader, TensorDataset


class ThresholdPruning(prune.BasePruningMethod):
    """Prune every entry whose magnitude is below a fixed threshold."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, threshold):
        self.threshold = threshold

    def compute_mask(self, t, default_mask):
        return default_mask * (t.abs() > self.threshold)


class LeNet(nn.Module):
    def __init__(self, n_classes=4):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, n_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.adaptive_avg_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


def make_bars(rng, n, size=8):
    """Images of a horizontal, vertical, diagonal or anti-diagonal bar, with noise."""
    labels = rng.integers(0, 4, n)
    images = 0.3 * rng.standard_normal((n, 1, size, size)).astype(np.float32)
    for i, c in enumerate(labels):
        k = rng.integers(1, size - 1)
        if c == 0:
            images[i, 0, k, :] += 1.0
        elif c == 1:
            images[i, 0, :, k] += 1.0
        elif c == 2:
            images[i, 0] += np.eye(size, k=int(k) - size // 2, dtype=np.float32)
        else:
            images[i, 0] += np.fliplr(np.eye(size, k=int(k) - size // 2, dtype=np.float32))
    return torch.from_numpy(images), torch.from_numpy(labels)


def run_epoch(model, loader, criterion, optimizer=None):
    model.train(optimizer is not None)
    total, correct, count = 0.0, 0, 0
    for x, y in loader:
        with torch.set_grad_enabled(optimizer is not None):
            logits = model(x)
            loss = criterion(logits, y)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return total / count, correct / count


def sparsity(module, name="weight"):
    t = getattr(module, name)
    return float(torch.sum(t == 0)) / t.nelement()


def report(model, tag):
    layers = [model.conv1, model.conv2, model.fc1, model.fc2]
    zeros = sum(float(torch.sum(m.weight == 0)) for m in layers)
    total = sum(m.weight.nelement() for m in layers)
    per_layer = " ".join(f"{sparsity(m):.3f}" for m in layers)
    print(f"{tag}: layer sparsity {per_layer} global {zeros / total:.3f}")


def main():
    parser = argparse.ArgumentParser(description="global magnitude pruning")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--amount", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--finetune-lr", type=float, default=0.05)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train = TensorDataset(*make_bars(rng, 256))
    test = TensorDataset(*make_bars(rng, 128))
    train_loader = DataLoader(train, batch_size=32, shuffle=True)
    test_loader = DataLoader(test, batch_size=64)

    model = LeNet()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        train_loss, _ = run_epoch(model, train_loader, criterion, optimizer)
        test_loss, acc = run_epoch(model, test_loader, criterion)
        print(f"epoch {epoch} train loss {train_loss:.6f} test loss {test_loss:.6f} acc {acc:.3f}")

    # drop a quarter of conv2's filters by their L2 norm (dim 0 = output channels)
    prune.ln_structured(model.conv2, name="weight", amount=0.25, n=2, dim=0)
    dead = (model.conv2.weight_mask.sum(dim=(1, 2, 3)) == 0).sum().item()
    print(f"conv2 filters removed {dead} buffers {[n for n, _ in model.conv2.named_buffers()]}")

    to_prune = [(m, "weight") for m in (model.conv1, model.conv2, model.fc1, model.fc2)]
    finetune = torch.optim.SGD(model.parameters(), lr=args.finetune_lr, momentum=0.9, nesterov=True)
    for r in range(args.rounds):
        # each round removes `amount` of the weights that are still alive, ranked globally
        prune.global_unstructured(to_prune, pruning_method=prune.L1Unstructured, amount=args.amount)
        test_loss, acc = run_epoch(model, test_loader, criterion)
        print(f"round {r} pruned test loss {test_loss:.6f} acc {acc:.3f}")
        report(model, f"round {r}")
        for e in range(args.finetune_epochs):
            train_loss, _ = run_epoch(model, train_loader, criterion, finetune)
            test_loss, acc = run_epoch(model, test_loader, criterion)
            print(f"round {r} finetune {e} loss {train_loss:.6f} test loss {test_loss:.6f}")
        # the pruned entries stay zero: the mask multiplies weight_orig in a forward pre-hook
        assert float(model.fc1.weight[model.fc1.weight_mask == 0].abs().sum()) == 0.0

    hook = next(iter(model.conv2._forward_pre_hooks.values()))
    print(f"conv2 container {type(hook).__name__} of {len(hook)} methods")

    prune.l1_unstructured(model.fc1, name="bias", amount=8)
    ThresholdPruning.apply(model.fc2, "bias", threshold=0.2)
    prune.custom_from_mask(model.conv1, name="bias", mask=(torch.arange(8) % 4 != 0).float())
    biases = [m.bias for m in (model.conv1, model.fc1, model.fc2)]
    print(f"bias zeros {[int((b == 0).sum()) for b in biases]} pruned {prune.is_pruned(model)}")
    test_loss, acc = run_epoch(model, test_loader, criterion)
    print(f"bias-pruned test loss {test_loss:.6f} acc {acc:.3f}")

    # a checkpoint of a pruned model holds weight_orig and weight_mask: a fresh model needs
    # the same reparametrization (prune.identity) before it can load it
    state = model.state_dict()
    fresh = LeNet()
    for name, module in fresh.named_children():
        for pname in ("weight", "bias"):
            if f"{name}.{pname}_mask" in state:
                prune.identity(module, pname)
    fresh.load_state_dict(state)
    reload_loss, _ = run_epoch(fresh, test_loader, criterion)
    print(f"reloaded test loss {reload_loss:.6f} keys {sorted(state)[:4]}")

    for module in (model.conv1, model.conv2, model.fc1, model.fc2):
        for pname in ("weight", "bias"):
            if prune.is_pruned(module) and hasattr(module, f"{pname}_mask"):
                prune.remove(module, pname)
    print(f"after remove: pruned {prune.is_pruned(model)} params {len(list(model.parameters()))}")
    report(model, "final")
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    test_loss, acc = run_epoch(model, test_loader, criterion)
    print(f"final test loss {test_loss:.6f} acc {acc:.3f} nonzero {nonzero}")


if __name__ == "__main__":
    main()
