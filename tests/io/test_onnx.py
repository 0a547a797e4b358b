"""ONNX export: built-in models and layers run the same in ONNX's reference evaluator."""

import io
import json
import os

import numpy as np
import pytest

import manygrad as mg
from manygrad import nn
from manygrad.cli.main import main

onnx = pytest.importorskip("onnx")
from onnx.reference import ReferenceEvaluator  # noqa: E402

from manygrad.onnx import UnsupportedModuleError, export  # noqa: E402
from manygrad.train import run as R  # noqa: E402


def _randomise_batch_norms(model):
    """Non-trivial running statistics and affine parameters, so that norms really are tested."""
    rng = np.random.default_rng(1)
    for m in model.modules():
        if isinstance(m, (nn.GroupNorm, nn.RMSNorm, nn.LayerNorm)):
            for t in (m.weight, getattr(m, "bias", None)):
                if t is not None:
                    t._data[...] = rng.normal(size=t.shape).astype(np.float32)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean._data[...] = rng.normal(size=c).astype(np.float32)
            m.running_var._data[...] = rng.uniform(0.5, 2.0, size=c).astype(np.float32)
            m.weight._data[...] = rng.normal(size=c).astype(np.float32)
            m.bias._data[...] = rng.normal(size=c).astype(np.float32)
    return model


def _roundtrip(model, shape, dyn=None, ints=None, sizes=((1,), (3,)), **kw):
    """Export with ``shape``'s example, then compare ONNX and manygrad on other sizes."""
    rng = np.random.default_rng(0)

    def sample(s):
        if ints:
            return rng.integers(0, ints, s).astype(np.int64)
        return rng.normal(size=s).astype(np.float32)

    buf = io.BytesIO()
    proto = export(model, mg.tensor(sample(shape)), buf, dynamic_axes=dyn, **kw)
    loaded = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(loaded, full_check=True)
    ev = ReferenceEvaluator(loaded)
    name = proto.graph.input[0].name
    for lead in sizes:
        x = sample(tuple(lead) + tuple(shape[len(lead) :]))
        with mg.no_grad():
            want = model(mg.tensor(x)).numpy()
        got = ev.run(None, {name: x})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    return loaded


BATCH = {"input": {0: "batch"}}


@pytest.mark.parametrize(
    "name, kwargs, shape",
    [
        ("mlp", dict(in_features=64, hidden=[16, 8], dropout=0.1), (2, 1, 8, 8)),
        ("cnn", dict(image_size=8, channels=[4, 6], hidden=12, dropout=0.2), (2, 1, 8, 8)),
        ("resnet", dict(in_channels=2, widths=[4, 6, 8], num_classes=5), (2, 2, 8, 8)),
    ],
)
def test_builtin_image_models(name, kwargs, shape):
    mg.manual_seed(0)
    model = _randomise_batch_norms(mg.models.get(name, **kwargs))
    model.train()
    proto = _roundtrip(model.eval(), shape, BATCH)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == list(shape[1:])
    out = proto.graph.output[0].type.tensor_type.shape.dim
    assert out[0].dim_param == "batch"
    assert json.loads(proto.metadata_props[0].value)["name"] == name


