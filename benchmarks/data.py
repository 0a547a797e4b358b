"""Input pipeline benchmarks for manygrad.data, side by side with the obvious baselines.

(a) decode a folder of small JPEGs: plain Pillow loop, mg DataLoader with 0/1/2 thread
    workers (and 2 process workers), PyTorch's DataLoader with the same decode function;
(b) stream a large .npy / HDF5 / Zarr array in batches vs reading it directly;
(c) the fraction of a training step spent waiting for data, prefetch on.

Run: PYTHONPATH=src python benchmarks/data.py [--images 2000] [--gb 2] [--only a,b,c]
Files are made in a temp dir and deleted. Prints a Markdown table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time

import numpy as np

import manygrad as mg
import manygrad.data as mgd
from manygrad.data import transforms as T


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def decode(path: str) -> np.ndarray:
    """The decode function every contender uses: JPEG -> float32 CHW in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return (a.astype(np.float32) * np.float32(1 / 255)).transpose(2, 0, 1)


def make_jpegs(root: str, n: int, size: int = 64) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    for k in range(n):
        d = os.path.join(root, f"class{k % 10}")
        os.makedirs(d, exist_ok=True)
        img = np.roll(base, k, axis=1) // 2 + (k % 128)
        Image.fromarray(img.astype(np.uint8)).save(os.path.join(d, f"{k}.jpg"), quality=90)


class _Decode(mgd.Dataset):
    def __init__(self, files):
        self.files = files

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return decode(self.files[i][0]), self.files[i][1]


class _TorchDecode:
    """The same decode as a PyTorch map-style dataset (duck-typed: no torch import here)."""

    def __init__(self, files):
        self.files = files

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return decode(self.files[i][0]), self.files[i][1]


