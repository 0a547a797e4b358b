"""Training-step time of whole models, one PyTorch program run by PyTorch and by manygrad.

The models are written once, as a PyTorch user writes them; the same file runs under
PyTorch and under ``manygrad run`` (whose import hook gives it manygrad as ``torch``), so
both run the same code. Each library runs in its own process, one thread, in alternating
rounds so that load on a shared machine hits both alike; the median step time (process CPU
time) of each is reported.

Models (SGD with momentum, cross-entropy):
  resnet     ResNet-18-shaped (width 32), CIFAR-sized 32x32 images, batch 32, BatchNorm
  mobilenet  MobileNetV2-style inverted residuals (depthwise 3x3, ReLU6), 32x32, batch 32
  vit        ViT: 4x4 patches of 32x32 images, d=192, 6 pre-norm layers, 3 heads, batch 32
  lstm       2-layer LSTM language model, vocab 1000, d=256, batch 16 x 35 tokens

Usage:
    PYTHONPATH=src python benchmarks/models.py [--only resnet vit] [--rounds 3] [--steps 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

MODELS = ("resnet", "mobilenet", "vit", "lstm")


def build(torch, name):
    """(model, inputs, targets) of workload ``name``, built with ``torch`` (either library)."""
    nn, F = torch.nn, torch.nn.functional  # noqa: N806 - the names programs use

    class Block(nn.Module):
        def __init__(self, i, o, stride):
            super().__init__()
            self.c1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(o)
            self.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(o)
            self.short = nn.Sequential()
            if stride != 1 or i != o:
                self.short = nn.Sequential(
                    nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o)
                )

        def forward(self, x):
            return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.short(x))

    class ResNet(nn.Module):
        def __init__(self, w=32):
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()
            )
            plan = [
                (w, 1),
                (w, 1),
                (2 * w, 2),
                (2 * w, 1),
                (4 * w, 2),
                (4 * w, 1),
                (8 * w, 2),
                (8 * w, 1),
            ]
            blocks, i = [], w
            for o, s in plan:
                blocks.append(Block(i, o, s))
                i = o
            self.layers = nn.Sequential(*blocks)
            self.fc = nn.Linear(i, 10)

        def forward(self, x):
            return self.fc(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1))

    class Inverted(nn.Module):
        def __init__(self, i, o, stride, expand=4):
            super().__init__()
            h = i * expand
            self.residual = stride == 1 and i == o
            self.body = nn.Sequential(
                nn.Conv2d(i, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
                nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
                nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o),
            )  # fmt: skip

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    class MobileNet(nn.Module):
        def __init__(self):
            super().__init__()
            layers, i = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()], 16
            for o, s in [(16, 1), (24, 2), (24, 1), (32, 2), (32, 1), (64, 2), (64, 1)]:
                layers.append(Inverted(i, o, s))
                i = o
            self.features = nn.Sequential(*layers)
            self.fc = nn.Linear(i, 10)

        def forward(self, x):
            return self.fc(self.features(x).mean((2, 3)))

    class ViT(nn.Module):
        def __init__(self, d=192, depth=6, heads=3):
            super().__init__()
            self.patch = nn.Conv2d(3, d, 4, 4)
            self.pos = nn.Parameter(torch.zeros(1, 64, d))
            layer = nn.TransformerEncoderLayer(
                d, heads, 4 * d, 0.0, activation="gelu", batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.fc = nn.Linear(d, 10)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2) + self.pos
            return self.fc(self.norm(self.encoder(x)).mean(1))

    class LSTMLM(nn.Module):
        def __init__(self, vocab=1000, d=256):
            super().__init__()
            self.embed = nn.Embedding(vocab, d)
            self.lstm = nn.LSTM(d, d, 2, batch_first=True)
            self.out = nn.Linear(d, vocab)

        def forward(self, x):
            return self.out(self.lstm(self.embed(x))[0])

    torch.manual_seed(0)
    if name == "lstm":
        return LSTMLM(), torch.randint(0, 1000, (16, 35)), torch.randint(0, 1000, (16, 35))
    model = {"resnet": ResNet, "mobilenet": MobileNet, "vit": ViT}[name]()
    return model, torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))


def _step_fn(F, model, opt, x, y):  # noqa: N803 - the name programs use
    def step():
        opt.zero_grad()
        out = model(x)
        F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)).backward()
        opt.step()

    return step


def child(names, steps):
    """Run in the child process: print ``name seconds`` per timed step."""
    import torch

    torch.set_num_threads(1)
    F = torch.nn.functional  # noqa: N806
    for name in names:
        model, x, y = build(torch, name)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        step = _step_fn(F, model, opt, x, y)
        step()  # NOTE: untimed: first-call costs (kernel builds, allocations)
        for _ in range(steps):
            t = time.process_time()
            step()
            print(name, time.process_time() - t, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=list(MODELS), choices=MODELS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.only, args.steps)
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", MANYGRAD_NUM_THREADS="1")
    me = [os.path.abspath(__file__), "--child", "--steps", str(args.steps), "--only", *args.only]
    cmds = {
        "torch": [sys.executable, *me],
        "manygrad": [sys.executable, "-m", "manygrad", "run", *me],
    }
    times = {lib: {n: [] for n in args.only} for lib in cmds}
    for _ in range(args.rounds):
        for lib, cmd in cmds.items():
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                name, sec = line.split()
                times[lib][name].append(float(sec))
    import torch

    print(f"torch {torch.__version__}, one thread, median training step (process CPU time)")
    print("| model | manygrad ms | PyTorch ms | PyTorch / manygrad |")
    print("|---|---:|---:|---:|")
    for n in args.only:
        m, t = (statistics.median(times[lib][n]) * 1e3 for lib in ("manygrad", "torch"))
        print(f"| {n} | {m:.1f} | {t:.1f} | {t / m:.2f}x |")


if __name__ == "__main__":
    main()
