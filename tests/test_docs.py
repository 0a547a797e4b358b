"""Every Python example of the guides in docs/ runs as written; the distributed quick start
also runs on two ranks under ``manygrad launch`` (when MPI is installed)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

import manygrad as mg

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDES = sorted(p.name for p in DOCS.glob("*.md") if p.name != "api.md")
BLOCKS = [
    (name, i, block)
    for name in GUIDES
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), re.S))
]


def test_guides_have_python_examples():
    assert {"distributed.md", "performance.md", "autograd.md", "cuda-graphs.md"} <= {
        name for name, _, _ in BLOCKS
    }


@pytest.mark.parametrize("name,i,block", BLOCKS, ids=[f"{n}-{i}" for n, i, _ in BLOCKS])
def test_guide_example_runs(name, i, block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = mg.get_num_threads()
    exec(compile(block, f"docs/{name} python block {i}", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out  # each example prints what it computed
    assert mg.get_num_threads() == before


@pytest.mark.mpi
def test_distributed_quick_start_on_two_ranks(tmp_path):
    pytest.importorskip("mpi4py")
    from manygrad.distributed.launch import find_mpiexec

    try:
        find_mpiexec()
    except FileNotFoundError as e:
        pytest.skip(f"no mpiexec: {e}")
    (block,) = [b for n, i, b in BLOCKS if n == "distributed.md" and "# train.py" in b]
    (tmp_path / "train.py").write_text(block)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get(
        "PYTHONPATH", ""))  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "manygrad", "launch", "-n", "2", "--", sys.executable, "train.py"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("epoch 3: loss") == 1  # rank 0 alone prints
    assert (tmp_path / "ckpt.safetensors").is_file()


def _command_lines():
    out = []
    for path in [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
            for line in block.splitlines():
                line = line.split("#", 1)[0].strip()
                if line.startswith("manygrad "):
                    out.append((path.name, line))
    return out


@pytest.mark.parametrize("where,line", _command_lines())
def test_guide_commands_parse(where, line):
    """Every ``manygrad ...`` line of the guides' shell blocks names options that exist."""
    import shlex

    from manygrad.cli.main import _command_of, build_parser

    argv = [a for a in shlex.split(line)[1:] if a != "..."]
    argv = [a.replace("<run>", "run") for a in argv]
    args = build_parser(_command_of(argv)).parse_args(argv)  # SystemExit(2) on a bad option
    assert args.command == argv[0] and args._run is not None, (where, line)
