"""The training loop: learning, run directories, recipes, resume and divergence."""

import json
import os
import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad import models
from manygrad.train import DivergedError, Trainer, fit
from manygrad.train import run as R
from manygrad.train.events import read_scalars


def _digits(n_train=256, n_test=64):
    from manygrad.datasets import ArrayData, load_digits

    x, y = load_digits("train")
    xt, yt = load_digits("test")
    cls = [str(i) for i in range(10)]
    return (
        ArrayData("digits", x[:n_train, None], y[:n_train], cls, (0.0, 16.0)),
        ArrayData("digits", xt[:n_test, None], yt[:n_test], cls, (0.0, 16.0)),
    )


def _model(seed=0, **kw):
    mg.manual_seed(seed)
    return models.get("mlp", in_features=64, hidden=kw.pop("hidden", [32]), **kw)


def _weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_digits_shipped():
    from manygrad.datasets import load, load_digits

    x, y = load_digits("train")
    xt, yt = load_digits("test")
    assert x.shape == (1437, 8, 8) and x.dtype == np.uint8 and x.max() == 16
    assert xt.shape == (360, 8, 8) and yt.shape == (360,)
    assert np.bincount(yt).tolist() == [36] * 10
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    with pytest.raises(ValueError, match="available datasets: digits"):
        load("mnist-fashion")
    ds = load_digits("test", as_dataset=True)
    assert len(ds) == 360
    img, label = ds[5]
    assert tuple(img.shape) == (1, 8, 8) and img.dtype == mg.float32
    np.testing.assert_array_equal(img.numpy()[0], xt[5])
    assert int(label) == yt[5]


def test_channel_statistics():
    from manygrad.train.data import channel_stats, normalise

    x = np.random.default_rng(0).normal(size=(50, 3, 4, 4)) * [[[[1.0]], [[2.0]], [[3.0]]]]
    mean, std = channel_stats(x)
    assert len(mean) == 3 and std[2] > std[1] > std[0]
    z = normalise(x, mean, std)
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-4)
    assert len(channel_stats(x[:, 0])[0]) == 1  # (N, H, W): one value, not one per row


def test_loss_falls_and_accuracy_rises():
    train, test = _digits()
    res = fit(_model(), train, test, epochs=4, batch_size=32, lr=1e-2, progress=False)
    losses = [r["train_loss"] for r in res.history]
    assert losses[-1] < 0.5 * losses[0]
    assert res.metrics["test_accuracy"] > 0.8
    assert res.step == 4 * 8


def test_fit_accepts_arrays_and_names():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    mg.manual_seed(0)
    res = fit(
        models.get("mlp", in_features=4, hidden=[8], num_classes=2),
        (x, y),
        (x, y),
        epochs=20,
        batch_size=16,
        lr=3e-2,
        progress=False,
    )
    assert res.metrics["test_accuracy"] > 0.7
    with pytest.raises(ValueError, match="available datasets"):
        fit(_model(), "cifar-1000", progress=False)


def test_run_directory_and_recipe_round_trip(tmp_path):
    train, test = _digits()
    out = str(tmp_path / "run")
    res = fit(_model(), train, test, epochs=2, batch_size=64, out=out, progress=False)
    for f in (R.RECIPE, R.WEIGHTS, R.CHECKPOINT, R.METRICS):
        assert os.path.isfile(os.path.join(out, f)), f
    rec = json.load(open(os.path.join(out, R.RECIPE)))
    assert rec["model"] == {"name": "mlp", "kwargs": {"in_features": 64, "hidden": [32]}}
    assert rec["input"]["shape"] == [1, 8, 8] and rec["input"]["range"] == [0.0, 16.0]
    assert rec["input"]["preprocessing"]["mean"][0] == pytest.approx(train.images.mean())
    assert rec["classes"] == [str(i) for i in range(10)]
    assert rec["data"]["fingerprint"] == R.fingerprint(
        train.images, train.labels, test.images, test.labels
    )
    assert rec["manygrad_version"] == mg.__version__
    assert rec["metrics"]["test_accuracy"] == pytest.approx(res.metrics["test_accuracy"])
    rows = R.read_metrics(out)
    assert [r["epoch"] for r in rows] == [1, 2] and rows[-1]["step"] == 8
    tags = {t for _, t, _ in read_scalars(_events(out))}
    assert {"loss/train_step", "epoch/test_accuracy"} <= tags
    # the model comes back from the recipe alone, with the same outputs
    again = models.load(out)
    x = mg.randn(5, 1, 8, 8)
    res.model.eval()
    with mg.no_grad():
        np.testing.assert_array_equal(again(x).numpy(), res.model(x).numpy())


def _events(out):
    return next(os.path.join(out, f) for f in os.listdir(out) if f.startswith("events.out"))


def _interrupt_at(k):
    def cb(trainer):
        if trainer.step == k:
            raise KeyboardInterrupt

    return cb


RESUME_CASES = [("adamw", {}), ("sgd", {"model": {"dropout": 0.3}, "augment": 1})]


