"""``manygrad train --data PATH`` tests on the split a dataset ships with, and holds out
``--val-split`` only when there is none."""

import json
import os
import sys

import numpy as np
import pytest

from manygrad.cli.main import main
from manygrad.data.detect import split_keys, splits
from manygrad.datasets import load_digits
from manygrad.train import run as R

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "data"))
from datafiles import write_idx  # noqa: E402


def _digits_u8(split):
    x, y = load_digits(split)
    return (x.reshape(len(x), 8, 8) * 16).clip(0, 255).astype(np.uint8), y.astype(np.uint8)


def _train(data, out, *extra):
    return main(["train", "--data", data, "--epochs", "2", "--out", out, "--device", "cpu",
                 *extra])  # fmt: skip


def _recipe(out):
    return json.load(open(os.path.join(out, R.RECIPE)))


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_uses_its_t10k_files(tmp_path, capsys, gz):
    root = tmp_path / "fashion"
    root.mkdir()
    sfx = ".gz" if gz else ""
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = _digits_u8(split)
        write_idx(root / f"{prefix}-images-idx3-ubyte{sfx}", x, gz=gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{sfx}", y, gz=gz)
    out = str(tmp_path / "run")
    assert _train(str(root), out, "--model", "cnn", "--val-split", "0.5", "--lr", "0.01") == 0
    text = capsys.readouterr().out
    assert "ships its own test split (t10k); --val-split is not used" in text
    assert "1437 train / 360 test samples" in text and "own test split (t10k)" in text
    rec = _recipe(out)
    assert rec["data"]["train_samples"] == 1437 and rec["data"]["test_samples"] == 360
    assert rec["data"]["test_split"] == "the dataset's own test split (t10k)"
    assert rec["metrics"]["test_accuracy"] > 0.5
    assert splits(str(root))["kind"] == "IDX"


def test_idx_split_detection_layouts(tmp_path):
    x, y = _digits_u8("test")
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        for gz in (False, True):  # both kept, as downloaders leave them
            write_idx(raw / f"{prefix}-images-idx3-ubyte{'.gz' if gz else ''}", x, gz=gz)
            write_idx(raw / f"{prefix}-labels-idx1-ubyte{'.gz' if gz else ''}", y, gz=gz)
    found = splits(str(tmp_path / "FashionMNIST"))
    assert found["train"] == (str(raw / "train-images-idx3-ubyte"),
                              str(raw / "train-labels-idx1-ubyte"))  # fmt: skip
    assert found["test"][0] == str(raw / "t10k-images-idx3-ubyte")
    assert found["test_name"] == "t10k"
    only_train = tmp_path / "only"
    only_train.mkdir()
    write_idx(only_train / "train-images-idx3-ubyte", x)
    write_idx(only_train / "train-labels-idx1-ubyte", y)
    assert splits(str(only_train)) is None


def test_image_folder_with_train_and_val(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    x, y = _digits_u8("train")
    for split, idx in (("train", range(40)), ("val", range(40, 52))):
        for i in idx:
            d = tmp_path / "imgs" / split / ("odd" if y[i] % 2 else "even")
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i]).save(d / f"{i}.png")
    out = str(tmp_path / "run")
    assert _train(str(tmp_path / "imgs"), out) == 0
    assert "own test split (val)" in capsys.readouterr().out
    rec = _recipe(out)
    assert rec["data"]["train_samples"] == 40 and rec["data"]["test_samples"] == 12
    assert rec["classes"] == ["even", "odd"]


def test_h5_with_train_and_test_arrays(tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    x, y = _digits_u8("train")
    path = str(tmp_path / "d.h5")
    with h5py.File(path, "w") as f:
        f["train/images"], f["train/labels"] = x[:100], y[:100]
        f["test/images"], f["test/labels"] = x[100:130], y[100:130]
    out = str(tmp_path / "run")
    assert _train(path, out) == 0
    assert "own test split (test/images)" in capsys.readouterr().out
    rec = _recipe(out)
    assert rec["data"]["train_samples"] == 100 and rec["data"]["test_samples"] == 30


def test_npy_with_labels_holds_out_val_split(tmp_path, capsys):
    x, y = _digits_u8("train")
    np.save(tmp_path / "x.npy", x[:200])
    np.save(tmp_path / "y.npy", y[:200].astype(np.int64))
    out = str(tmp_path / "run")
    argv = ["--labels", str(tmp_path / "y.npy"), "--val-split", "0.25"]
    assert _train(str(tmp_path / "x.npy"), out, *argv) == 0
    assert "25% of the samples held out (--val-split 0.25)" in capsys.readouterr().out
    rec = _recipe(out)
    assert rec["data"]["train_samples"] == 150 and rec["data"]["test_samples"] == 50


def test_bad_split_arguments(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((10, 4), np.float32))
    assert _train(str(tmp_path / "x.npy"), str(tmp_path / "r"), "--val-split", "1.5") == 2
    assert "--val-split must be between 0 and 1" in capsys.readouterr().err
    argv = ["--labels", str(tmp_path / "nope.npy")]
    assert _train(str(tmp_path / "x.npy"), str(tmp_path / "r"), *argv) == 2
    assert "--labels" in capsys.readouterr().err


@pytest.mark.parametrize(
    "keys, want",
    [
        (
            ["x_train", "y_train", "x_test", "y_test"],
            {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")},
        ),  # fmt: skip
        (
            ["train_images", "train_labels", "val_images", "val_labels"],
            {"train": ("train_images", "train_labels"), "test": ("val_images", "val_labels")},
        ),
        (
            ["train/x", "train/y", "test/x", "test/y"],
            {"train": ("train/x", "train/y"), "test": ("test/x", "test/y")},
        ),  # fmt: skip
        (["x_train", "y_train"], None),
        (["images", "labels"], None),
    ],
)
def test_split_keys(keys, want):
    assert split_keys(keys) == want


def test_stream_reads_the_own_split(tmp_path, capsys):
    root = tmp_path / "idx"
    root.mkdir()
    for split, prefix, n in (("train", "train", 200), ("test", "t10k", 50)):
        x, y = _digits_u8(split)
        write_idx(root / f"{prefix}-images-idx3-ubyte", x[:n])
        write_idx(root / f"{prefix}-labels-idx1-ubyte", y[:n])
    out = str(tmp_path / "run")
    assert _train(str(root), out, "--stream", "--epochs", "1") == 0
    assert "200 train / 50 test samples, using its own test split (t10k)" in capsys.readouterr().out
    rec = _recipe(out)
    assert rec["data"]["train_samples"] == 200 and rec["data"]["test_samples"] == 50
