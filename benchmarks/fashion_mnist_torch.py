"""The network and settings of ``manygrad train --data DIR --model cnn --epochs 1`` in
PyTorch (AdamW lr 0.002, cosine per step, batch 64, standardised inputs), for the
side-by-side accuracy in RESULTS.md.

Usage: ``python benchmarks/fashion_mnist_torch.py DIR``, DIR a folder of Fashion-MNIST IDX
files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-..., t10k-labels-...).
"""

import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from manygrad.bench.twins import torch_model


def read_idx(path):
    data = open(path, "rb").read()
    nd = struct.unpack(">I", data[:4])[0] & 0xFF
    dims = struct.unpack(">" + "I" * nd, data[4 : 4 + 4 * nd])
    return np.frombuffer(data[4 + 4 * nd :], np.uint8).reshape(dims)


def main(folder: str) -> None:
    torch.manual_seed(0)

    def load(split):
        x = read_idx(os.path.join(folder, f"{split}-images-idx3-ubyte")).astype(np.float32)
        y = read_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte")).astype(np.int64)
        return x, torch.from_numpy(y)

    (x, y), (xt, yt) = load("train"), load("t10k")
    mean, std = x.mean(), x.std()
    x, xt = (torch.from_numpy((a - mean) / std)[:, None] for a in (x, xt))
    net, bs = torch_model("cnn"), 64  # the CNN manygrad's benchmarks compare with
    steps = -(-len(y) // bs)
    opt = torch.optim.AdamW(net.parameters(), lr=0.002, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    order, t0 = torch.randperm(len(y)), time.time()
    for i in range(steps):
        idx = order[i * bs : (i + 1) * bs]
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        acc = (net(xt).argmax(1) == yt).float().mean().item()
    print(f"PyTorch {torch.__version__}: test accuracy {acc * 100:.2f}%, {time.time() - t0:.1f} s")


if __name__ == "__main__":
    need = [
        f"{s}-{k}-idx{n}-ubyte"
        for s in ("train", "t10k")
        for k, n in (("images", 3), ("labels", 1))
    ]
    folder = sys.argv[1] if len(sys.argv) == 2 else ""
    missing = [f for f in need if not os.path.isfile(os.path.join(folder, f))]
    if not folder or missing:
        sys.exit(
            f"usage: python benchmarks/fashion_mnist_torch.py DIR, DIR holding {', '.join(need)}"
            + (f" ({folder} lacks {', '.join(missing)})" if folder else "")
        )
    main(folder)
