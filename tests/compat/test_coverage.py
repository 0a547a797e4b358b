"""The list of commonly used PyTorch names: well formed, resolved alike by the coverage
report and the import hook, covered at least as well as before, and docs/porting.md current."""

import pytest

from manygrad import compat
from manygrad.compat import coverage

NAMES = coverage.load_names()
FLOOR = 0.95  # raise it as families land; the report must never go below it


def test_names_list_is_well_formed():
    names = [n for _, n in NAMES]
    assert len(names) >= 550
    assert len(set(names)) == len(names), "duplicate names in names.txt"
    assert all(
        n.split(".")[0] in ("torch", "Tensor", "Module", "Optimizer", "DataLoader") for n in names
    )


def test_coverage_floor():
    rep = coverage.report()
    share = rep["supported"] / rep["total"]
    assert share >= FLOOR, f"coverage fell to {share:.1%}; missing: {rep['missing']}"


def test_report_agrees_with_the_import_hook():
    """A name the report counts is reachable through `import torch`; a missing one raises the
    error that names it."""
    compat.install()
    try:
        import torch  # noqa: F401  (manygrad now)

        for _, name in NAMES:
            if not name.startswith("torch."):
                continue
            path = name.split(".")
            obj = torch
            ok = True
            for i, part in enumerate(path[1:], 1):
                try:
                    obj = getattr(obj, part)
                except compat.UnsupportedAPIError as e:
                    assert ".".join(path[: i + 1]) in str(e) and "manygrad 0.1.0" in str(e)
                    ok = False
                    break
                except AttributeError:  # an attribute of a class, not a module
                    ok = False
                    break
            assert ok == coverage.supported(name), name
    finally:
        compat.uninstall()


def test_porting_doc_is_current():
    with open(coverage.doc_path(), encoding="utf-8") as f:
        text = f.read()
    assert coverage.render_doc(text, coverage.report()) == text, (
        "docs/porting.md is out of date: run `PYTHONPATH=src python -m manygrad.compat.coverage "
        "--write`"
    )


def test_render_doc_needs_its_markers():
    with pytest.raises(ValueError, match="lacks the markers"):
        coverage.render_doc("# no markers", coverage.report())
