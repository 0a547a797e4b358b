"""Why a workload runs at the speed it does: one sentence per result, derived from the
measured figures against the device's own measured peaks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Peaks:
    """A device's best measured figures in this run."""

    flops: float = 0.0  # FLOP/s, best GEMM
    bandwidth: float = 0.0  # bytes/s, best elementwise/reduction
    launch: float = 0.0  # seconds per tiny op (dispatch + kernel launch)


def peaks_from(rows: list[dict]) -> dict[str, Peaks]:
    """Peaks per device from result rows (dicts with device, workload, seconds, flops, bytes)."""
    out: dict[str, Peaks] = {}
    for r in rows:
        if r.get("seconds") is None:
            continue
        p = out.setdefault(r["device"], Peaks())
        t = r["seconds"]
        if r["workload"].startswith("gemm"):
            p.flops = max(p.flops, r["flops"] / t)
        if r["kind"] == "memory":
            p.bandwidth = max(p.bandwidth, r["bytes"] / t)
        if r["workload"] == "launch":
            p.launch = t if not p.launch else min(p.launch, t)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def explain(row: dict, peaks: Peaks | None) -> str:
    """One sentence: what bounds this result (launch overhead, memory bandwidth, compute,
    transfers), with the numbers that show it."""
    t = row.get("seconds")
    if t is None:
        return row.get("error", "not measured")
    peaks = peaks or Peaks()
    kind = row["kind"]
    if kind == "latency":
        return (f"fixed cost of one op: {t * 1e6:.1f} µs (Python dispatch"
                + (" + kernel launch)" if row["device"].startswith("cuda") else ")")
                + "; any op this small is bound by it")  # fmt: skip
    if kind == "transfer":
        return (f"bound by the host-device link: {row['bytes'] / t / 1e9:.1f} GB/s"
                + ("; pinned host memory allows DMA without a staging copy"
                   if "pinned" in row["workload"] else
                   "; pageable memory is staged through a pinned buffer first"))  # fmt: skip
    if not peaks.flops and not peaks.bandwidth:
        return ("no peak measured on this device to compare with: include the gemm and "
                "elementwise workloads (the default set does)")  # fmt: skip
    flops_util = row["flops"] / t / peaks.flops if peaks.flops and row["flops"] else 0.0
    bw_util = row["bytes"] / t / peaks.bandwidth if peaks.bandwidth and row["bytes"] else 0.0
    ops = max(1, row.get("ops", 1))
    launch_share = ops * peaks.launch / t if peaks.launch else 0.0
    if launch_share >= 0.3 and max(flops_util, bw_util) < 0.3:
        return (f"launch overhead: ~{ops} ops at {peaks.launch * 1e6:.1f} µs each make up "
                f"{_pct(min(launch_share, 1.0))} of the {t * 1e3:.2f} ms; compute is at "
                f"{_pct(flops_util)} of peak — larger batches amortise it")  # fmt: skip
    if flops_util >= bw_util and flops_util >= 0.3:
        return (f"compute: {row['flops'] / t / 1e12:.2f} TFLOP/s, {_pct(flops_util)} of the "
                "measured GEMM peak")  # fmt: skip
    if bw_util >= 0.3:
        return (f"memory bandwidth: {row['bytes'] / t / 1e9:.1f} GB/s, {_pct(bw_util)} of the "
                "measured peak; few FLOPs per byte, so more cores do not help")  # fmt: skip
    return (f"overheads: compute at {_pct(flops_util)} of peak and bandwidth at "
            f"{_pct(bw_util)} — per-op costs (allocation, dispatch, small kernels) dominate "
            "at this size")  # fmt: skip


def crossover(rows: list[dict], workload: str, cpu: str = "cpu") -> str | None:
    """The smallest size where a GPU beats the CPU on ``workload``, as a sentence."""
    by_dev: dict[str, dict] = {}
    for r in rows:
        if r["workload"] == workload and r.get("throughput"):
            by_dev.setdefault(r["device"], {})[r["size"]] = r["throughput"]
    base = by_dev.get(cpu)
    if not base:
        return None
    lines = []
    for dev, series in by_dev.items():
        if dev == cpu:
            continue
        common = sorted(set(series) & set(base))
        if not common:
            continue
        wins = [s for s in common if series[s] > base[s]]
        best = max(common, key=lambda s: series[s] / base[s])
        ratio = series[best] / base[best]
        if not wins:
            lines.append(f"{workload}: the CPU is faster than {dev} at every measured size "
                         f"(best {dev}/cpu ratio {ratio:.2f}x at {best})")  # fmt: skip
        else:
            lines.append(f"{workload}: {dev} beats the CPU from size {wins[0]} on "
                         f"(up to {ratio:.1f}x at {best})")  # fmt: skip
    return "; ".join(lines) or None
