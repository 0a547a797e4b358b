"""A new user's first hour: doctor's --require marks, epoch lines in logs, import time."""

import json
import os
import subprocess
import sys

from manygrad.cli import doctor
from manygrad.cli.main import main

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.abspath(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_require_marks_a_missing_requirement_as_fail(monkeypatch, capsys):
    missing = doctor.Check("tensorboard", doctor.WARN, "not installed", "pip install x",
                           "tensorboard")  # fmt: skip
    monkeypatch.setattr(doctor, "run_checks", lambda: [missing])
    assert main(["doctor", "--require", "tensorboard", "--json"]) == 1
    (c,) = [c for c in json.loads(capsys.readouterr().out) if c["name"] == "tensorboard"]
    assert c["status"] == doctor.FAIL and "required" in c["detail"]


def test_tensorboard_hint_names_the_viewer_not_a_writer(monkeypatch):
    real = doctor._import

    def fake(mod):
        if mod == "tensorboard":
            raise ImportError(mod)
        return real(mod)

    monkeypatch.setattr(doctor, "_import", fake)
    (tb,) = [c for c in doctor.check_optional() if c.name == "tensorboard"]
    assert "pip install tensorboard" in tb.fix and "tensorboard --logdir runs" in tb.fix


def test_epoch_lines_reach_a_redirected_stdout(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "manygrad", "train", "--epochs", "2", "--device", "cpu",
         "--out", str(tmp_path / "r")],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert any(line.startswith("epoch 1/2: loss") for line in lines)
    assert any(line.startswith("epoch 2/2: loss") for line in lines)


def test_import_is_light():
    """``import manygrad`` loads neither ml_dtypes' heavy parts nor optional packages."""
    code = (
        "import sys, manygrad\n"
        "heavy = [m for m in ('PIL', 'h5py', 'zarr', 'onnx', 'av', 'mpi4py', 'torch', "
        "'scipy', 'tqdm', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(), timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


def test_ml_dtypes_is_imported_on_first_use_only():
    """It takes most of ``import manygrad``'s time: no module imports it up front."""
    code = (
        "import builtins, sys, traceback\n"
        "real = builtins.__import__\n"
        "who = []\n"
        "def imp(name, globals=None, *a, **k):\n"
        "    if name == 'ml_dtypes' and 'ml_dtypes' not in sys.modules:\n"
        "        who.append((globals or {}).get('__name__'))\n"
        "    return real(name, globals, *a, **k)\n"
        "builtins.__import__ = imp\n"
        "import manygrad\n"
        "builtins.__import__ = real\n"
        "print(','.join(w for w in who if w))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(), timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""
    code = (
        "import manygrad as mg, numpy as np\n"
        "x = mg.tensor(np.arange(3, dtype=np.float32)).to(mg.bfloat16)\n"
        "assert x.dtype is mg.bfloat16 and x.is_floating_point()\n"
        "assert mg.dtypes.from_np(x._data.dtype) is mg.bfloat16 and mg.bfloat16.itemsize == 2\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(), timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
