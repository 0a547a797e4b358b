"""Saves keep the file's permissions, clean what a killed save left, and never lose history
when interrupted (metrics.csv, recipe.json, checkpoints)."""

import json
import os
import subprocess
import sys

import pytest

import manygrad as mg
from manygrad.io import safetensors as st
from manygrad.train import run as R


def test_saving_keeps_the_permissions(tmp_path):
    p = tmp_path / "w.safetensors"
    mg.save({"a": mg.ones(2)}, str(p))
    os.chmod(p, 0o640)
    mg.save({"a": mg.zeros(2)}, str(p))
    assert os.stat(p).st_mode & 0o777 == 0o640
    R.write_recipe(str(tmp_path), {"a": 1})
    os.chmod(tmp_path / R.RECIPE, 0o600)
    R.write_recipe(str(tmp_path), {"a": 2})
    assert os.stat(tmp_path / R.RECIPE).st_mode & 0o777 == 0o600


def test_a_killed_save_leaves_nothing_after_the_next(tmp_path):
    p = tmp_path / "w.safetensors"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".w.safetensors.{dead}-abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    live = tmp_path / f".w.safetensors.{os.getppid()}-def456.tmp"  # a live process's save
    live.write_bytes(b"in progress")
    mg.save({"a": mg.ones(2)}, str(p))
    assert not stale.exists() and live.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["w.safetensors", live.name])


@pytest.mark.parametrize("write", ["metrics", "recipe", "weights"])
def test_an_interrupted_rewrite_keeps_the_old_file(tmp_path, monkeypatch, write):
    d = str(tmp_path)
    R.append_metrics(d, {"epoch": 1, "step": 10, "train_loss": 0.5})
    R.write_recipe(d, {"v": 1})
    mg.save({"a": mg.ones(2)}, os.path.join(d, R.WEIGHTS))
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(d)}

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(st.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        if write == "metrics":
            R.append_metrics(d, {"epoch": 2, "step": 20, "train_loss": 0.4})
        elif write == "recipe":
            R.write_recipe(d, {"v": 2})
        else:
            mg.save({"a": mg.zeros(2)}, os.path.join(d, R.WEIGHTS))
    monkeypatch.undo()
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(d)} == before


def test_truncating_metrics_on_resume_is_atomic(tmp_path, monkeypatch):
    d = str(tmp_path)
    for e in range(1, 4):
        R.append_metrics(d, {"epoch": e, "step": 10 * e, "train_loss": 1.0 / e})
    monkeypatch.setattr(st.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        R.truncate_metrics(d, 10)
    monkeypatch.undo()
    assert [r["epoch"] for r in R.read_metrics(d)] == [1, 2, 3]
    R.truncate_metrics(d, 10)
    assert [r["epoch"] for r in R.read_metrics(d)] == [1]


def _raw_safetensors(path, header: bytes, data: bytes = b""):
    import struct

    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


def test_deeply_nested_headers_are_one_error(tmp_path):
    from manygrad.errors import CheckpointError

    p = tmp_path / "deep.safetensors"
    _raw_safetensors(p, b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(CheckpointError, match="nests too deeply"):
        mg.load(str(p))
    deep = '{"dict": [["a", ' * 5000 + "1" + "]]}" * 5000
    meta = json.dumps({"__metadata__": {"manygrad.structure": deep}})
    _raw_safetensors(p, meta.encode())
    with pytest.raises(CheckpointError, match="nested too deeply"):
        mg.load(str(p))
    _raw_safetensors(p, b'{"__metadata__": {"manygrad.structure": "{\\"dict\\": 5}"}}')
    with pytest.raises(CheckpointError, match="corrupt structure"):
        mg.load(str(p))
