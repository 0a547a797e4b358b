"""The Python examples of the guides in docs/ run as written (docs/distributed.md's need
several MPI ranks: tests/distributed runs their code paths)."""

import pathlib
import re

import pytest

import manygrad as mg

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
RUNNABLE = ["performance.md", "autograd.md", "cuda-graphs.md"]
BLOCKS = [
    (name, i, block)
    for name in RUNNABLE
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), re.S))
]


def test_guides_have_python_examples():
    assert {name for name, _, _ in BLOCKS} == set(RUNNABLE)


@pytest.mark.parametrize("name,i,block", BLOCKS, ids=[f"{n}-{i}" for n, i, _ in BLOCKS])
def test_guide_example_runs(name, i, block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = mg.get_num_threads()
    exec(compile(block, f"docs/{name} python block {i}", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out  # each example prints what it computed
    assert mg.get_num_threads() == before