def test_gpt_with_free_batch_and_sequence():
    mg.manual_seed(0)
    model = mg.models.get("gpt", vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    dyn = {"input": {0: "batch", 1: "seq"}, "output": {0: "batch", 1: "seq"}}
    _roundtrip(model.eval(), (2, 8), dyn, ints=11, sizes=((1, 8), (3, 5)))


def test_export_restores_training_mode_and_writes_a_file(tmp_path):
    model = mg.models.get("mlp", in_features=4, hidden=[3], num_classes=2)
    model.train()
    path = tmp_path / "m.onnx"
    export(model, mg.randn(1, 4), str(path), input_names=["x"], output_names=["logits"])
    assert model.training
    proto = onnx.load(str(path))
    assert [proto.graph.input[0].name, proto.graph.output[0].name] == ["x", "logits"]
    assert proto.opset_import[0].version == 17
    # no dynamic axes asked for: every size is fixed
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [1, 4]


LAYER_CASES = [
    (
        "conv2d-stack",
        lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3, padding="same", padding_mode="reflect"),
            nn.BatchNorm2d(4),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2, bias=False),
            nn.ELU(0.5),
            nn.MaxPool2d(3, stride=1, padding=1),
            nn.AvgPool2d(2),
            nn.SiLU(),
            nn.ConvTranspose2d(4, 3, 2, stride=2),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(12, 6),
            nn.GELU(approximate="tanh"),
            nn.Dropout(0.5),
            nn.LayerNorm(6),
            nn.RMSNorm(6),
            nn.Tanh(),
            nn.Linear(6, 4),
            nn.Softmax(dim=1),
        ),
        (2, 2, 8, 8),
    ),
    (
        "conv1d-stack",
        lambda: nn.Sequential(
            nn.Conv1d(3, 4, 3, padding=1, dilation=1),
            nn.BatchNorm1d(4),
            nn.GroupNorm(2, 4),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.AvgPool1d(2),
            nn.Sigmoid(),
            nn.Flatten(),
            nn.Softplus(beta=2.0),
            nn.Unflatten(1, (2, 4)),
            nn.Linear(4, 5),
            nn.LogSoftmax(dim=-1),
        ),
        (2, 3, 8),
    ),
    (
        "embedding",
        lambda: nn.Sequential(nn.Embedding(7, 4), nn.GELU(), nn.Linear(4, 3), nn.Identity()),
        (2, 5),
    ),
]


@pytest.mark.parametrize("name, make, shape", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_converters(name, make, shape):
    mg.manual_seed(0)
    model = _randomise_batch_norms(make()).eval()
    _roundtrip(model, shape, BATCH, ints=7 if name == "embedding" else None)


@pytest.mark.parametrize("opset", [13, 18, 20])
def test_opset_versions(opset):
    # 13: the oldest; 18: ReduceMean takes axes as an input; 20: GELU is one op
    mg.manual_seed(0)
    layers = [nn.Conv2d(2, 4, 3), nn.GroupNorm(2, 4), nn.GELU(), nn.Flatten(), nn.RMSNorm(36)]
    model = _randomise_batch_norms(nn.Sequential(*layers, nn.Linear(36, 3))).eval()
    proto = _roundtrip(model, (2, 2, 5, 5), BATCH, opset_version=opset)
    assert proto.opset_import[0].version == opset
    assert any(n.op_type == "Gelu" for n in proto.graph.node) == (opset >= 20)


def test_export_from_any_device(device):
    mg.manual_seed(0)
    model = mg.models.get("cnn", image_size=4, channels=[2, 2], hidden=3).eval()
    x = np.random.default_rng(0).normal(size=(2, 1, 4, 4)).astype(np.float32)
    with mg.no_grad():
        want = model(mg.tensor(x)).numpy()
    model.to(device)
    proto = export(model, mg.tensor(x, device=device), io.BytesIO())
    got = ReferenceEvaluator(proto).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_unsupported_custom_module_names_what_is_supported():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x) * 2

    with pytest.raises(UnsupportedModuleError) as e:
        export(nn.Sequential(nn.Linear(3, 3), Twice()), mg.randn(1, 3), io.BytesIO())
    msg = str(e.value)
    assert "Twice" in msg and "'1'" in msg
    for name in ("Linear", "Conv2d", "BatchNorm2d", "LayerNorm", "resnet", "gpt"):
        assert name in msg

    class MyLinear(nn.Linear):  # a subclass that changes forward isn't a Linear any more
        def forward(self, x):
            return super().forward(x) + 1

    with pytest.raises(UnsupportedModuleError, match="MyLinear"):
        export(MyLinear(3, 2), mg.randn(1, 3), io.BytesIO())
    with pytest.raises(UnsupportedModuleError, match="divisors"):
        export(nn.AdaptiveAvgPool2d(3), mg.randn(1, 1, 4, 4), io.BytesIO())


