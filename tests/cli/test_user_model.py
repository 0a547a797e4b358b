"""``manygrad train --model file.py:Class`` / ``package.module:Class`` with ``--model-args``:
the recipe rebuilds the model for predict, export and --resume, and says when code is gone."""

import json
import os
import textwrap

import numpy as np
import pytest

from manygrad.cli.main import main
from manygrad.train import run as R

NET = textwrap.dedent(
    """
    import manygrad as mg
    from manygrad import nn
    import manygrad.nn.functional as F


    class Net(nn.Module):
        def __init__(self, width=16, num_classes=2, in_features=1):
            super().__init__()
            self.fc1 = nn.Linear(in_features, width)
            self.fc2 = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x.flatten(1))))
    """
)


def _write(path, text=NET):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _train(*extra):
    return main(["train", "--epochs", "1", "--quiet", "--device", "cpu", *extra])


def test_file_model_trains_predicts_exports_and_resumes(tmp_path, capsys):
    src = _write(tmp_path / "code" / "nets.py")
    run = str(tmp_path / "run")
    argv = ["--model", f"{src}:Net", "--model-args", '{"width": 24}', "--lr", "0.02"]
    assert _train(*argv, "--out", run) == 0
    rec = json.load(open(os.path.join(run, R.RECIPE)))
    spec = rec["model"]
    assert spec["kwargs"] == {"width": 24, "num_classes": 10, "in_features": 64}
    assert spec["import"]["file"] == src and spec["import"]["class"] == "Net"
    assert len(spec["import"]["sha256"]) == 64
    assert rec["metrics"]["test_accuracy"] > 0.5
    # predict rebuilds it from the recipe
    from manygrad.datasets import load_digits

    x, _ = load_digits("test")
    np.save(tmp_path / "one.npy", x[0])
    capsys.readouterr()
    assert main(["predict", run, str(tmp_path / "one.npy"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]["top"]) > 0
    # export traces it
    pytest.importorskip("onnx")
    assert main(["export", run]) == 0
    assert os.path.isfile(os.path.join(run, "model.onnx"))
    # resume with more epochs
    assert main(["train", "--resume", run, "--epochs", "2", "--quiet"]) == 0
    assert json.load(open(os.path.join(run, R.RECIPE)))["training"]["epochs"] == 2


def test_package_module_model(tmp_path, monkeypatch):
    _write(tmp_path / "pkg" / "__init__.py", "")
    _write(tmp_path / "pkg" / "models.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = str(tmp_path / "run")
    assert _train("--model", "pkg.models:Net", "--out", run) == 0
    spec = json.load(open(os.path.join(run, R.RECIPE)))["model"]
    assert spec["import"]["module"] == "pkg.models"
    assert spec["import"]["file"] == str(tmp_path / "pkg" / "models.py")


def test_missing_or_changed_code_is_named(tmp_path, capsys):
    src = _write(tmp_path / "nets.py")
    run = str(tmp_path / "run")
    assert _train("--model", f"{src}:Net", "--out", run) == 0
    np.save(tmp_path / "one.npy", np.zeros((1, 8, 8), np.float32))
    # changed code that no longer fits the weights
    _write(
        tmp_path / "nets.py",
        NET.replace("self.fc2 = nn.Linear(width", "self.fc3 = nn.Linear(width"),
    )
    capsys.readouterr()
    with pytest.warns(UserWarning, match=r"nets.py \(class Net\) changed"):
        assert main(["predict", run, str(tmp_path / "one.npy")]) == 2
    err = capsys.readouterr().err
    assert "class Net" in err and src in err and "restore the code" in err
    # gone
    os.remove(src)
    assert main(["predict", run, str(tmp_path / "one.npy")]) == 2
    err = capsys.readouterr().err
    assert src in err and "class Net" in err and "missing" in err


@pytest.mark.parametrize(
    "model, args, want",
    [
        ("{src}:Nope", None, "has no class Nope; it defines Net"),
        ("{src}:Net", "[1, 2]", "--model-args must be a JSON object"),
        ("{src}:Net", "{bad", "--model-args is not valid JSON"),
        ("{src}:Net", '{"depth": 3}', "bad arguments"),
        ("{dir}/absent.py:Net", None, "absent.py (class Net) is missing"),
        ("no_such_pkg_xyz.mod:Net", None, "can't be imported"),
    ],
)
def test_bad_model_specs(tmp_path, capsys, model, args, want):
    src = _write(tmp_path / "nets.py")
    argv = ["--model", model.format(src=src, dir=tmp_path), "--out", str(tmp_path / "r")]
    assert _train(*argv, *(["--model-args", args] if args else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and want in err and "Traceback" not in err


def test_model_args_for_builtins_and_on_resume(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert _train("--model", "mlp", "--model-args", '{"hidden": [32]}', "--out", run) == 0
    spec = json.load(open(os.path.join(run, R.RECIPE)))["model"]
    assert spec["name"] == "mlp" and spec["kwargs"]["hidden"] == [32]
    argv = ["train", "--resume", run, "--epochs", "2", "--quiet", "--model-args"]
    assert main([*argv, '{"hidden": [64]}']) == 2
    err = capsys.readouterr().err
    assert "--model-args" in err and "differs from the run being resumed" in err
    assert main([*argv, '{"hidden": [32]}']) == 0
