"""Damaged and hostile run directories: recipes checked against their weights before a model
is built, one-line errors naming the file and field, `runs` marking the broken run."""

import json
import os
import shutil

import numpy as np
import pytest

import manygrad as mg
from manygrad.cli.main import main
from manygrad.io import recipes
from manygrad.train import run as R


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "good")
    assert main(["train", "--epochs", "1", "--out", out, "--quiet", "--device", "cpu"]) == 0
    return out


@pytest.fixture
def run(good, tmp_path):
    """A fresh copy of the good run, to damage."""
    d = str(tmp_path / "runs" / "copy")
    shutil.copytree(good, d)
    return d


def _edit(run_dir, change):
    p = os.path.join(run_dir, R.RECIPE)
    rec = json.load(open(p))
    change(rec)
    with open(p, "w") as f:
        json.dump(rec, f)


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    for w in words:
        assert w in err, err
    return err


def _x(tmp_path):
    p = str(tmp_path / "x.npy")
    np.save(p, np.zeros(64, np.float32))
    return p


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda r: r["model"]["kwargs"].update(hidden=[10**9]), "model.kwargs.hidden"),
        (lambda r: r["model"]["kwargs"].update(hidden=[2**40]), "model.kwargs.hidden"),
        (lambda r: r["model"]["kwargs"].update(hidden=[256]), "model.kwargs.hidden"),
        (lambda r: r["model"]["kwargs"].update(hidden=[512] * 10**5), "model.kwargs.hidden"),
        (lambda r: r["model"]["kwargs"].update(num_classes=11), "model.kwargs.num_classes"),
        (lambda r: r["model"]["kwargs"].update(in_features=10**6), "model.kwargs.in_features"),
        (lambda r: r["model"]["kwargs"].update(hidden="wide"), "model.kwargs"),
        (lambda r: r["model"].update(kwargs=[1, 2]), "model.kwargs"),
        (lambda r: r["model"].update(name="vgg\x1b[31m"), "model.name"),
        (lambda r: r["model"].update(name=7), "model.name"),
        (lambda r: r.pop("model"), "model"),
        (lambda r: r.update(classes=["0", "1"]), "classes"),
        (lambda r: r.update(classes=[1, 2, 3]), "classes"),
        (lambda r: r["input"].update(shape=[10**12]), "input.shape"),
        (lambda r: r["input"].update(shape=[7, 7]), "input.shape"),
        (lambda r: r.update(input=[1]), "input"),
    ],
)
def test_recipe_that_disagrees_is_refused_naming_the_field(run, tmp_path, capsys, change, field):
    _edit(run, change)
    assert main(["predict", run, _x(tmp_path)]) == 2
    _one_line_error(capsys, "recipe.json", f"field {field}")
    assert "\x1b" not in capsys.readouterr().err


def test_huge_sizes_are_refused_before_allocation(run, monkeypatch):
    _edit(run, lambda r: r["model"]["kwargs"].update(hidden=[10**9]))
    monkeypatch.setattr(mg.models, "get", lambda *a, **k: pytest.fail("model was built"))
    with pytest.raises(recipes.RecipeError, match="model.kwargs.hidden"):
        mg.models.load(run)