def test_bad_arguments():
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="opset_version"):
        export(model, mg.randn(1, 3), io.BytesIO(), opset_version=9)
    with pytest.raises(UnsupportedModuleError, match="opset_version >= 17"):
        export(nn.LayerNorm(3), mg.randn(1, 3), io.BytesIO(), opset_version=16)
    with pytest.raises(ValueError, match="'x'"):
        export(model, mg.randn(1, 3), io.BytesIO(), dynamic_axes={"x": [0]})
    with pytest.raises(ValueError, match="one example input"):
        export(model, (mg.randn(1, 3), mg.randn(1, 3)), io.BytesIO())


def test_half_model_exports_as_float32():
    model = nn.Sequential(nn.Linear(3, 2)).half()
    with pytest.warns(UserWarning, match="float32"):
        proto = export(model, mg.randn(1, 3).half(), io.BytesIO())
    w = [i for i in proto.graph.initializer if i.name.endswith("weight")][0]
    assert w.data_type == onnx.TensorProto.FLOAT


# ------------------------------------------------------------------ the CLI
def _write_run(path, name, kwargs, shape, **recipe):
    """A run directory built directly: recipe.json + model.safetensors."""
    mg.manual_seed(0)
    model = mg.models.get(name, **kwargs)
    os.makedirs(path)
    mg.save(model.state_dict(), os.path.join(path, R.WEIGHTS))
    rec = {"model": model.recipe, "input": {"shape": list(shape), "dtype": "float32"}}
    R.write_recipe(path, {**rec, **recipe})
    return model.eval()


def test_cli_export_image_run(tmp_path, capsys):
    run = str(tmp_path / "run")
    model = _write_run(
        run,
        "cnn",
        dict(image_size=8, channels=[2, 3], hidden=5, num_classes=3),
        (1, 8, 8),
        classes=["a", "b", "c"],
    )
    out = str(tmp_path / "f.onnx")
    assert main(["export", run, "--out", out]) == 0
    text = capsys.readouterr().out
    assert out in text and "[batch, 1, 8, 8]" in text and "[batch, 3]" in text
    proto = onnx.load(out)
    x = np.random.default_rng(0).normal(size=(4, 1, 8, 8)).astype(np.float32)
    got = ReferenceEvaluator(proto).run(None, {"input": x})[0]
    with mg.no_grad():
        np.testing.assert_allclose(got, model(mg.tensor(x)).numpy(), rtol=1e-4, atol=1e-5)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["manygrad.recipe"])["classes"] == ["a", "b", "c"]


def test_cli_export_text_run_default_path(tmp_path, capsys):
    run = str(tmp_path / "gpt")
    kw = dict(vocab_size=6, block_size=4, n_layer=1, n_head=2, n_embd=8)
    _write_run(run, "gpt", kw, (4,), task="language-model")
    assert main(["export", run, "--opset", "18"]) == 0
    text = capsys.readouterr().out
    assert "[batch, sequence]" in text and "[batch, sequence, 6]" in text
    proto = onnx.load(os.path.join(run, "model.onnx"))
    assert proto.opset_import[0].version == 18
    onnx.checker.check_model(proto)


def test_cli_export_trained_run(tmp_path, capsys):
    run = str(tmp_path / "r")
    assert main(["train", "--epochs", "1", "--out", run, "--quiet", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["export", run]) == 0
    text = capsys.readouterr().out
    assert "model.onnx" in text and "[batch, 1, 8, 8]" in text and "[batch, 10]" in text
    assert "mean=" in text  # how to preprocess inputs


def test_cli_export_errors(tmp_path, capsys):
    missing = str(tmp_path / "nope")
    assert main(["export", missing]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "does not exist" in err and missing in err
    run = str(tmp_path / "run")
    _write_run(run, "mlp", dict(in_features=4, hidden=[3]), (4,))
    assert main(["export", run, "--opset", "5"]) == 2
    assert "opset_version" in capsys.readouterr().err
