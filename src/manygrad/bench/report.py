"""The bench report: a terminal table, JSON, Markdown and PNG charts."""

from __future__ import annotations

import json
import os


def _fmt_size(r: dict) -> str:
    s = r["size"]
    if r["size_label"] == "bytes" or (r["kind"] == "memory" and s >= 1 << 20):
        unit = "MB" if r["size_label"] == "bytes" else "M"
        return f"{s / (1 << 20):.0f}{unit}"
    return str(s)


def _fmt_tp(r: dict) -> str:
    if r.get("seconds") is None:
        return "—"
    v = r["throughput"]
    return f"{v:,.0f} {r['unit']}" if v >= 100 else f"{v:.3g} {r['unit']}"


def _cols(r: dict, compare: bool) -> list[str]:
    t = r.get("seconds")
    time_s = "—" if t is None else f"{t * 1e3:.3f} ms ±{r['spread_pct'] / 2:.0f}%"
    cols = [r["workload"], f"{r['size_label']}={_fmt_size(r)}", r["device"], time_s,
            _fmt_tp(r), f"{r['vs_cpu']:.1f}x" if "vs_cpu" in r else ""]  # fmt: skip
    if compare:
        cols.append(f"{r['vs_torch']:.2f}x" if "vs_torch" in r else "")
    cols.append(r.get("error") or r.get("bound", ""))
    return cols


def table(result: dict, width: int | None = None) -> str:
    """The terminal table: one row per workload, size and device; the explanation goes on
    the same line when it fits the terminal, else on the next line."""
    if width is None:
        import shutil

        width = shutil.get_terminal_size((120, 24)).columns
    compare = any("vs_torch" in r for r in result["rows"])
    head = ["workload", "size", "device", "time (median ±IQR/2)", "throughput", "vs CPU"]
    if compare:
        head.append("vs torch")
    head.append("what bounds it")
    rows = [head] + [_cols(r, compare) for r in result["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = []
    for i, r in enumerate(rows):
        left = "  ".join(c.ljust(w) for c, w in zip(r, widths))
        line = f"{left}  {r[-1]}"
        if len(line) <= width or i == 0:
            lines.append(line if i else left + "  " + r[-1])
        else:
            lines += [left.rstrip(), "    -> " + r[-1]]
        if i == 0:
            lines.append("-" * min(width, len(left) + 16))
    m = result["machine"]
    top = f"manygrad bench on {m['cpu']} ({m['cpu_count']} CPUs)"
    if m.get("gpus"):
        top += f" + {', '.join(m['gpus'])}"
    return "\n".join([top, "", *lines, "", *result.get("notes", [])])


def markdown(result: dict) -> str:
    compare = any("vs_torch" in r for r in result["rows"])
    head = ["workload", "size", "device", "time", "throughput", "vs CPU"]
    if compare:
        head.append("vs torch")
    head.append("what bounds it")
    m = result["machine"]
    out = [
        "# manygrad bench",
        "",
        f"- CPU: {m['cpu']} ({m['cpu_count']} CPUs); GPUs: {', '.join(m['gpus']) or 'none'}",
        f"- manygrad {m['manygrad']}, Python {m['python']}, {m['date']}",
        f"- CUDA: {m['cuda']}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in result["rows"]:
        out.append("| " + " | ".join(c.replace("|", "/") for c in _cols(r, compare)) + " |")
    if result.get("notes"):
        out += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    over = [r["overhead_pct"] for r in result["rows"] if r.get("overhead_pct") is not None]
    if over:
        out += ["", f"Timing harness overhead: at most {max(over):.3f}% of a timed repeat."]
    return "\n".join(out) + "\n"


def charts(result: dict, out_dir: str) -> list[str]:
    """Throughput vs batch size per device, and GPU/CPU (or manygrad/torch) speedup bars."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    rows = [r for r in result["rows"] if r.get("seconds")]
    sweeps = sorted({r["workload"] for r in rows if r["kind"] in ("train", "conv")})
    if sweeps:
        fig, axes = plt.subplots(1, len(sweeps), figsize=(4.2 * len(sweeps), 3.6), squeeze=False)
        for ax, w in zip(axes[0], sweeps):
            for dev in sorted({r["device"] for r in rows if r["workload"] == w}):
                pts = sorted((r["size"], r["throughput"]) for r in rows
                             if r["workload"] == w and r["device"] == dev)  # fmt: skip
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=dev)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(w)
            ax.set_xlabel("batch size")
            ax.set_ylabel(next(r["unit"] for r in rows if r["workload"] == w))
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        p = os.path.join(out_dir, "throughput_vs_batch.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    bars = _speedups(rows)
    if bars:
        title, items = bars
        fig, ax = plt.subplots(figsize=(max(5, 0.55 * len(items) + 2), 4))
        labels = [k for k, _ in items]
        vals = [v for _, v in items]
        colors = ["tab:green" if v >= 1 else "tab:red" for v in vals]
        ax.bar(range(len(vals)), vals, color=colors)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("speedup (x)")
        ax.set_title(title)
        fig.tight_layout()
        p = os.path.join(out_dir, "speedup.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def _speedups(rows):
    gpu = [(f"{r['workload']} {r['size']}", r["vs_cpu"]) for r in rows if "vs_cpu" in r]
    if gpu:
        return "GPU speed / CPU speed, same workload", gpu
    torch = [(f"{r['workload']} {r['size']}", r["vs_torch"]) for r in rows if "vs_torch" in r]
    if torch:
        return "manygrad speed / PyTorch speed (>1: faster)", torch
    return None


def write_all(result: dict, out_dir: str) -> dict[str, str]:
    """Write results.json, report.md and the charts into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    files = {"json": os.path.join(out_dir, "results.json"),
             "markdown": os.path.join(out_dir, "report.md")}  # fmt: skip
    with open(files["json"], "w") as f:
        json.dump(result, f, indent=1, default=str)
    with open(files["markdown"], "w") as f:
        f.write(markdown(result))
    for i, p in enumerate(charts(result, out_dir)):
        files[f"chart{i}"] = p
    return files
