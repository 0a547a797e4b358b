"""Hostile and careless inputs to ``manygrad train``: each ends in a clear one-line error (exit
status 2, no traceback) and loses no data."""

import json
import os

import numpy as np
import pytest

from manygrad.cli.main import main
from manygrad.train import run as R


def _err(capsys) -> str:
    text = capsys.readouterr().err
    assert "Traceback" not in text
    return text


def _npz(path, n=40, classes=4, features=6, seed=0, **extra):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = np.arange(n) % classes
    arrays = {"x": x, "y": y}
    arrays.update(extra)
    np.savez(path, **arrays)
    return x, y


def _train(*args) -> int:
    return main(["train", "--quiet", "--device", "cpu", "--epochs", "1", *map(str, args)])


# ------------------------------------------------------------------ --out onto others' folders


def test_out_onto_a_foreign_folder_is_refused_and_left_alone(tmp_path, capsys):
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"their weights")
    (out / "metrics.csv").write_text("epoch,step\n1,10\n")
    assert _train("--out", out) == 2
    err = _err(capsys)
    assert "is not empty" in err and "--overwrite" in err
    assert (out / "model.safetensors").read_bytes() == b"their weights"
    assert (out / "metrics.csv").read_text() == "epoch,step\n1,10\n"
    assert not (out / R.RECIPE).exists()