def bench_decode(n_images: int, repeat: int, rows: list) -> str:
    tmp = tempfile.mkdtemp(prefix="mg-bench-jpeg-")
    try:
        make_jpegs(tmp, n_images)
        files = mgd.ImageFolder(tmp, transform=T.ToTensor()).samples
        ds = _Decode(files)
        runs = {"Pillow loop (no batching)": lambda: [decode(p) for p, _ in files]}
        loaders = []
        for nw, kind in ((0, "thread"), (1, "thread"), (2, "thread"), (2, "process")):
            ld = mgd.DataLoader(ds, batch_size=64, num_workers=nw, worker_type=kind,
                                persistent_workers=nw > 0)  # fmt: skip
            loaders.append(ld)
            runs[f"mg DataLoader, {nw} {kind} worker{'s' if nw != 1 else ''}"] = (
                lambda ld=ld: list(ld))  # fmt: skip
        try:
            import torch.utils.data as tud

            for nw in (0, 1, 2):
                ld = tud.DataLoader(_TorchDecode(files), batch_size=64, num_workers=nw,
                                    persistent_workers=nw > 0)  # fmt: skip
                runs[f"PyTorch DataLoader, {nw} worker process{'es' if nw != 1 else ''}"] = (
                    lambda ld=ld: list(ld))  # fmt: skip
        except ImportError:
            pass
        for fn in runs.values():  # warm up: worker start, Pillow plugins, page cache
            fn()
        times = {name: [] for name in runs}
        for _ in range(repeat):  # NOTE: interleaved rounds, so that machine load hits all alike
            for name, fn in runs.items():
                times[name].append(_median_time(fn, 1))
        res = {name: statistics.median(ts) for name, ts in times.items()}
        for ld in loaders:
            ld.shutdown()
        base = res["Pillow loop (no batching)"]
        for name, t in res.items():
            rows.append(("a", name, f"{n_images / t:,.0f} img/s", f"{base / t:.2f}x Pillow loop"))
        return f"{n_images} JPEGs 64x64, batch 64"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_stream(gb: float, batch_mb: int, rows: list) -> str:
    import h5py
    import zarr

    tmp = tempfile.mkdtemp(prefix="mg-bench-arrays-")
    try:
        row = 1024  # float32 values per sample: 4 KiB samples
        n = int(gb * 2**30) // (row * 4)
        per = batch_mb * 2**20 // (row * 4)
        chunk = 8192
        npy = os.path.join(tmp, "x.npy")
        m = np.lib.format.open_memmap(npy, "w+", np.float32, (n, row))
        h5 = h5py.File(os.path.join(tmp, "x.h5"), "w")
        hd = h5.create_dataset("x", (n, row), np.float32, chunks=(per, row))
        zd = zarr.create_array(os.path.join(tmp, "x.zarr"), shape=(n, row), dtype="f4",
                               chunks=(per, row), compressors=None)  # fmt: skip
        rng = np.random.default_rng(0)
        for s in range(0, n, chunk):
            block = rng.random((min(chunk, n - s), row), dtype=np.float32)
            m[s : s + len(block)] = block
            hd[s : s + len(block)] = block
            zd[s : s + len(block)] = block
        m.flush()
        del m
        h5.close()
        total_mb = n * row * 4 / 2**20
        readers = {
            "npy": (lambda: np.load(npy, mmap_mode="r"), lambda: mgd.Npy(npy)),
            "hdf5": (
                lambda: h5py.File(os.path.join(tmp, "x.h5"), "r")["x"],
                lambda: mgd.HDF5(os.path.join(tmp, "x.h5"), x="x"),
            ),  # fmt: skip
            "zarr": (
                lambda: zarr.open_array(os.path.join(tmp, "x.zarr"), mode="r"),
                lambda: mgd.Zarr(os.path.join(tmp, "x.zarr")),
            ),  # fmt: skip
        }
        for name, (direct, dataset) in readers.items():

            def read_direct(direct=direct):
                a = direct()
                copy = isinstance(a, np.memmap)  # a memmap slice reads nothing until copied
                for s in range(0, n, per):
                    np.array(a[s : s + per]) if copy else a[s : s + per]

            def read_loader(dataset=dataset, nw=0):
                for _ in mgd.DataLoader(dataset(), batch_size=per, num_workers=nw):
                    pass

            read_direct()  # warm the page cache for both
            times = {"direct": [], 0: [], 2: []}
            for _ in range(3):  # interleaved, so that load on the machine hits all alike
                times["direct"].append(_median_time(read_direct, 1))
                for nw in (0, 2):
                    times[nw].append(_median_time(lambda d=dataset, nw=nw: read_loader(d, nw), 1))
            td, tl, tl2 = (statistics.median(times[k]) for k in ("direct", 0, 2))
            rows.append(
                ("b", f"{name}: direct read ({name} API)", f"{total_mb / td:,.0f} MB/s", "1.00x")
            )
            rows.append(("b", f"{name}: mg DataLoader, 0 workers", f"{total_mb / tl:,.0f} MB/s",
                         f"{td / tl:.2f}x direct"))  # fmt: skip
            rows.append(("b", f"{name}: mg DataLoader, 2 thread workers", f"{total_mb / tl2:,.0f} MB/s",
                         f"{td / tl2:.2f}x direct"))  # fmt: skip
        return f"{total_mb / 1024:.1f} GiB float32 array ({n} x {row}), batches of {batch_mb} MiB"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_wait(n_images: int, rows: list) -> str:
    """Step = the small CNN's training step; measure time blocked in next(loader)."""
    tmp = tempfile.mkdtemp(prefix="mg-bench-wait-")
    try:
        make_jpegs(tmp, n_images)
        tf = T.Compose([T.RandomCrop(56), T.RandomHorizontalFlip(), T.ToTensor()])
        ds = mgd.ImageFolder(tmp, transform=tf)
        first = next(iter(mgd.DataLoader(ds, batch_size=64)))[0]
        t_decode = _median_time(lambda: next(iter(mgd.DataLoader(ds, batch_size=64))), 3)
        # the step: the built-in small CNN's training step (forward, backward, Adam)
        model = mg.models.get("cnn", in_channels=3, image_size=56)
        opt = mg.optim.Adam(model.parameters(), lr=1e-3)

        def step(x):  # NOTE: BLAS releases the GIL, so thread workers decode meanwhile
            labels = mg.zeros(len(x), dtype=mg.int64)
            loss = mg.nn.functional.cross_entropy(model(x), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()

        t_step = _median_time(lambda: step(first), 3)

        def gpu_step(x):  # NOTE: a GPU step leaves the host idle while kernels run
            time.sleep(t_step)

        for label, fn in (("GPU-like step (host idle)", gpu_step), ("CPU step (BLAS)", step)):
            for nw, prefetch in ((0, None), (2, 2)):
                ld = mgd.DataLoader(ds, batch_size=64, num_workers=nw, prefetch_factor=prefetch,
                                    shuffle=True, seed=0)  # fmt: skip
                waits, t0, it = [], time.perf_counter(), iter(ld)
                while True:
                    t = time.perf_counter()
                    try:
                        x, _ = next(it)
                    except StopIteration:
                        break
                    waits.append(time.perf_counter() - t)
                    fn(x)
                total = time.perf_counter() - t0
                first = waits[0]
                rows.append(("c", f"{label}, {nw} workers" + (f", prefetch {prefetch}" if prefetch else ""),
                             f"{100 * sum(waits) / total:.1f}% waiting "
                             f"({100 * (sum(waits) - first) / (total - first):.1f}% after batch 1)",
                             f"epoch {total:.2f} s"))  # fmt: skip
        return (f"{n_images} JPEGs, batch 64, step ~{1000 * t_step:.0f} ms (small CNN, Adam), "
                f"decode ~{1000 * t_decode:.0f} ms per batch in one thread")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--gb", type=float, default=2.0)
    p.add_argument("--batch-mb", type=int, default=32)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default="a,b,c")
    args = p.parse_args()
    rows, notes = [], {}
    if "a" in args.only:
        notes["a"] = bench_decode(args.images, args.repeat, rows)
    if "b" in args.only:
        notes["b"] = bench_stream(args.gb, args.batch_mb, rows)
    if "c" in args.only:
        notes["c"] = bench_wait(min(args.images, 1000), rows)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, NumPy {np.__version__}")  # fmt: skip
    for k, v in notes.items():
        print(f"({k}) {v}")
    print("\n| part | contender | rate | ratio |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