@pytest.mark.parametrize("optimizer,extra", RESUME_CASES, ids=["adamw", "sgd-dropout-augment"])
def test_resume_reaches_the_same_weights(tmp_path, optimizer, extra):
    """Interrupt at step k (shuffled batches, dropout), resume, compare with a full run."""
    train, test = _digits(200, 40)
    kw = dict(epochs=3, batch_size=32, lr=1e-2, optimizer=optimizer, progress=False, seed=5)
    kw["augment"] = extra.get("augment", 0)
    mkw = extra.get("model", {})
    full = fit(_model(**mkw), train, test, out=str(tmp_path / "full"), **kw)
    out = str(tmp_path / "cut")
    cut = fit(_model(**mkw), train, test, out=out, callbacks=[_interrupt_at(10)], **kw)
    assert cut.interrupted and cut.step == 10
    # a different init, in eval mode: weights and mode must come from the checkpoint and fit
    model = _model(seed=123, **mkw).eval()
    resumed = fit(model, train, test, resume=out, **kw)
    assert not resumed.interrupted and resumed.step == full.step
    a, b = _weights(full.model), _weights(resumed.model)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert [r["epoch"] for r in R.read_metrics(out)] == [1, 2, 3]


def test_checkpoint_of_other_architecture_overwrites_nothing(tmp_path):
    train, test = _digits(64, 16)
    out = str(tmp_path / "run")
    fit(_model(), train, test, epochs=1, out=out, progress=False)
    before = {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)}
    other = Trainer(_model(hidden=[16, 8]), train, test, out=out, progress=False)
    with pytest.raises(Exception, match=r"(?s)(missing|unexpected|shape).*layers"):
        other.resume(out)
    after = {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)}
    assert before == after


def test_nan_loss_stops_with_step_and_hint():
    train, test = _digits(128, 16)
    calls = {"n": 0}

    def loss_fn(out, y):
        calls["n"] += 1
        loss = mg.nn.functional.cross_entropy(out, y)
        return loss * float("nan") if calls["n"] == 7 else loss

    with pytest.raises(DivergedError, match=r"step 7 .*lower learning rate") as e:
        fit(
            _model(),
            train,
            test,
            epochs=2,
            batch_size=16,
            loss_fn=loss_fn,
            progress=False,
            log_every=5,
        )
    assert e.value.step == 7


def test_checkpoint_round_trip_and_foreign_files(tmp_path):
    p = str(tmp_path / "ck.safetensors")
    state = {"model": {"w": mg.ones(2, 3)}, "step": 7, "rng": {"state": 2**100 + 3}, "x": None}
    R.save_checkpoint(p, state)
    back = R.load_checkpoint(p)
    assert back["step"] == 7 and back["rng"]["state"] == 2**100 + 3 and back["x"] is None
    np.testing.assert_array_equal(back["model"]["w"].numpy(), np.ones((2, 3), np.float32))
    plain = str(tmp_path / "plain.safetensors")
    mg.save({"w": mg.ones(2)}, plain)
    with pytest.raises(mg.errors.CheckpointError, match="not a manygrad training checkpoint"):
        R.load_checkpoint(plain)
    bad = str(tmp_path / "bad.safetensors")
    with open(bad, "wb") as f:
        f.write(open(p, "rb").read()[:40])
    with pytest.raises(mg.errors.CheckpointError):
        R.load_checkpoint(bad)


def test_fakegpu_training_reads_loss_only_every_log_every_steps():
    train, test = _digits(128, 16)
    t = Trainer(
        _model(),
        train,
        None,
        epochs=1,
        batch_size=16,
        device="fakegpu",
        progress=False,
        log_every=4,
    )
    mg.backend.fake_stats.reset()
    t.fit()
    # 8 steps, read twice (each read: losses + correct counts), never once per step
    assert 0 < mg.backend.fake_stats.syncs <= 4


def test_char_gpt_learns_next_characters():
    text = "manygrad trains tiny language models. " * 12
    chars = sorted(set(text))
    idx = np.array([chars.index(c) for c in text])
    t = 12
    starts = np.arange(0, len(idx) - t - 1, 3)
    x = np.stack([idx[s : s + t] for s in starts])
    y = np.stack([idx[s + 1 : s + t + 1] for s in starts])
    mg.manual_seed(0)
    kw = dict(vocab_size=len(chars), block_size=t, n_layer=1, n_head=2, n_embd=16)
    res = fit(
        models.get("gpt", **kw),
        (x, y),
        (x[:16], y[:16]),
        epochs=8,
        batch_size=32,
        lr=1e-2,
        progress=False,
    )
    losses = [r["train_loss"] for r in res.history]
    assert losses[-1] < 0.6 * losses[0]
    assert 0 < res.metrics["test_accuracy"] <= 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # fp16 overflow while the scale settles
@pytest.mark.filterwarnings("ignore:precision .* on the CPU is slower")  # asserted elsewhere
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_trains(precision):
    train, test = _digits(256, 64)
    res = fit(
        _model(), train, test, epochs=3, batch_size=32, lr=1e-2, precision=precision, progress=False
    )
    assert res.metrics["test_accuracy"] > 0.6
    assert all(p.dtype == mg.float32 for p in res.model.parameters())


