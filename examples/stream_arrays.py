"""Stream a scientific array from disk to the model in batches, with worker threads and
prefetching, without loading it into memory.

A memory-mapped ``.npy`` of 2-d fields (as an instrument would write) is cut into patches;
the target of each patch is its mean. Run with
``PYTHONPATH=src python examples/stream_arrays.py``.
"""

import os
import tempfile

import numpy as np

import manygrad as mg
import manygrad.nn.functional as F
from manygrad import nn


def main():
    mg.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fields.npy")
        fields = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(512, 16, 16))
        fields[:] = np.random.default_rng(0).normal(size=fields.shape)
        fields.flush()
        del fields

        # windows of 8x8 cut from each 16x16 field; the target of a patch is its mean
        data = mg.data.Npy(
            path, window=(1, 8, 8), stride=(1, 8, 8),
            target=lambda patch, origin: np.float32(patch.mean()),
        )  # fmt: skip
        loader = mg.data.DataLoader(data, batch_size=64, shuffle=True, num_workers=2, seed=0)
        print(f"{len(data)} samples of shape {tuple(data[0][0].shape)} from {path}")

        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
        opt = mg.optim.Adam(model.parameters(), lr=1e-2)
        for epoch in range(1, 6):
            total = 0.0
            for x, y in loader:
                loss = F.mse_loss(model(x).squeeze(1), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(x)
            print(f"epoch {epoch}: mse {total / len(data):.5f}")


if __name__ == "__main__":
    main()
