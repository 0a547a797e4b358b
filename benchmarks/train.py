"""Training-step throughput, manygrad against PyTorch, same models, one run.

Workloads (one optimizer step on random data each):
  mlp  784-512-512-10, batch 128, SGD (momentum 0.9)
  cnn  two 3x3 convs (32, 64) + 2x2 max pools + 2 linear, 28x28x1 input, batch 64, Adam
  gpt  char-level GPT, 2 layers, d=128, 4 heads, T=64, vocab 65, batch 16, AdamW

Steps alternate one manygrad step, one PyTorch step, so that load on a shared machine hits
both alike; each library's median step time is reported (robust to the spikes other
processes cause). Both libraries get the same number of CPU threads.

Usage:
    PYTHONPATH=src python benchmarks/train.py [--threads 1] [--rounds 5] [--steps 20]
    (rounds x steps steps of each library are timed)
    PYTHONPATH=src python benchmarks/train.py --profile gpt   # cProfile of manygrad's step
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

import manygrad as mg
from manygrad import models
from manygrad.threads import set_blas_threads

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
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
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


def mg_step_fn(name, batch):
    m = mg_model(name)
    p = list(m.parameters())
    opt = {"sgd": lambda: mg.optim.SGD(p, lr=0.01, momentum=0.9),
           "adam": lambda: mg.optim.Adam(p, lr=1e-3),
           "adamw": lambda: mg.optim.AdamW(p, lr=1e-3)}[WORKLOADS[name]["opt"]]()  # fmt: skip
    x, y = data(name, batch, np.random.default_rng(0))
    x, y = mg.tensor(x), mg.tensor(y)

    def step():
        out = m(x)
        loss = mg.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def torch_step_fn(name, batch):
    import torch

    m = torch_model(name)
    p = list(m.parameters())
    opt = {"sgd": lambda: torch.optim.SGD(p, lr=0.01, momentum=0.9),
           "adam": lambda: torch.optim.Adam(p, lr=1e-3),
           "adamw": lambda: torch.optim.AdamW(p, lr=1e-3)}[WORKLOADS[name]["opt"]]()  # fmt: skip
    x, y = data(name, batch, np.random.default_rng(0))
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        out = m(x)
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def interleaved(fm, ft, steps):
    """Per-step times of ``fm`` and ``ft``, called alternately."""
    tm, tt = [], []
    for _ in range(steps):
        t = time.perf_counter()
        fm()
        tm.append(time.perf_counter() - t)
        t = time.perf_counter()
        ft()
        tt.append(time.perf_counter() - t)
    return tm, tt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--only", nargs="*", default=list(WORKLOADS))
    ap.add_argument("--profile", metavar="WORKLOAD", help="cProfile manygrad's step instead")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    set_blas_threads(args.threads)
    mg.manual_seed(0)
    torch.manual_seed(0)
    if args.profile:
        import cProfile
        import pstats

        step = mg_step_fn(args.profile, WORKLOADS[args.profile]["batch"])
        for _ in range(3):
            step()
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(args.steps):
            step()
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(25)
        return
    print(
        f"# {platform.processor() or platform.machine()}, {args.threads} thread(s), "
        f"numpy {np.__version__}, torch {torch.__version__}, manygrad {mg.__version__}"
    )
    print("| workload | batch | manygrad samples/s | PyTorch samples/s | ratio |")
    print("|---|---|---|---|---|")
    for name in args.only:
        batch = WORKLOADS[name]["batch"]
        fm, ft = mg_step_fn(name, batch), torch_step_fn(name, batch)
        for _ in range(3):
            fm(), ft()
        tm, tt = interleaved(fm, ft, args.rounds * args.steps)
        sm, st = batch / statistics.median(tm), batch / statistics.median(tt)
        print(f"| {name} | {batch} | {sm:,.0f} | {st:,.0f} | {sm / st:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
