"""The workloads of ``manygrad bench``: each builds, for a device and a size, a function
that enqueues one unit of work, and says how much work that is (FLOPs, bytes, samples)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import manygrad as mg

from .. import backend


@dataclass
class Case:
    fn: Callable[[], object]
    flops: float = 0.0  # floating-point operations per call
    bytes: float = 0.0  # bytes moved through device memory (or the host link) per call
    samples: float = 0.0  # training samples per call
    ops: int = 1  # kernels/ops launched per call (for the launch-overhead rule)


@dataclass
class Workload:
    name: str
    kind: str  # "compute" | "memory" | "conv" | "train" | "transfer" | "latency"
    sizes_quick: list
    sizes_full: list
    build: Callable  # (device: str, size, lib: str) -> Case; lib "manygrad" or "torch"
    size_label: str = "n"
    gpu_only: bool = False
    torch_ok: bool = True
    unit: str = "TFLOP/s"

    def sizes(self, quick: bool) -> list:
        return self.sizes_quick if quick else self.sizes_full


def _torch_device(device: str) -> str:
    return "cuda" + device[4:] if device.startswith("cuda") else "cpu"


def _tiny(device, n, lib):
    if lib == "torch":
        import torch

        a = torch.ones(n, device=_torch_device(device))
        return Case(lambda: a + a, bytes=3 * 4 * n)
    a = mg.ones(n, device=device)
    return Case(lambda: a + a, bytes=3 * 4 * n)


def _gemm(dtype_name):
    def build(device, n, lib):
        if lib == "torch":
            import torch

            dt = getattr(torch, dtype_name)
            a = torch.randn(n, n, device=_torch_device(device)).to(dt)
            b = torch.randn(n, n, device=_torch_device(device)).to(dt)
            return Case(lambda: a @ b, flops=2.0 * n**3, bytes=3.0 * n * n * a.element_size())
        dt = getattr(mg, dtype_name)
        a = mg.randn(n, n, device=device).to(dt)
        b = mg.randn(n, n, device=device).to(dt)
        return Case(lambda: a @ b, flops=2.0 * n**3, bytes=3.0 * n * n * a.element_size())

    return build


def _elementwise(device, n, lib):
    if lib == "torch":
        import torch

        a = torch.randn(n, device=_torch_device(device))
        return Case(lambda: a * 2.0 + a, flops=2.0 * n, bytes=2 * 3 * 4.0 * n, ops=2)
    a = mg.randn(n, device=device)
    return Case(lambda: a * 2.0 + a, flops=2.0 * n, bytes=2 * 3 * 4.0 * n, ops=2)


def _reduction(device, n, lib):
    if lib == "torch":
        import torch

        a = torch.randn(n, device=_torch_device(device))
        return Case(lambda: a.sum(), flops=1.0 * n, bytes=4.0 * n)
    a = mg.randn(n, device=device)
    return Case(lambda: a.sum(), flops=1.0 * n, bytes=4.0 * n)


CONV = (64, 64, 32)  # channels in, channels out, image side


def _conv2d(device, batch, lib):
    cin, cout, side = CONV
    flops = 3 * 2.0 * batch * cout * cin * 9 * side * side  # forward + two backward GEMMs
    if lib == "torch":
        import torch

        d = _torch_device(device)
        x = torch.randn(batch, cin, side, side, device=d, requires_grad=True)
        w = torch.randn(cout, cin, 3, 3, device=d, requires_grad=True)
        fn = torch.nn.functional.conv2d
    else:
        x = mg.randn(batch, cin, side, side, device=device, requires_grad=True)
        w = mg.randn(cout, cin, 3, 3, device=device, requires_grad=True)
        fn = mg.nn.functional.conv2d

    def step():
        x.grad = w.grad = None
        fn(x, w, padding=1).sum().backward()

    return Case(step, flops=flops, bytes=4.0 * (x.numel() * 3 + w.numel() * 3), ops=6)


def _train(model_name):
    """One optimizer step of a built-in model: the workloads of benchmarks/train.py, in
    manygrad or in PyTorch (same architecture, optimizer and data)."""

    def build(device, batch, lib):
        from . import twins

        spec = dict(twins.WORKLOADS[model_name], batch=batch)
        fn = (twins.mg_step_fn if lib == "manygrad" else twins.torch_step_fn)(
            model_name, spec["batch"], device
        )
        n_params = sum(p.numel() for p in twins.mg_model(model_name).parameters())
        tokens = batch * (64 if model_name == "gpt" else 1)
        flops = 6.0 * n_params * tokens  # NOTE: ~2 (forward) + 4 (backward) FLOPs/param/token
        if model_name == "cnn":
            flops += 3 * 2.0 * batch * 28 * 28 * (32 * 1 * 9 + 64 * 32 * 9 / 4)
        return Case(fn, flops=flops, bytes=4.0 * n_params * 4, samples=batch, ops=40)

    return build


def _transfer(direction, pinned):
    def build(device, n, lib):
        count = n // 4
        if lib == "torch":
            import torch

            d = _torch_device(device)
            host = torch.ones(count, pin_memory=pinned and d != "cpu")
            if direction == "h2d":
                return Case(lambda: host.to(d, non_blocking=pinned), bytes=float(n))
            dev = host.to(d)
            return Case(lambda: host.copy_(dev, non_blocking=pinned), bytes=float(n))
        host = backend.pinned_empty((count,), np.float32) if pinned else np.empty(count, np.float32)
        host[...] = 1.0
        if direction == "h2d":
            return Case(lambda: mg.from_numpy(host).to(device), bytes=float(n))
        dev = mg.from_numpy(host).to(device)
        if pinned and backend.is_array(dev._data) and hasattr(dev._data, "get"):
            # NOTE: into the page-locked buffer (to_numpy would allocate a pageable one)
            return Case(lambda: dev._data.get(out=host), bytes=float(n))
        return Case(lambda: backend.to_numpy(dev._data), bytes=float(n))

    return build


M = 1 << 20
_TABLE = [
    Workload("launch", "latency", [1], [1], _tiny, unit="µs/op"),
    Workload("gemm_fp32", "compute", [256, 1024], [512, 1024, 2048, 4096], _gemm("float32")),
    *(
        Workload(f"gemm_{short}", "compute", [1024], [1024, 4096, 8192], _gemm(dt),
                 gpu_only=True)
        for short, dt in (("fp16", "float16"), ("bf16", "bfloat16"))
    ),
    Workload("elementwise", "memory", [4 * M], [M, 16 * M, 64 * M], _elementwise, unit="GB/s"),
    Workload("reduction", "memory", [4 * M], [M, 16 * M, 64 * M], _reduction, unit="GB/s"),
    Workload("conv2d", "conv", [8], [8, 32, 128], _conv2d, size_label="batch"),
    *(
        Workload(f"train_{m}", "train", quick, full, _train(m), size_label="batch",
                 unit="samples/s")
        for m, quick, full in [
            ("mlp", [1, 32, 128], [1, 8, 32, 128, 512, 2048]),
            ("cnn", [1, 32], [1, 8, 32, 128, 512]),
            ("gpt", [1, 8], [1, 4, 16, 64]),
        ]
    ),
    *(
        Workload(f"{d}_{'pinned' if pinned else 'pageable'}", "transfer", [16 * M],
                 [64 * M, 256 * M], _transfer(d, pinned), size_label="bytes", unit="GB/s",
                 gpu_only=True)
        for d in ("h2d", "d2h")
        for pinned in (False, True)
    ),
]  # fmt: skip
WORKLOADS = {w.name: w for w in _TABLE}


def resolve(names: str | None) -> list[Workload]:
    """Workloads by comma-separated names (or prefixes like ``train``); all when empty."""
    if not names:
        return list(WORKLOADS.values())
    out = []
    for n in (s.strip() for s in names.split(",") if s.strip()):
        hits = [w for k, w in WORKLOADS.items() if k == n or k.startswith(n + "_")]
        if not hits:
            raise ValueError(f"unknown workload {n!r}; valid: {', '.join(WORKLOADS)}")
        out += [h for h in hits if h not in out]
    return out
