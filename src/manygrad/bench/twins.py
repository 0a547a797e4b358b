"""The training workloads that manygrad measures against PyTorch (``manygrad bench``,
``benchmarks/train.py``): the same architectures and optimizers written in both libraries.

  mlp  784-512-512-10, SGD (momentum 0.9)
  cnn  two 3x3 convs (32, 64) + 2x2 max pools + 2 linear, 28x28x1 input, Adam
  gpt  char-level GPT, 2 layers, d=128, 4 heads, T=64, vocab 65, AdamW
"""

from __future__ import annotations

import numpy as np

import manygrad as mg
from manygrad import models

WORKLOADS = {
    "mlp": dict(batch=128, opt="sgd"),
    "cnn": dict(batch=64, opt="adam"),
    "gpt": dict(batch=16, opt="adamw"),
}


def mg_model(name):
    if name == "mlp":
        return models.get("mlp", in_features=784, hidden=[512, 512], num_classes=10)
    if name == "cnn":
        return models.get("cnn", in_channels=1, image_size=28)
    return models.get("gpt", vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=128)


def torch_model(name):
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F

    if name == "mlp":
        return tnn.Sequential(
            tnn.Flatten(), tnn.Linear(784, 512), tnn.ReLU(), tnn.Linear(512, 512), tnn.ReLU(),
            tnn.Linear(512, 10),
        )  # fmt: skip
    if name == "cnn":

        class CNN(tnn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = tnn.Conv2d(1, 32, 3, padding=1)
                self.conv2 = tnn.Conv2d(32, 64, 3, padding=1)
                self.fc1 = tnn.Linear(64 * 7 * 7, 128)
                self.fc2 = tnn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv1(x)), 2)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                return self.fc2(F.relu(self.fc1(x.flatten(1))))

        return CNN()

    class Block(tnn.Module):
        def __init__(self, c=128, h=4):
            super().__init__()
            self.ln_1, self.ln_2 = tnn.LayerNorm(c), tnn.LayerNorm(c)
            self.c_attn, self.c_proj = tnn.Linear(c, 3 * c), tnn.Linear(c, c)
            self.c_fc, self.c_proj2 = tnn.Linear(c, 4 * c), tnn.Linear(4 * c, c)
            self.h = h

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = (
                z.view(b, t, self.h, c // self.h).transpose(1, 2)
                for z in self.c_attn(self.ln_1(x)).split(c, dim=2)
            )
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.c_proj(y.transpose(1, 2).reshape(b, t, c))
            return x + self.c_proj2(F.gelu(self.c_fc(self.ln_2(x))))

    class GPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = tnn.Embedding(65, 128), tnn.Embedding(64, 128)
            self.h = tnn.ModuleList([Block(), Block()])
            self.ln_f, self.lm_head = tnn.LayerNorm(128), tnn.Linear(128, 65, bias=False)

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
            for b in self.h:
                x = b(x)
            return self.lm_head(self.ln_f(x))

    return GPT()


def data(name, batch, rng):
    if name == "gpt":
        x = rng.integers(0, 65, (batch, 64))
        return x, rng.integers(0, 65, (batch, 64))
    shape = (batch, 1, 28, 28)
    return rng.normal(size=shape).astype(np.float32), rng.integers(0, 10, batch)


def _torch_device(device: str) -> str:
    return "cuda" + device[4:] if device.startswith("cuda") else "cpu"


def mg_step_fn(name, batch, device="cpu"):
    """One manygrad optimizer step of workload ``name`` on random data, as a function."""
    m = mg_model(name).to(device)
    p = list(m.parameters())
    opt = {"sgd": lambda: mg.optim.SGD(p, lr=0.01, momentum=0.9),
           "adam": lambda: mg.optim.Adam(p, lr=1e-3),
           "adamw": lambda: mg.optim.AdamW(p, lr=1e-3)}[WORKLOADS[name]["opt"]]()  # fmt: skip
    x, y = data(name, batch, np.random.default_rng(0))
    x, y = mg.tensor(x, device=device), mg.tensor(y, device=device)

    def step():
        out = m(x)
        loss = mg.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def torch_step_fn(name, batch, device="cpu"):
    """The same step in PyTorch, with the same architecture and optimizer."""
    import torch

    m = torch_model(name).to(_torch_device(device))
    p = list(m.parameters())
    opt = {"sgd": lambda: torch.optim.SGD(p, lr=0.01, momentum=0.9),
           "adam": lambda: torch.optim.Adam(p, lr=1e-3),
           "adamw": lambda: torch.optim.AdamW(p, lr=1e-3)}[WORKLOADS[name]["opt"]]()  # fmt: skip
    x, y = data(name, batch, np.random.default_rng(0))
    x = torch.from_numpy(x).to(_torch_device(device))
    y = torch.from_numpy(y).to(_torch_device(device))

    def step():
        out = m(x)
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step
