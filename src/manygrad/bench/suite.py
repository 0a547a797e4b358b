"""Run the benchmark suite over devices and sizes and collect result rows."""

from __future__ import annotations

import datetime
import os
import platform

from .. import backend
from .explain import crossover, explain, peaks_from
from .timing import measure
from .workloads import Workload, resolve


def available_devices() -> list[str]:
    devs = ["cpu"]
    if backend.cuda_available():
        devs += [f"cuda:{i}" for i in range(backend.cuda_device_count())]
    return devs


def resolve_devices(spec: str | None) -> list[str]:
    """Devices from ``--device`` (comma-separated; "cuda" means every GPU)."""
    avail = available_devices()
    if not spec:
        return avail
    out = []
    for d in (s.strip() for s in spec.split(",") if s.strip()):
        if d == "cuda":
            gpus = [a for a in avail if a.startswith("cuda")]
            if not gpus:
                raise ValueError(f"--device cuda: no usable GPU here ({backend.cuda_status()[1]})")
            out += gpus
        elif d in avail or (d == "cuda:0" and "cuda:0" in avail):
            out.append(d)
        else:
            raise ValueError(f"unknown or unavailable device {d!r}; available here: "
                             f"{', '.join(avail)}")  # fmt: skip
    return out


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from .. import __version__
    from ..cuda.report import cuda_report

    rep = cuda_report()
    return {
        "host": platform.node(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "manygrad": __version__,
        "gpus": [g.get("name", "?") for g in rep.get("gpus", [])],
        "cuda": backend.cuda_status()[1],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _throughput(w: Workload, seconds: float, case) -> float:
    if w.unit == "samples/s":
        return case.samples / seconds
    if w.unit == "GB/s":
        return case.bytes / seconds / 1e9
    if w.unit == "µs/op":
        return seconds * 1e6
    return case.flops / seconds / 1e12


def _measure_one(w, dev, size, lib, timing_kw) -> dict:
    row = {"workload": w.name, "kind": w.kind, "device": dev, "size": size,
           "size_label": w.size_label, "unit": w.unit, "lib": lib}  # fmt: skip
    try:
        case = w.build(dev, size, lib)
        sync = None
        if lib == "torch" and dev.startswith("cuda"):
            import torch

            sync = torch.cuda.synchronize
        t = measure(case.fn, dev if lib == "manygrad" else "cpu", sync=sync, **timing_kw)
    except Exception as e:  # noqa: BLE001 - a failing workload must not stop the suite
        if backend.is_out_of_memory(e) or "out of memory" in str(e).lower():
            row["error"] = f"out of memory at {w.size_label} {size}: the limit on {dev}"
        else:
            row["error"] = f"{type(e).__name__}: {e}"
        row["seconds"] = None
        return row
    lo, hi = t.spread
    row.update(seconds=t.median, spread=[lo, hi], spread_pct=t.spread_pct,
               calls_per_repeat=t.calls_per_repeat, overhead_pct=100 * t.overhead,
               flops=case.flops, bytes=case.bytes, samples=case.samples, ops=case.ops,
               throughput=_throughput(w, t.median, case))  # fmt: skip
    return row


def run_suite(workloads: list[Workload], devices: list[str], quick: bool = False,
              compare_torch: bool = False, progress=None) -> dict:  # fmt: skip
    """Measure every workload on every device; returns {"machine", "rows", "notes"}."""
    timing_kw = dict(repeats=5, warmup=1, min_repeat_s=0.02) if quick else {}
    rows = []
    torch_ok = False
    if compare_torch:
        try:
            import torch  # noqa: F401

            torch_ok = True
        except ImportError:
            if progress:
                progress("--compare torch: PyTorch is not installed; skipping the comparison")
    for w in workloads:
        for dev in devices:
            if w.gpu_only and not dev.startswith("cuda"):
                continue
            for size in w.sizes(quick):
                if progress:
                    progress(f"{w.name} {w.size_label}={size} on {dev}")
                row = _measure_one(w, dev, size, "manygrad", timing_kw)
                if torch_ok and w.torch_ok and row.get("seconds"):
                    tr = _measure_one(w, dev, size, "torch", timing_kw)
                    if tr.get("seconds"):
                        row["torch_seconds"] = tr["seconds"]
                        row["vs_torch"] = tr["seconds"] / row["seconds"]
                rows.append(row)
    return finish({"machine": machine_info(), "rows": rows, "quick": quick})


def finish(result: dict, baseline: dict | None = None) -> dict:
    """Add baseline rows, explanations, speedups over the CPU and crossover notes."""
    rows = result["rows"]
    if baseline:
        here = {r["device"] for r in rows}
        name = baseline.get("machine", {}).get("host", "baseline")
        for r in baseline.get("rows", []):
            if r["device"] not in here and not r["device"].endswith("(baseline)"):
                rows.append(dict(r, device=f"{r['device']}@{name} (baseline)"))
    peaks = peaks_from(rows)
    cpu = {(r["workload"], r["size"]): r for r in rows if r["device"] == "cpu"}
    for r in rows:
        r["bound"] = explain(r, peaks.get(r["device"]))
        base = cpu.get((r["workload"], r["size"]))
        if r["device"] != "cpu" and base and base.get("seconds") and r.get("seconds"):
            r["vs_cpu"] = base["seconds"] / r["seconds"]
    notes = []
    for w in sorted({r["workload"] for r in rows if r["kind"] in ("train", "conv")}):
        c = crossover(rows, w)
        if c:
            notes.append(c)
    if not any(r["device"].startswith("cuda") for r in rows):
        notes.append(f"No GPU was measured: {backend.cuda_status()[1]}")
    result["notes"] = notes
    result["peaks"] = {d: vars(p) for d, p in peaks.items()}
    return result


__all__ = ["available_devices", "finish", "machine_info", "resolve", "resolve_devices",
           "run_suite"]  # fmt: skip