def test_out_onto_a_run_is_refused_and_overwrite_writes(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train("--out", out) == 0
    before = (out / R.WEIGHTS).read_bytes()
    assert _train("--out", out, "--seed", 3) == 2
    assert "already holds a run" in _err(capsys)
    assert (out / R.WEIGHTS).read_bytes() == before
    assert _train("--out", out, "--seed", 3, "--overwrite") == 0
    assert (out / R.WEIGHTS).read_bytes() != before
    assert len(R.read_metrics(str(out))) == 1  # the old run's rows are gone, not blanked


def test_out_onto_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    assert _train("--out", f) == 2
    assert "is a file" in _err(capsys)
    assert f.read_text() == "keep me"


def test_fit_refuses_a_foreign_folder_unless_overwrite(tmp_path):
    import manygrad as mg
    from manygrad.train.guard import RunDirError

    out = tmp_path / "o"
    out.mkdir()
    (out / "data.bin").write_bytes(b"x")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = np.arange(32) % 2
    with pytest.raises(RunDirError, match="not empty"):
        mg.train.fit(mg.models.get("mlp", in_features=4, num_classes=2), (x, y), epochs=1,
                     out=str(out), progress=False)  # fmt: skip
    res = mg.train.fit(mg.models.get("mlp", in_features=4, num_classes=2), (x, y), epochs=1,
                       out=str(out), progress=False, overwrite=True)  # fmt: skip
    assert res.step > 0 and (out / "data.bin").read_bytes() == b"x"


def test_a_run_in_use_is_locked(tmp_path, capsys):
    from manygrad.train.guard import RunDirError, RunLock

    out = tmp_path / "busy"
    out.mkdir()
    with RunLock(str(out)):
        with pytest.raises(RunDirError, match="in use by another manygrad process"):
            RunLock(str(out)).acquire()
    RunLock(str(out)).acquire().release()  # free again once released


def test_a_second_process_on_one_run_refuses(tmp_path, capsys):
    import subprocess
    import sys

    out = tmp_path / "busy"
    assert _train("--out", out) == 0
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(out / '.manygrad.lock')!r}, os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert _train("--resume", out, "--epochs", 2) == 2
        assert "in use by another manygrad process" in _err(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert len(R.read_metrics(str(out))) == 1


# ------------------------------------------------------------------ NaN / Inf and labels


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_the_data_is_refused_naming_file_and_sample(tmp_path, capsys, bad):
    p = tmp_path / "d.npz"
    x, y = _npz(p)
    x[7, 2] = bad
    np.savez(p, x=x, y=y)
    assert _train("--data", p, "--out", tmp_path / "r") == 2
    err = _err(capsys)
    assert str(p) in err and "sample 7" in err
    assert not (tmp_path / "r").exists()


def test_nan_in_the_held_out_part_is_refused(tmp_path, capsys):
    p = tmp_path / "d.npz"
    x, y = _npz(p)
    xt = x.copy()
    xt[3, 0] = np.nan
    np.savez(p, x_train=x, y_train=y, x_test=xt, y_test=y)
    assert _train("--data", p) == 2
    err = _err(capsys)
    assert "held-out" in err and "sample 3" in err


@pytest.mark.parametrize(
    "labels, words",
    [
        (lambda y: np.where(y == 1, -1, y), "negative"),
        (lambda y: y.astype(np.float64) + 0.5, "not a class index"),
        (lambda y: np.where(y == 1, np.nan, y.astype(float)), "not a class index"),
        (lambda y: np.where(y == 1, 10**9, y), "classes for"),
    ],
)
def test_bad_labels_are_refused(tmp_path, capsys, labels, words):
    p = tmp_path / "d.npz"
    x, y = _npz(p)
    np.savez(p, x=x, y=labels(y))
    assert _train("--data", p) == 2
    err = _err(capsys)
    assert words in err and str(p) in err


def test_more_classes_than_samples_is_refused():
    from manygrad.train.guard import DataError, check_labels

    with pytest.raises(DataError, match="classes for 5 samples"):
        check_labels(np.array([0, 1, 2, 3, 99]), "f.npy")
    check_labels(np.array([0, 1, 2, 3, 4]), "f.npy")


def test_test_labels_beyond_the_training_classes_are_refused():
    import manygrad as mg
    from manygrad.datasets import ArrayData
    from manygrad.train.guard import DataError

    x = np.zeros((8, 4), np.float32)
    train = ArrayData("d", x, np.arange(8) % 2, ["a", "b"], None)
    test = ArrayData("d", x, np.full(8, 5), ["a", "b"], None)
    with pytest.raises(DataError, match="out of range for 2 classes"):
        mg.train.Trainer(mg.models.get("mlp", in_features=4, num_classes=2), train, test)


def test_recipe_is_strict_json_even_with_nan_metrics(tmp_path):
    rec = {"metrics": {"test_loss": float("nan"), "lr": float("inf")}, "ok": [1.0, float("-inf")]}
    R.write_recipe(str(tmp_path), rec)
    text = (tmp_path / R.RECIPE).read_text()
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert back == {"metrics": {"test_loss": None, "lr": None}, "ok": [1.0, None]}


# ------------------------------------------------------------------ sample counts and odd files


def test_zero_and_one_sample(tmp_path, capsys):
    for n in (0, 1):
        p = tmp_path / f"n{n}.npz"
        np.savez(p, x=np.zeros((n, 3), np.float32), y=np.zeros(n, np.int64))
        assert _train("--data", p) == 2
        err = _err(capsys)
        assert str(p) in err and "at least" in err


@pytest.mark.parametrize("what", ["empty_npy", "zero_bytes_npy", "zero_bytes_npz", "strings"])
def test_empty_and_string_files(tmp_path, capsys, what):
    if what == "empty_npy":
        p = tmp_path / "e.npy"
        np.save(p, np.zeros((0, 4), np.float32))
    elif what == "zero_bytes_npy":
        p = tmp_path / "z.npy"
        p.write_bytes(b"")
    elif what == "zero_bytes_npz":
        p = tmp_path / "z.npz"
        p.write_bytes(b"")
    else:
        p = tmp_path / "s.npz"
        np.savez(p, x=np.array([["a", "b"]] * 6), y=np.arange(6) % 2)
    assert _train("--data", p) == 2
    err = _err(capsys)
    assert str(p) in err and err.count("\n") == 1


def test_fifo_as_data_is_refused_without_blocking(tmp_path, capsys):
    p = tmp_path / "x.npy"
    os.mkfifo(p)
    assert _train("--data", p) == 2
    assert "FIFO" in _err(capsys)


@pytest.mark.parametrize(
    "opt, value",
    [
        ("--epochs", "0"),
        ("--epochs", "-3"),
        ("--epochs", "nan"),
        ("--batch-size", "0"),
        ("--lr", "0"),
        ("--lr", "-1e-3"),
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--seed", "-1"),
        ("--seed", str(2**64)),
        ("--workers", "-2"),
        ("--image-size", "0"),
        ("--image-size", "axb"),
    ],
)
def test_bad_arguments_name_the_option(capsys, opt, value):
    with pytest.raises(SystemExit) as e:
        main(["train", opt, value])
    assert e.value.code == 2
    assert f"argument {opt}" in _err(capsys)


def test_predict_temperature_is_checked(capsys):
    for v in ("0", "-1", "nan"):
        with pytest.raises(SystemExit):
            main(["predict", "run", "--temperature", v])
        assert "argument --temperature" in _err(capsys)


# ------------------------------------------------------------------ resume, launch


def test_resume_with_more_epochs_extends_the_schedule(tmp_path, capsys):
    out = tmp_path / "r"
    assert _train("--out", out) == 0
    assert main(["train", "--quiet", "--resume", str(out), "--epochs", "3"]) == 0
    rows = R.read_metrics(str(out))
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[1]["lr"] > 0  # the cosine schedule was stretched, not stuck at its end
    assert rows[2]["train_loss"] < rows[0]["train_loss"]
    capsys.readouterr()
    assert main(["train", "--quiet", "--resume", str(out), "--epochs", "2"]) == 2
    assert "nothing to do" in _err(capsys)
    assert main(["train", "--quiet", "--resume", str(out)]) == 0
    assert "nothing to do" in _err(capsys)
    assert len(R.read_metrics(str(out))) == 3


def test_a_onecycle_schedule_says_it_cannot_stretch(tmp_path):
    import manygrad as mg
    from manygrad.train.guard import RunDirError

    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = np.arange(32) % 2

    def model():
        return mg.models.get("mlp", in_features=4, num_classes=2)

    out = str(tmp_path / "oc")
    mg.train.fit(model(), (x, y), epochs=1, out=out, scheduler="onecycle", progress=False)
    with pytest.raises(RunDirError, match="can't be stretched"):
        mg.train.fit(model(), (x, y), epochs=2, resume=out, scheduler="onecycle", progress=False)


def test_damaged_checkpoint_on_resume_is_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    assert _train("--out", out) == 0
    (out / R.CHECKPOINT).write_bytes(b"\x00" * 7)
    assert main(["train", "--quiet", "--resume", str(out), "--epochs", "2"]) == 2
    err = _err(capsys)
    assert R.CHECKPOINT in err and err.count("\n") == 1


def test_launch_without_a_command(capsys):
    assert main(["launch", "-n", "2"]) == 2
    assert "give the command after --" in _err(capsys)
    assert main(["launch", "-n", "2", "--"]) == 2


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_the_cpu_warns(tmp_path, capsys, precision):
    import warnings

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert _train("--precision", precision, "--out", tmp_path / "r") == 0
    msgs = [str(w.message) for w in rec if "slower than fp32" in str(w.message)]
    assert msgs and precision in msgs[0]


def test_nan_in_streamed_data_is_refused_when_met(tmp_path, capsys):
    p = tmp_path / "x.npy"
    x = np.random.default_rng(0).normal(size=(600, 5)).astype(np.float32)
    probed = set(np.linspace(0, 599, 512).astype(np.int64).tolist())
    hidden = next(i for i in range(600) if i not in probed)  # met while training
    x[hidden, 1] = np.nan
    np.save(p, x)
    np.save(tmp_path / "y.npy", np.arange(600) % 3)
    import manygrad as mg
    from manygrad.train.guard import DataError

    ds = mg.data.Npy(str(p), str(tmp_path / "y.npy"))
    ds.name = str(p)
    with pytest.raises(DataError, match=f"sample {hidden} holds NaN or Inf"):
        mg.train.fit(mg.models.get("mlp", in_features=5, num_classes=3), ds, epochs=1,
                     stream=True, progress=False)  # fmt: skip

    x[hidden, 1] = 0
    x[probed.pop(), 2] = np.inf  # a probed sample: refused before training, same naming
    np.save(p, x)
    with pytest.raises(DataError, match="holds NaN or Inf"):
        mg.train.fit(mg.models.get("mlp", in_features=5, num_classes=3), ds, epochs=1,
                     stream=True, progress=False)  # fmt: skip


def test_a_checkpoint_that_does_not_fit_is_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    assert _train("--out", out) == 0
    state = R.load_checkpoint(str(out / R.CHECKPOINT))
    state["model"].pop("layers.0.bias")
    del state["rng"]
    R.save_checkpoint(str(out / R.CHECKPOINT), state)
    assert main(["train", "--quiet", "--resume", str(out), "--epochs", "2"]) == 2
    err = _err(capsys)
    assert "does not fit this run" in err and err.count("\n") == 1


@pytest.mark.parametrize("n", ["0", "-1"])
def test_threads_below_one_is_an_error(tmp_path, capsys, n):
    assert _train("--threads", n, "--out", tmp_path / "r") == 2
    assert "--threads must be at least 1" in _err(capsys)


def test_a_run_written_while_waiting_for_the_lock_is_not_overwritten(tmp_path, monkeypatch):
    """Two processes that both saw an empty --out: the second gets the lock after the first
    wrote its run, and then refuses."""
    import manygrad as mg
    from manygrad.train import guard

    out = tmp_path / "race"
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    y = np.arange(16) % 2
    t = mg.train.Trainer(mg.models.get("mlp", in_features=4, num_classes=2), (x, y),
                         epochs=1, out=str(out), progress=False)  # fmt: skip
    real = guard.RunLock.acquire

    def meanwhile(self):  # the other process finished its run just before this lock
        out.mkdir(exist_ok=True)
        (out / R.CHECKPOINT).write_bytes(b"the other run")
        return real(self)

    monkeypatch.setattr(guard.RunLock, "acquire", meanwhile)
    with pytest.raises(guard.RunDirError, match="already holds a run"):
        t.fit()
    assert (out / R.CHECKPOINT).read_bytes() == b"the other run"


@pytest.mark.parametrize("name", ["e.h5", "e.zarr", "train-images-idx3-ubyte", "t.txt"])
def test_empty_files_and_stores_name_the_file(tmp_path, capsys, name):
    p = tmp_path / name
    if name.endswith(".zarr"):
        pytest.importorskip("zarr")
        p.mkdir()
    else:
        p.write_bytes(b"")
    assert _train("--data", p, "--out", tmp_path / "r") == 2
    err = _err(capsys)
    assert str(p) in err and err.count("\n") == 1


def test_a_file_system_without_locks_trains_unlocked_with_a_warning(tmp_path, monkeypatch):
    import errno
    import fcntl

    from manygrad.train.guard import RunLock

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match="can't lock the run"):
        lock = RunLock(str(tmp_path / "nfs")).acquire()
    lock.release()