def test_fit_reads_datasets_and_loaders():
    from manygrad.data import DataLoader, Dataset, TensorDataset

    train, test = _digits(128, 32)

    class Pairs(Dataset):
        def __len__(self):
            return len(train.labels)

        def __getitem__(self, i):
            return mg.tensor(train.images[i].astype(np.float32)), int(train.labels[i])

    x = mg.tensor(train.images.astype(np.float32))
    y = mg.tensor(train.labels)
    results = []
    for data in (Pairs(), TensorDataset(x, y), DataLoader(TensorDataset(x, y), batch_size=8)):
        r = fit(_model(), data, test, epochs=1, batch_size=32, progress=False, normalize=True)
        results.append(_weights(r.model))
    for k in results[0]:
        np.testing.assert_allclose(results[0][k], results[1][k], rtol=1e-6, err_msg=k)
        np.testing.assert_allclose(results[0][k], results[2][k], rtol=1e-6, err_msg=k)
    with pytest.raises(TypeError, match="Dataset of"):
        fit(_model(), 42, progress=False)


def test_resume_refuses_other_data_and_extends_epochs(tmp_path):
    train, test = _digits(96, 16)
    out = str(tmp_path / "run")
    fit(_model(), train, test, epochs=1, batch_size=32, out=out, progress=False)
    other, _ = _digits(64, 16)
    with pytest.raises(mg.errors.CheckpointError, match="different data"):
        fit(_model(), other, test, epochs=2, batch_size=32, resume=out, progress=False)
    res = fit(_model(), train, test, epochs=2, batch_size=32, resume=out, progress=False)
    assert res.step == 6 and [r["epoch"] for r in R.read_metrics(out)] == [1, 2]
    assert res.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine reaches 0 at the new end


def _pairs_dataset(train):
    from manygrad.data import Dataset

    class Pairs(Dataset):
        def __len__(self):
            return len(train.labels)

        def __getitem__(self, i):
            return mg.tensor(train.images[i].astype(np.float32)), int(train.labels[i])

    return Pairs()


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_through_dataloader_matches_in_memory(tmp_path, workers):
    train, test = _digits(160, 32)
    ds, tds = _pairs_dataset(train), _pairs_dataset(test)
    kw = dict(epochs=2, batch_size=32, lr=1e-2, progress=False, seed=2)
    mem = fit(_model(), ds, tds, **kw)
    out = str(tmp_path / "s")
    st = fit(_model(), ds, tds, stream=True, num_workers=workers, out=out, **kw)
    a, b = _weights(mem.model), _weights(st.model)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert st.metrics["test_accuracy"] == pytest.approx(mem.metrics["test_accuracy"])
    # interrupted and resumed while streaming: the same weights again
    cut = str(tmp_path / "cut")
    fit(_model(), ds, tds, stream=True, out=cut, callbacks=[_interrupt_at(7)], **kw)
    res = fit(_model(seed=9), ds, tds, stream=True, resume=cut, **kw)
    c = _weights(res.model)
    for k in b:
        np.testing.assert_array_equal(b[k], c[k], err_msg=k)


def test_own_optimizer_and_scheduler():
    train, test = _digits(128, 32)
    model = _model()
    opt = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = mg.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    res = fit(
        model, train, test, epochs=2, batch_size=32, optimizer=opt, scheduler=sched, progress=False
    )
    assert res.step == 8 and opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.25)
    assert res.history[0]["train_loss"] > res.history[1]["train_loss"]


def test_diverging_run_reports_once_without_numpy_warnings():
    # NOTE: a huge learning rate overflows the weights; NumPy would warn about overflow and
    # invalid values in every op, PyTorch stays silent: the run ends with one DivergedError
    train, test = _digits(128, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(DivergedError, match="lower learning rate"):
            fit(
                _model(),
                train,
                test,
                epochs=3,
                batch_size=16,
                lr=1e20,
                optimizer="sgd",
                progress=False,
                log_every=5,
            )


def test_streaming_makes_one_loader_for_all_epochs(monkeypatch):
    # workers, copy stream and pinned buffers are made once per split, not once per epoch,
    # and the workers are stopped when fit returns
    import manygrad.data.dataloader as dl
    import manygrad.data.staging as staging

    pools, stagers = [], []
    pool_cls, make_stager = dl.WorkerPool, dl.make_stager

    def count_pool(*a, **k):
        pools.append(pool_cls(*a, **k))
        return pools[-1]

    def count_stager(*a, **k):
        stagers.append(make_stager(*a, **k))
        return stagers[-1]

    monkeypatch.setattr(dl, "WorkerPool", count_pool)
    monkeypatch.setattr(dl, "make_stager", count_stager)
    train, test = _digits(96, 32)
    ds, tds = _pairs_dataset(train), _pairs_dataset(test)
    res = fit(_model(), ds, tds, stream=True, num_workers=2, epochs=3, batch_size=32,
              progress=False, device="fakegpu")  # fmt: skip
    assert len(res.history) == 3
    assert len(pools) == 2 and len(stagers) == 2  # the training split and the test split
    assert all(isinstance(s, staging.StreamStager) for s in stagers)
    assert all(p.closed for p in pools)
