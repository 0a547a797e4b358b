"""The ``manygrad`` command line: train, predict, runs, and the bad-input paths."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import manygrad as mg
from manygrad.cli.main import main
from manygrad.train import run as R

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run shared by the predict/runs tests."""
    out = str(tmp_path_factory.mktemp("runs") / "mlp1")
    rc = main(["train", "--epochs", "2", "--out", out, "--quiet", "--device", "cpu"])
    assert rc == 0
    return out


def test_train_writes_a_run(trained, capsys):
    for f in (R.RECIPE, R.WEIGHTS, R.CHECKPOINT, R.METRICS):
        assert os.path.isfile(os.path.join(trained, f))
    rec = json.load(open(os.path.join(trained, R.RECIPE)))
    assert rec["training"]["epochs"] == 2 and rec["model"]["name"] == "mlp"
    assert rec["metrics"]["test_accuracy"] > 0.8


def test_train_prints_result(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", "--epochs", "1", "--out", out, "--quiet", "--lr", "0.01"]) == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and "wall time" in text and out in text


def _digit_samples(k=3):
    from manygrad.datasets import load_digits

    x, y = load_digits("test")
    return x[:k], y[:k]


def test_predict_npy_text_and_json(trained, tmp_path, capsys):
    x, y = _digit_samples(3)
    one = str(tmp_path / "one.npy")
    batch = str(tmp_path / "batch.npy")
    np.save(one, x[0])
    np.save(batch, x)
    capsys.readouterr()
    assert main(["predict", trained, one, batch, "--json", "--top-k", "2"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["index"] for r in res] == [None, 0, 1, 2]
    assert all(len(r["top"]) == 2 for r in res)
    p = [t["probability"] for t in res[0]["top"]]
    assert p[0] >= p[1] and 0 < sum(p) <= 1 + 1e-6
    assert res[0]["top"] == res[1]["top"]  # same sample, alone or in a batch
    assert main(["predict", trained, one]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(one + ": ") and line.count("%") == 3


def test_predict_png_matches_npy(trained, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    x, _ = _digit_samples(1)
    png = str(tmp_path / "digit.png")
    # 0..16 -> 0..255, upscaled 4x: the run resizes back to 8x8 and rescales to 0..16
    big = np.kron(x[0].astype(np.float64) * 255 / 16, np.ones((4, 4))).round().astype(np.uint8)
    Image.fromarray(big).save(png)
    npy = str(tmp_path / "digit.npy")
    np.save(npy, x[0])
    capsys.readouterr()
    assert main(["predict", trained, png, npy, "--json", "--top-k", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res[0]["top"][0]["class"] == res[1]["top"][0]["class"]


def test_runs_lists_metrics(trained, capsys):
    root = os.path.dirname(trained)
    capsys.readouterr()
    assert main(["runs", root]) == 0
    text = capsys.readouterr().out
    assert "mlp1" in text and "2/2" in text and "%" in text
    assert main(["runs", root, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["model"] == "mlp" and rows[0]["test_accuracy"] > 0.5


def test_unknown_names_list_available(tmp_path, capsys):
    assert main(["train", "--model", "vgg", "--out", str(tmp_path / "a"), "--quiet"]) != 0
    assert "available models: cnn, gpt, mlp, resnet" in capsys.readouterr().err
    assert main(["train", "--data", "imagenet", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "embedded datasets (digits)" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


def test_device_cuda_without_gpu_explains(tmp_path, capsys):
    if mg.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["train", "--device", "cuda", "--out", str(tmp_path / "c"), "--quiet"]) == 2
    msg = capsys.readouterr().err
    assert "CUDA is unusable" in msg and mg.cuda.why_unavailable() in msg


def test_bad_weights_give_clear_errors(trained, tmp_path, capsys):
    import shutil

    run = str(tmp_path / "copy")
    shutil.copytree(trained, run)
    x, _ = _digit_samples(1)
    npy = str(tmp_path / "x.npy")
    np.save(npy, x[0])
    w = os.path.join(run, R.WEIGHTS)
    data = open(w, "rb").read()
    open(w, "wb").write(data[: len(data) // 2])  # truncated
    capsys.readouterr()
    assert main(["predict", run, npy]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and R.WEIGHTS in err
    open(w, "wb").write(b"PK\x03\x04 this is a zip, not safetensors")
    assert main(["predict", run, npy]) == 2
    assert "error:" in capsys.readouterr().err


def test_resume_with_checkpoint_of_other_architecture_overwrites_nothing(trained, tmp_path, capsys):
    import shutil

    run = str(tmp_path / "other")
    shutil.copytree(trained, run)
    rec = json.load(open(os.path.join(run, R.RECIPE)))
    rec["model"] = {"name": "cnn", "kwargs": {"image_size": 8}}
    rec["training"]["epochs"] = 3
    R.write_recipe(run, rec)
    before = {f: open(os.path.join(run, f), "rb").read() for f in sorted(os.listdir(run))}
    capsys.readouterr()
    assert main(["train", "--resume", run, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "conv1.weight" in err or "layers.0.weight" in err
    after = {f: open(os.path.join(run, f), "rb").read() for f in sorted(os.listdir(run))}
    assert before == after


def test_ctrl_c_then_resume_matches_uninterrupted(tmp_path, monkeypatch, capsys):
    from manygrad.train import trainer as T

    args = ["train", "--epochs", "2", "--quiet", "--batch-size", "128", "--seed", "3"]
    full = str(tmp_path / "full")
    assert main(args + ["--out", full]) == 0
    cut = str(tmp_path / "cut")
    orig = T.Trainer.__init__

    def init(self, *a, **kw):
        orig(self, *a, **kw)

        def stop(tr):
            if tr.step == 5:
                raise KeyboardInterrupt

        self.callbacks = [stop]

    monkeypatch.setattr(T.Trainer, "__init__", init)
    capsys.readouterr()
    assert main(args + ["--out", cut]) == 130
    assert f"manygrad train --resume {cut}" in capsys.readouterr().err
    monkeypatch.setattr(T.Trainer, "__init__", orig)
    assert main(["train", "--resume", cut, "--quiet"]) == 0
    a, b = mg.load(os.path.join(full, R.WEIGHTS)), mg.load(os.path.join(cut, R.WEIGHTS))
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_loss_stops(tmp_path, capsys):
    out = str(tmp_path / "nan")
    rc = main(
        ["train", "--epochs", "2", "--lr", "1e12", "--optimizer", "sgd", "--quiet", "--out", out]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "at step" in err and "--lr" in err and "GradScaler" in err


def test_reserved_commands_and_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in ("train", "predict", "runs", "bench", "doctor", "launch", "export"):
        assert name in text


def test_python_dash_m(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    r = subprocess.run(
        [sys.executable, "-m", "manygrad", "runs", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0 and "no runs" in r.stderr


def test_real_ctrl_c_saves_a_resumable_checkpoint(tmp_path):
    import signal
    import time

    out = str(tmp_path / "sig")
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    cmd = [sys.executable, "-m", "manygrad", "train", "--epochs", "500", "--quiet", "--out", out]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 90
        while not os.path.exists(os.path.join(out, R.METRICS)) and time.time() < deadline:
            time.sleep(0.1)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert f"manygrad train --resume {out}" in err
    state = R.load_checkpoint(os.path.join(out, R.CHECKPOINT))
    assert 0 < state["step"] < 500 * 23


def test_text_file_trains_a_char_gpt_and_predict_continues_a_prompt(tmp_path, capsys):
    txt = tmp_path / "tiny.txt"
    txt.write_text("to be or not to be, that is the question. " * 25)
    out = str(tmp_path / "gpt")
    assert main(["train", "--data", str(txt), "--epochs", "1", "--quiet", "--out", out]) == 0
    rec = json.load(open(os.path.join(out, R.RECIPE)))
    assert rec["model"]["name"] == "gpt" and rec["task"] == "language-model"
    assert rec["model"]["kwargs"]["vocab_size"] == len(set(txt.read_text()))
    capsys.readouterr()
    assert main(["predict", out, "--prompt", "to be", "--tokens", "12", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["text"].startswith("to be") and len(res["text"]) == 5 + 12
    assert main(["predict", out, "--prompt", "XYZ"]) == 2
    assert "never saw" in capsys.readouterr().err


def test_data_paths_image_folder_and_npz(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    from manygrad.datasets import load_digits

    x, y = load_digits("train")
    root = tmp_path / "folder"
    for i in range(60):
        d = root / ("odd" if y[i] % 2 else "even")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[i] * 15).astype(np.uint8)).save(d / f"{i}.png")
    out = str(tmp_path / "img-run")
    assert (
        main(["train", "--data", str(root), "--epochs", "1", "--out", out, "--device", "cpu"]) == 0
    )
    text = capsys.readouterr().out
    assert "image folder" in text and "even" in text
    assert json.load(open(os.path.join(out, R.RECIPE)))["classes"] == ["even", "odd"]
    npz = str(tmp_path / "d.npz")
    np.savez(npz, x_train=x[:80], y_train=y[:80], x_test=x[80:100], y_test=y[80:100])
    out2 = str(tmp_path / "npz-run")
    assert main(["train", "--data", npz, "--epochs", "1", "--quiet", "--out", out2]) == 0
    rec = json.load(open(os.path.join(out2, R.RECIPE)))
    assert rec["data"]["train_samples"] == 80 and rec["data"]["test_samples"] == 20
    bad = str(tmp_path / "bad.npz")
    np.savez(bad, a=x[:5])
    assert main(["train", "--data", bad, "--quiet", "--out", str(tmp_path / "no")]) == 2
    assert "expected one of the pairs" in capsys.readouterr().err


def test_runs_marks_unfinished_and_resume_of_finished_run_is_a_no_op(trained, tmp_path, capsys):
    import shutil

    run = str(tmp_path / "done")
    shutil.copytree(trained, run)
    before = open(os.path.join(run, R.WEIGHTS), "rb").read()
    capsys.readouterr()
    assert main(["train", "--resume", run, "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert open(os.path.join(run, R.WEIGHTS), "rb").read() == before
    rec = json.load(open(os.path.join(run, R.RECIPE)))
    rec["training"]["epochs"] = 5  # as if stopped early
    R.write_recipe(run, rec)
    assert main(["runs", str(tmp_path)]) == 0
    assert "2/5 (unfinished)" in capsys.readouterr().out


def test_stream_reads_an_image_folder_batch_by_batch_and_resumes(tmp_path, monkeypatch, capsys):
    Image = pytest.importorskip("PIL.Image")
    from manygrad.datasets import load_digits
    from manygrad.train import trainer as T

    x, y = load_digits("train")
    root = tmp_path / "folder"
    for i in range(80):
        d = root / f"c{y[i] % 3}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[i] * 15).astype(np.uint8)).save(d / f"{i}.png")
    args = [
        "train",
        "--data",
        str(root),
        "--stream",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--workers",
        "2",
        "--quiet",
    ]
    full = str(tmp_path / "full")
    assert main(args + ["--out", full]) == 0
    rec = json.load(open(os.path.join(full, R.RECIPE)))
    assert rec["training"]["stream"] is True and rec["classes"] == ["c0", "c1", "c2"]
    cut = str(tmp_path / "cut")
    orig = T.Trainer.__init__

    def init(self, *a, **kw):
        orig(self, *a, **kw)
        self.callbacks = [_stop_at(3)]

    monkeypatch.setattr(T.Trainer, "__init__", init)
    assert main(args + ["--out", cut]) == 130
    monkeypatch.setattr(T.Trainer, "__init__", orig)
    assert main(["train", "--resume", cut, "--workers", "2", "--quiet"]) == 0
    a, b = mg.load(os.path.join(full, R.WEIGHTS)), mg.load(os.path.join(cut, R.WEIGHTS))
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)


def _stop_at(k):
    def stop(tr):
        if tr.step == k:
            raise KeyboardInterrupt

    return stop


def test_predictions_do_not_depend_on_the_batch(trained):
    from manygrad import models
    from manygrad.cli.predict import classify

    x, _ = _digit_samples(20)
    rec, model = models.read_recipe(trained), models.load(trained)
    together = classify(model, rec, x, 10)
    alone = [classify(model, rec, x[i : i + 1], 10)[0] for i in range(20)]
    split = classify(model, rec, x[:7], 10) + classify(model, rec, x[7:], 10)
    assert together == alone == split  # exactly, to the last bit
