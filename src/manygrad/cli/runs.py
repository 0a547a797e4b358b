"""``manygrad runs [DIR]``: list saved runs with their metrics."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "runs",
        help="list saved runs and their metrics",
        description="List the run directories under DIR (default ./runs), newest last.",
    )
    p.add_argument("dir", nargs="?", default="runs", metavar="DIR", help="(default runs)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def list_runs(root: str) -> list[dict]:
    """One dict per run directory under ``root`` (or ``root`` itself if it is a run)."""
    cands = [root] if os.path.isfile(os.path.join(root, "recipe.json")) else []
    if not cands and os.path.isdir(root):
        cands = [os.path.join(root, d) for d in os.listdir(root)]
    rows = []
    for d in cands:
        path = os.path.join(d, "recipe.json")
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                rec = json.load(f)
        except (OSError, json.JSONDecodeError):
            rows.append({"run": d, "error": "unreadable recipe.json"})
            continue
        m = rec.get("metrics") or {}
        tr = rec.get("training") or {}
        rows.append(
            {
                "run": d,
                "model": (rec.get("model") or {}).get("name"),
                "data": os.path.basename(str((rec.get("data") or {}).get("name"))),
                "epochs": f"{m.get('epoch', 0)}/{tr.get('epochs', '?')}",
                "steps": tr.get("steps"),
                "train_loss": m.get("train_loss"),
                "test_accuracy": m.get("test_accuracy"),
                "wall_s": m.get("wall_s"),
                "device": tr.get("device"),
                "mtime": os.path.getmtime(path),
                "complete": bool(m) and m.get("epoch") == tr.get("epochs"),
            }
        )
    return sorted(rows, key=lambda r: r.get("mtime", 0))


def _cell(v, pct=False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.2f}%"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def run(args) -> int:
    rows = list_runs(args.dir)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs in {args.dir} (train one with: manygrad train)", file=sys.stderr)
        return 0
    head = ["run", "model", "data", "epochs", "train loss", "test acc", "time", "device", "when"]
    table = [head]
    for r in rows:
        if "error" in r:
            table.append([r["run"], r["error"]] + [""] * (len(head) - 2))
            continue
        table.append(
            [
                r["run"],
                str(r["model"]),
                str(r["data"]),
                r["epochs"] + ("" if r["complete"] else " (unfinished)"),
                _cell(r["train_loss"]),
                _cell(r["test_accuracy"], pct=True),
                "-" if r["wall_s"] is None else f"{r['wall_s']:.1f}s",
                str(r["device"]),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(r["mtime"])),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0
