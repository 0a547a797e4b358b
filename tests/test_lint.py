"""Source rules that keep the GPU path honest: only backend.py touches CuPy, and the
op/layer/optimizer code never calls NumPy on tensor data (it asks ``xp``)."""

import ast
import pathlib

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "manygrad"
DEVICE_NEUTRAL = ("ops", "nn", "optim")


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def test_only_backend_imports_cupy():
    offenders = [
        f"{p.relative_to(SRC)}:{line} imports {mod}"
        for p in SRC.rglob("*.py")
        if p.name != "backend.py" or p.parent != SRC
        for line, mod in _imports(p)
        if mod.split(".")[0] in ("cupy", "cupyx")
    ]
    assert not offenders, "only manygrad/backend.py may import cupy:\n" + "\n".join(offenders)


def test_no_numpy_in_device_neutral_code():
    """ops/, nn/, optim/ use ``xp = backend.array_module(a)``; a NumPy import there would
    silently run on the host (or fail on GPU arrays)."""
    offenders = []
    for sub in DEVICE_NEUTRAL:
        for p in (SRC / sub).rglob("*.py"):
            lines = p.read_text().splitlines()
            for line, mod in _imports(p):
                if mod.split(".")[0] == "numpy" and "host-ok" not in lines[line - 1]:
                    offenders.append(f"{p.relative_to(SRC)}:{line} imports {mod}")
    assert not offenders, (
        "NumPy imported in device-neutral code (use backend.array_module, or mark a "
        "host-side use with a `# host-ok: why` comment):\n" + "\n".join(offenders)
    )


def test_rule_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nfrom cupy import ndarray\n")
    mods = [m for _, m in _imports(bad)]
    assert mods == ["numpy", "cupy"]