@pytest.mark.parametrize(
    "raw, words",
    [
        ("[" * 100_000 + "]" * 100_000, "too deeply"),
        (b'{"model": "\xff\xfe"}', "not UTF-8"),
        ("{nope", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("", "not valid JSON"),
    ],
)
def test_damaged_recipe_files(run, tmp_path, capsys, raw, words):
    p = os.path.join(run, R.RECIPE)
    with open(p, "wb") as f:
        f.write(raw if isinstance(raw, bytes) else raw.encode())
    assert main(["predict", run, _x(tmp_path)]) == 2
    _one_line_error(capsys, p, words)


def test_weights_missing_keys(run, tmp_path, capsys):
    w = os.path.join(run, R.WEIGHTS)
    sd = mg.load(w)
    sd.pop("layers.2.bias")
    mg.save(sd, w)
    assert main(["predict", run, _x(tmp_path)]) == 2
    _one_line_error(capsys, "missing", "layers.2.bias")


def test_expected_shapes_match_the_built_models():
    cases = [
        ("mlp", {"in_features": 5, "hidden": [3, 4], "num_classes": 2}),
        ("mlp", {"hidden": [7], "dropout": 0.5}),
        ("mlp", {"hidden": []}),
        ("cnn", {"in_channels": 3, "image_size": 12, "channels": [4, 6], "hidden": 5}),
        ("resnet", {"num_blocks": [2, 1, 2], "widths": [4, 4, 8], "in_channels": 1}),
        ("resnet", {}),
        ("gpt", {"vocab_size": 7, "block_size": 5, "n_layer": 2, "n_head": 2, "n_embd": 8}),
        ("gpt", {"n_layer": 1, "n_head": 2, "n_embd": 8, "bias": False}),
    ]
    for name, kw in cases:
        built = {k: tuple(v.shape) for k, v in mg.models.get(name, **kw).state_dict().items()}
        assert recipes.expected_shapes(name, kw) == built, (name, kw)


def test_runs_lists_the_others_and_marks_the_broken_one(good, tmp_path, capsys):
    root = tmp_path / "runs"
    shutil.copytree(good, root / "ok")
    shutil.copytree(good, root / "bad")
    (root / "bad" / R.RECIPE).write_bytes(b"\xff" * 10)
    shutil.copytree(good, root / "evil")
    _edit(str(root / "evil"), lambda r: r["model"].update(name="mlp\x1b]0;pwned\x07"))
    _edit(str(root / "evil"), lambda r: r["data"].update(name="\x1b[2J"))
    capsys.readouterr()
    assert main(["runs", str(root)]) == 0
    cap = capsys.readouterr()
    assert "\x1b" not in cap.out + cap.err and "\x07" not in cap.out
    assert str(root / "ok") in cap.out and "BROKEN" in cap.out
    assert "not UTF-8" in cap.err and str(root / "bad") in cap.err
    assert "\\x1b" in cap.out  # the evil name, shown escaped


def test_predict_nan_output_is_an_error(run, tmp_path, capsys):
    w = os.path.join(run, R.WEIGHTS)
    sd = mg.load(w)
    sd["layers.0.weight"] = sd["layers.0.weight"] * float("nan")
    mg.save(sd, w)
    x = np.random.default_rng(0).random(64).astype(np.float32)
    p = str(tmp_path / "x.npy")
    np.save(p, x)
    assert main(["predict", run, p]) == 2
    _one_line_error(capsys, "NaN", p)


@pytest.mark.parametrize("what", ["nan", "strings", "empty", "zero_bytes"])
def test_predict_bad_npy_inputs(good, tmp_path, capsys, what):
    p = tmp_path / "in.npy"
    if what == "nan":
        np.save(p, np.full(64, np.nan, np.float32))
    elif what == "strings":
        np.save(p, np.array(["a"] * 64))
    elif what == "empty":
        np.save(p, np.zeros(0, np.float32))
    else:
        p.write_bytes(b"")
    assert main(["predict", good, str(p)]) == 2
    _one_line_error(capsys, str(p))


def test_predict_a_fifo_input(good, tmp_path, capsys):
    p = tmp_path / "in.npy"
    os.mkfifo(p)
    assert main(["predict", good, str(p)]) == 2
    _one_line_error(capsys, "FIFO")


def test_export_out_onto_a_folder_or_a_missing_folder(good, tmp_path, capsys):
    pytest.importorskip("onnx")
    assert main(["export", good, "--out", str(tmp_path)]) == 2
    _one_line_error(capsys, "is a folder")
    assert main(["export", good, "--out", str(tmp_path / "no" / "m.onnx")]) == 2
    _one_line_error(capsys, "does not exist")


def test_missing_optional_package_names_the_extra(monkeypatch, capsys):
    from manygrad.cli import main as M

    e = ModuleNotFoundError("No module named 'h5py'", name="h5py")
    assert "pip install 'manygrad[science]'" in M.missing_package(e)
    e = ModuleNotFoundError("No module named 'onnx'", name="onnx")
    assert "manygrad[onnx]" in M.missing_package(e)

    def boom(args):
        raise ModuleNotFoundError("No module named 'PIL'", name="PIL")

    monkeypatch.setattr("manygrad.cli.runs.run", boom)
    assert main(["runs", "nowhere"]) == 2
    _one_line_error(capsys, "manygrad[images]")


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda r: r["training"].update(epochs="many"), "training.epochs"),
        (lambda r: r["training"].update(lr=-1), "training.lr"),
        (lambda r: r["training"].update(batch_size=0), "training.batch_size"),
        (lambda r: r["training"].update(precision="fp8"), "training.precision"),
        (lambda r: r["input"].update(range="abc"), "input.range"),
    ],
)
def test_resume_with_damaged_training_fields(run, capsys, change, field):
    _edit(run, change)
    assert main(["train", "--quiet", "--resume", run, "--epochs", "3"]) == 2
    _one_line_error(capsys, "recipe.json", f"field {field}")


def test_export_without_onnx_names_the_extra(good, tmp_path, monkeypatch, capsys):
    import builtins

    real = builtins.__import__

    def no_onnx(name, *a, **k):
        if name == "onnx" or name.startswith("onnx."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    assert main(["export", good, "--out", str(tmp_path / "m.onnx")]) == 2
    _one_line_error(capsys, "pip install 'manygrad[onnx]'")


def test_class_names_in_data_are_escaped(tmp_path, capsys):
    from PIL import Image

    for c in ("\x1b[31mred", "blue"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.new("RGB", (8, 8), (i, i, i)).save(tmp_path / c / f"{i}.png")
    assert main(["train", "--data", str(tmp_path), "--epochs", "1", "--out",
                 str(tmp_path / "run"), "--device", "cpu"]) == 0  # fmt: skip
    cap = capsys.readouterr()
    assert "\x1b" not in cap.out + cap.err and "\\x1b[31mred" in cap.out
