"""``manygrad runs [DIR]``: list saved runs with their metrics."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..io.recipes import printable


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
    from ..io.recipes import RecipeError, read_recipe

    cands = [root] if os.path.lexists(os.path.join(root, "recipe.json")) else []
    if not cands and os.path.isdir(root):
        try:
            cands = [os.path.join(root, d) for d in sorted(os.listdir(root))]
        except OSError as e:
            raise RecipeError(f"{root} can't be read ({e.strerror})") from None
    rows = []
    for d in cands:
        path = os.path.join(d, "recipe.json")
        if not os.path.lexists(path):
            continue
        try:
            rec = read_recipe(d)
        except RecipeError as e:
            rows.append({"run": d, "error": str(e), "mtime": _mtime(path)})
            continue
        m = rec.get("metrics") or {}
        tr = rec.get("training") or {}
        m = {k: v for k, v in m.items() if isinstance(v, (int, float, type(None)))}
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
                "mtime": _mtime(path),
                "complete": bool(m) and m.get("epoch") == tr.get("epochs"),
            }
        )
    return sorted(rows, key=lambda r: r.get("mtime", 0))


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def _cell(v, pct=False) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "-" if v is None else printable(v)
    if pct:
        return f"{100 * v:.2f}%"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def run(args) -> int:
    from ..io.recipes import RecipeError

    try:
        rows = list_runs(args.dir)
    except RecipeError as e:
        print(f"error: {printable(e, 1000)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs in {args.dir} (train one with: manygrad train)", file=sys.stderr)
        return 0
    head = ["run", "model", "data", "epochs", "train loss", "test acc", "time", "device", "when"]
    table = [head]
    broken: list[dict] = []
    for r in rows:
        if "error" in r:
            broken.append(r)
            table.append([printable(r["run"]), "BROKEN (see below)"] + [""] * (len(head) - 2))
            continue
        table.append(
            [
                printable(r["run"]),
                printable(r["model"]),
                printable(r["data"]),
                r["epochs"] + ("" if r["complete"] else " (unfinished)"),
                _cell(r["train_loss"]),
                _cell(r["test_accuracy"], pct=True),
                "-" if not isinstance(r["wall_s"], (int, float)) else f"{r['wall_s']:.1f}s",
                printable(r["device"]),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(r["mtime"])),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    for r in broken:
        print(f"broken run {printable(r['run'])}: {printable(r['error'], 1000)}", file=sys.stderr)
    return 0
