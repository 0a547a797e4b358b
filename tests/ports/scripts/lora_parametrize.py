"""LoRA (Hu et al., 2021) through torch.nn.utils.parametrize: a pretrained MLP is frozen with
requires_grad_(False), every nn.Linear weight gets a low-rank parametrization W + B A * a/r,
only the adapters train; evaluation under parametrize.cached(); the adapters alone go through
torch.save / torch.load in an io.BytesIO and are loaded into a fresh copy; finally the
adapters are merged with remove_parametrizations(leave_parametrized=True)."""

import argparse
import io
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize


class LoRAParametrization(nn.Module):
    def __init__(self, features_in, features_out, rank=4, alpha=8):
        super().__init__()
        self.lora_A = nn.Parameter(torch.zeros((rank, features_in)))
        self.lora_B = nn.Parameter(torch.zeros((features_out, rank)))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = alpha / rank
        self.enabled = True

    def forward(self, original_weights):
        if self.enabled:
            delta = torch.matmul(self.lora_B, self.lora_A).view(original_weights.shape)
            return original_weights + delta * self.scale
        return original_weights


class Classifier(nn.Module):
    def __init__(self, in_features=16, hidden=64, classes=4):
        super().__init__()
        self.linear1 = nn.Linear(in_features, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.relu(self.linear1(x))
        x = F.relu(self.linear2(x))
        return self.linear3(x)


def add_lora(model, rank):
    for layer in (model.linear1, model.linear2, model.linear3):
        out_f, in_f = layer.weight.shape
        parametrize.register_parametrization(
            layer, "weight", LoRAParametrization(in_f, out_f, rank=rank)
        )


def enable_lora(model, enabled):
    for layer in (model.linear1, model.linear2, model.linear3):
        layer.parametrizations["weight"][0].enabled = enabled


def make_task(rng, n, proj):
    """Labels from the arg-max of a fixed random projection of the inputs."""
    x = rng.normal(size=(n, 16)).astype(np.float32)
    y = np.argmax(x @ proj, axis=1)
    return torch.from_numpy(x), torch.from_numpy(y)


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def train(model, optimizer, x, y, epochs, batch_size, tag):
    for epoch in range(epochs):
        total = 0.0
        for i in range(0, len(x), batch_size):
            loss = F.cross_entropy(model(x[i : i + batch_size]), y[i : i + batch_size])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"[{tag}] epoch {epoch} train loss {total / (len(x) // batch_size):.5f}")


def main():
    parser = argparse.ArgumentParser(description="LoRA fine-tuning with parametrizations")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    proj_a = rng.normal(size=(16, 4))
    proj_b = proj_a + 0.8 * rng.normal(size=(16, 4))  # a related task to adapt to
    xa, ya = make_task(rng, 256, proj_a)
    xb, yb = make_task(rng, 256, proj_b)
    xb_val, yb_val = make_task(rng, 128, proj_b)

    # 1) pretrain on task A
    model = Classifier()
    train(model, torch.optim.Adam(model.parameters(), lr=1e-2), xa, ya, args.epochs,
          args.batch_size, "pretrain")  # fmt: skip
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    loss_a, acc_a = evaluate(model, xa, ya)
    loss_b, acc_b = evaluate(model, xb_val, yb_val)
    print(f"pretrained: task A loss {loss_a:.5f} task B loss {loss_b:.5f} acc {acc_b:.3f}")

    # 2) LoRA: freeze the base, train only the adapters
    add_lora(model, args.rank)
    for name, p in model.named_parameters():
        if "lora_" not in name:
            p.requires_grad_(False)
    n_total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"parametrized: {parametrize.is_parametrized(model.linear1, 'weight')}, "
          f"trainable {n_train} of {n_total}")  # fmt: skip
    print(sorted(k for k in model.state_dict() if k.startswith("linear1.")))
    lora_params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(lora_params, lr=5e-3, weight_decay=0.0)
    train(model, optimizer, xb, yb, args.epochs, args.batch_size, "lora")
    with parametrize.cached():
        loss_cached, acc_cached = evaluate(model, xb_val, yb_val)
    print(f"lora task B loss {loss_cached:.5f} acc {acc_cached:.3f}")
    base_w = model.linear1.parametrizations.weight.original
    print(f"base unchanged loss {(base_w - base_state['linear1.weight']).abs().max().item():.3e}")
    enable_lora(model, False)
    print(f"adapters off: task A loss {evaluate(model, xa, ya)[0]:.5f}")
    enable_lora(model, True)

    # 3) ship the adapters only and load them into a fresh copy of the base model
    buf = io.BytesIO()
    torch.save({k: v for k, v in model.state_dict().items() if "lora_" in k}, buf)
    size = buf.tell()
    buf.seek(0)
    adapters = torch.load(buf, weights_only=True)
    fresh = Classifier()
    fresh.load_state_dict(base_state)
    add_lora(fresh, args.rank)
    result = fresh.load_state_dict(adapters, strict=False)
    print(f"adapter file {size > 0}, {len(adapters)} tensors, missing {len(result.missing_keys)}, "
          f"unexpected {len(result.unexpected_keys)}")  # fmt: skip
    print(f"reloaded task B loss {evaluate(fresh, xb_val, yb_val)[0]:.5f}")

    # 4) merge the adapters into plain weights
    for layer in (fresh.linear1, fresh.linear2, fresh.linear3):
        parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
    merged_loss = evaluate(fresh, xb_val, yb_val)[0]
    print(f"merged: parametrized {parametrize.is_parametrized(fresh)}, keys "
          f"{sorted(fresh.state_dict())[:2]}, task B loss {merged_loss:.5f}")  # fmt: skip
    with torch.no_grad():
        gap = (fresh(xb_val) - model(xb_val)).abs().max().item()
    print(f"merged vs parametrized gap loss {gap:.3e}")


if __name__ == "__main__":
    main()
