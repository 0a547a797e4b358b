"""Which commonly used PyTorch names manygrad has: the report and ``docs/porting.md``.

The names come from ``names.txt`` beside this file. ``python -m manygrad.compat.coverage``
prints the share supported and the missing names; ``--write`` regenerates the table in
``docs/porting.md`` (a test checks that the file is current).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import types

from .importer import ALIASES, target_name

NAMES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "names.txt")
_MISSING = object()


def load_names(path: str = NAMES_FILE) -> list[tuple[str, str]]:
    """``(group, name)`` for every name in the list, in file order."""
    out, group = [], "other"
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("## "):
                group = line[3:]
            elif line and not line.startswith("#"):
                out.append((group, line))
    return out


def _tensor_class():
    from ..tensor import Tensor

    return Tensor


def _module():
    from ..nn import Linear

    return Linear(2, 2)


def _optimizer():
    from ..nn import Linear
    from ..optim import SGD

    return SGD(Linear(2, 2).parameters(), lr=0.1)


def _loader():
    from ..creation import zeros
    from ..data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(zeros(4, 2)), batch_size=2)


def _tensor():
    from ..creation import ones

    t = ones(2, 2, requires_grad=True)
    t.sum().backward()
    return t


# "Module.x" and friends are looked up on a small live object, so that instance attributes
# (``Module.training``, ``Optimizer.param_groups``, ``Tensor.grad.zero_``) count too.
_CLASSES = {"Tensor": _tensor, "Module": _module, "Optimizer": _optimizer,
            "DataLoader": _loader}  # fmt: skip


def resolve(name: str):
    """The manygrad object standing for the PyTorch ``name`` (``_MISSING`` when absent)."""
    parts = name.split(".")
    if parts[0] in _CLASSES:
        obj = _CLASSES[parts[0]]()
        for p in parts[1:]:
            try:
                obj = getattr(obj, p)
            except AttributeError:
                return _MISSING
            except Exception:  # a property that exists but not for this small instance
                return True
        return obj
    if parts[0] != "torch":
        return _MISSING
    obj: object = importlib.import_module("manygrad")
    path = "torch"
    for p in parts[1:]:
        path += "." + p
        value = getattr(obj, p, _MISSING)
        if isinstance(value, types.ModuleType) and path in ALIASES:
            value = importlib.import_module(ALIASES[path])
        if value is _MISSING and isinstance(obj, types.ModuleType):
            try:
                value = importlib.import_module(target_name(path))
            except ImportError:
                value = _MISSING
        if value is _MISSING:
            return _MISSING
        obj = value
    return obj


def supported(name: str) -> bool:
    return resolve(name) is not _MISSING


def report(names=None) -> dict:
    """``{"total", "supported", "missing": [names], "groups": {group: (n_ok, n, missing)}}``."""
    names = load_names() if names is None else names
    groups: dict[str, list] = {}
    missing = []
    for group, name in names:
        g = groups.setdefault(group, [0, 0, []])
        g[1] += 1
        if supported(name):
            g[0] += 1
        else:
            g[2].append(name)
            missing.append(name)
    total = len(names)
    return {"total": total, "supported": total - len(missing), "missing": missing,
            "groups": {k: tuple(v) for k, v in groups.items()}}  # fmt: skip


def markdown_table(rep: dict) -> str:
    """The generated part of ``docs/porting.md``: one row per group, then the gaps."""
    lines = [
        f"{rep['supported']} of {rep['total']} names are supported "
        f"({100 * rep['supported'] / rep['total']:.1f}%).",
        "",
        "| group | supported | not supported yet |",
        "|---|---|---|",
    ]
    for group, (ok, n, miss) in rep["groups"].items():
        gaps = ", ".join(f"`{m}`" for m in miss) or "-"
        lines.append(f"| {group} | {ok} / {n} | {gaps} |")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- BEGIN GENERATED: python -m manygrad.compat.coverage --write -->"
END = "<!-- END GENERATED -->"


def render_doc(current: str, rep: dict) -> str:
    """``current`` (the text of docs/porting.md) with its generated section replaced."""
    if BEGIN not in current or END not in current:
        raise ValueError(f"docs/porting.md lacks the markers {BEGIN!r} ... {END!r}")
    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown_table(rep)}{END}{tail}"


def doc_path() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "docs", "porting.md"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m manygrad.compat.coverage",
                                description="How many commonly used PyTorch names manygrad has.")  # fmt: skip
    p.add_argument("--write", action="store_true", help="regenerate the table in docs/porting.md")
    p.add_argument("--doc", default=doc_path(), help="the porting guide to update")
    args = p.parse_args(argv)
    rep = report()
    if args.write:
        with open(args.doc, encoding="utf-8") as f:
            text = render_doc(f.read(), rep)
        tmp = args.doc + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.doc)
        print(f"wrote {args.doc}")
    pct = 100 * rep["supported"] / rep["total"]
    print(f"{rep['supported']} / {rep['total']} names supported ({pct:.1f}%)")
    try:
        for name in rep["missing"]:
            print(f"  missing: {name}")
    except BrokenPipeError:  # e.g. piped into head
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
