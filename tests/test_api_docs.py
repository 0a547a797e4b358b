"""docs/api.md is generated from the docstrings by scripts/api_docs.py."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("api_docs", ROOT / "scripts" / "api_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_covers_the_public_modules_from_their_docstrings():
    import manygrad as mg

    text = _script().render()
    for modname, _ in _script().MODULES:
        assert f"## `{modname}`" in text
    first = mg.nn.Linear.__doc__.strip().splitlines()[0]
    assert "**class** `Linear(in_features: 'int', out_features: 'int'" in text
    assert first in text and "bias: 'bool' = True, device=None, dtype=None)`" in text
    assert "`fit(model, data, test=None, **kwargs) -> 'FitResult'`" in text


def test_committed_reference_is_the_generated_one(tmp_path):
    """Regenerate with: PYTHONPATH=src python scripts/api_docs.py"""
    committed = (ROOT / "docs" / "api.md").read_text()
    assert committed.startswith(_script().HEADER)
    assert committed == _script().render(), "docs/api.md is stale: run scripts/api_docs.py"
