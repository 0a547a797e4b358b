"""ONNX export by tracing: whole models (built-in and custom) run the same in onnxruntime."""

import io
import json
import os
import warnings

import numpy as np
import pytest

import manygrad as mg
import manygrad.nn.functional as F
from manygrad import nn
from manygrad.cli.main import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from manygrad.onnx import TracerWarning, UnsupportedOpError, export  # noqa: E402
from manygrad.train import run as R  # noqa: E402


def _randomise_norms(model):
    """Non-trivial running statistics and affine parameters, so that norms really are tested."""
    rng = np.random.default_rng(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean._data[...] = rng.normal(size=c).astype(np.float32)
            m.running_var._data[...] = rng.uniform(0.5, 2.0, size=c).astype(np.float32)
        for t in (getattr(m, "weight", None), getattr(m, "bias", None)):
            if t is not None and isinstance(m, (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d)):
                t._data[...] = rng.normal(size=t.shape).astype(np.float32)
    return model


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _compare(model, sess, shapes, ints=None, tol=1e-4):
    rng = np.random.default_rng(0)
    for s in shapes:
        x = rng.integers(0, ints, s) if ints else rng.normal(size=s).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        with mg.no_grad():
            want = model(mg.tensor(x)).numpy()
        assert got.shape == want.shape
        assert np.abs(got - want).max() < tol


BATCH = {"input": {0: "batch"}}


class ResidualCNN(nn.Module):
    """A custom model: residual blocks, functional calls, cat, mean, LayerNorm, softmax."""

    def __init__(self, c=8, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.conv_a = nn.Conv2d(c, c, 3, padding=1)
        self.conv_b = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.side = nn.Conv2d(3, c, 1, stride=2)
        self.norm = nn.LayerNorm(2 * c)
        self.head = nn.Linear(2 * c, classes)

    def forward(self, x):
        h = F.relu(self.bn(self.stem(x)))
        h = F.relu(h + self.conv_b(F.relu(self.conv_a(h))))  # residual
        h = F.max_pool2d(h, 2)
        h = mg.cat([h, self.side(x)], dim=1)
        h = self.norm(h.mean(dim=(2, 3)))
        return F.softmax(self.head(h), dim=-1)


@pytest.mark.parametrize("opset", [18, 20])
def test_custom_residual_cnn_at_later_opsets(opset):
    # 18: reductions take their axes as an input; 20: GELU is one op
    mg.manual_seed(0)
    model = _randomise_norms(ResidualCNN()).eval()
    proto = mg.onnx.to_model(model, mg.randn(2, 3, 8, 8), dynamic_axes=BATCH,
                             opset_version=opset)  # fmt: skip
    assert proto.opset_import[0].version == opset
    _compare(model, _session(proto), [(1, 3, 8, 8), (4, 3, 8, 8)])


def test_custom_residual_cnn_at_two_batch_sizes(tmp_path):
    mg.manual_seed(0)
    model = _randomise_norms(ResidualCNN()).eval()
    path = tmp_path / "res.onnx"
    export(model, mg.randn(2, 3, 16, 16), str(path), input_names=["input"],
           output_names=["probs"], dynamic_axes={"input": {0: "n"}, "probs": {0: "n"}})  # fmt: skip
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "n"
    _compare(model, _session(proto), [(1, 3, 16, 16), (7, 3, 16, 16)])
    # parameters keep their names in the model
    names = {i.name for i in proto.graph.initializer}
    assert {"stem.weight", "bn.running_mean", "head.bias"} <= names


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
    model = _randomise_norms(mg.models.get(name, **kwargs))
    model.train()
    proto = mg.onnx.to_model(model, mg.randn(*shape), dynamic_axes=BATCH)
    assert model.training  # the mode is restored
    model.eval()
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == list(shape[1:])
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert json.loads(proto.metadata_props[0].value)["name"] == name
    _compare(model, _session(proto), [(1,) + shape[1:], (3,) + shape[1:]])


def test_gpt_with_free_batch_and_sequence():
    mg.manual_seed(0)
    model = mg.models.get("gpt", vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    model.eval()
    dyn = {"input": {0: "batch", 1: "seq"}, "output": {0: "batch", 1: "seq"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the positions follow the sequence: no warning
        proto = mg.onnx.to_model(model, mg.zeros(3, 7, dtype=mg.int64), dynamic_axes=dyn)
    _compare(model, _session(proto), [(1, 8), (2, 3), (4, 7)], ints=11)


def test_gpt_with_free_batch():
    mg.manual_seed(0)
    model = mg.models.get("gpt", vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    model.eval()
    proto = mg.onnx.to_model(model, mg.zeros(2, 8, dtype=mg.int64), dynamic_axes=BATCH)
    _compare(model, _session(proto), [(1, 8), (3, 8)], ints=11)


def test_python_control_flow_is_fixed_and_host_reads_warn():
    class Branchy(nn.Module):
        def forward(self, x):
            if x.sum().item() > 0:  # decided once, for the example
                return x * 2
            return x - 100

    x = mg.ones(2, 3)
    with pytest.warns(TracerWarning, match=r"item\(\) read a traced tensor"):
        proto = mg.onnx.to_model(Branchy(), x, dynamic_axes=BATCH)
    got = _session(proto).run(None, {"input": -np.ones((2, 3), np.float32)})[0]
    np.testing.assert_allclose(got, -2.0)  # the traced branch, not the one -1 would take
    assert mg.Tensor.item.__qualname__ == "Tensor.item"  # the host read hooks are gone again


def test_positions_follow_a_dynamic_axis_and_other_constants_warn():
    class Positions(nn.Module):
        def forward(self, x):
            return x + mg.arange(x.shape[1]).float()  # becomes a Range of the input's length

    dyn = {"input": {0: "b", 1: "t"}, "output": {0: "b", 1: "t"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proto = mg.onnx.to_model(Positions(), mg.zeros(2, 5), dynamic_axes=dyn)
    _compare(Positions(), _session(proto), [(2, 5), (3, 9)])

    class Ones(nn.Module):
        def forward(self, x):
            return x + mg.ones(x.shape[1])

    with pytest.warns(TracerWarning, match="stored as a constant"):
        mg.onnx.to_model(Ones(), mg.zeros(2, 5), dynamic_axes={"input": {1: "t"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mg.onnx.to_model(Ones(), mg.zeros(2, 5), dynamic_axes=BATCH)  # 5 is not dynamic


def test_export_from_any_device(device):
    mg.manual_seed(0)
    model = mg.models.get("cnn", image_size=4, channels=[2, 2], hidden=3).eval()
    x = np.random.default_rng(0).normal(size=(2, 1, 4, 4)).astype(np.float32)
    with mg.no_grad():
        want = model(mg.tensor(x)).numpy()
    model.to(device)
    proto = export(model, mg.tensor(x, device=device), io.BytesIO())
    got = _session(proto).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_several_inputs_and_outputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, a, b):
            return self.fc(a) + self.fc(b), a * b

    proto = mg.onnx.to_model(Two(), (mg.randn(2, 3), mg.randn(2, 3)), input_names=["a", "b"],
                             output_names=["sum", "prod"])  # fmt: skip
    assert [i.name for i in proto.graph.input] == ["a", "b"]
    assert [o.name for o in proto.graph.output] == ["sum", "prod"]


def test_unsupported_op_names_it_and_training_only_ops_refuse():
    from manygrad.onnx import RULES

    class Cube(mg.autograd.Function):
        def forward(self, x):
            return x * x * x

    class Lossy(nn.Module):
        def forward(self, x):
            return Cube.apply(x + 1)

    assert "Cube" not in RULES
    with pytest.raises(UnsupportedOpError, match=r"the op Cube has no ONNX export rule"):
        export(Lossy(), mg.randn(2, 3), io.BytesIO())
    assert mg.autograd._trace is None  # the hook is removed after a failed export

    class Dropping(nn.Module):
        def forward(self, x):
            return F.dropout(x, 0.5, training=True)

    with pytest.raises(UnsupportedOpError, match="Dropout"):
        export(Dropping(), mg.randn(2, 3), io.BytesIO())


def test_bad_arguments():
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="opset_version"):
        export(model, mg.randn(1, 3), io.BytesIO(), opset_version=13)
    with pytest.raises(ValueError, match="'x'"):
        export(model, mg.randn(1, 3), io.BytesIO(), dynamic_axes={"x": [0]})
    with pytest.raises(ValueError, match="axis 5"):
        export(model, mg.randn(1, 3), io.BytesIO(), dynamic_axes={"input": [5]})
    with pytest.raises(TypeError, match="args"):
        export(model, [1, 2], io.BytesIO())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export(model, mg.randn(1, 3), "/nonexistent-dir/m.onnx")


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
    kw = dict(image_size=8, channels=[2, 3], hidden=5, num_classes=3)
    model = _write_run(run, "cnn", kw, (1, 8, 8), classes=["a", "b", "c"])
    out = str(tmp_path / "f.onnx")
    assert main(["export", run, "--out", out]) == 0
    text = capsys.readouterr().out
    assert out in text and "[batch, 1, 8, 8]" in text and "[batch, 3]" in text
    proto = onnx.load(out)
    _compare(model, _session(proto), [(4, 1, 8, 8)])
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["manygrad.recipe"])["classes"] == ["a", "b", "c"]


def test_cli_export_text_run_default_path(tmp_path, capsys):
    run = str(tmp_path / "gpt")
    kw = dict(vocab_size=6, block_size=4, n_layer=1, n_head=2, n_embd=8)
    model = _write_run(run, "gpt", kw, (4,), task="language-model")
    assert main(["export", run, "--opset", "18"]) == 0
    text = capsys.readouterr().out
    assert "[batch, sequence]" in text and "[batch, sequence, 6]" in text
    proto = onnx.load(os.path.join(run, "model.onnx"))
    assert proto.opset_import[0].version == 18
    _compare(model, _session(proto), [(3, 4), (1, 2), (2, 3)], ints=6)


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


def test_in_place_updates_are_recorded():
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            out = self.fc(x)
            out += x  # residual, in place
            out.mul_(2).clamp_(min=-1.0)
            out.masked_fill_(out > 0.5, 0.5)
            y = mg.zeros(out.shape[0], 4)  # a constant, overwritten with a traced value
            y.copy_(out * 3)
            return y - out

    mg.manual_seed(0)
    model = InPlace().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proto = mg.onnx.to_model(model, mg.randn(2, 4), dynamic_axes=BATCH)
    _compare(model, _session(proto), [(2, 4), (5, 4)])


@pytest.mark.parametrize(
    "body, match",
    [
        (lambda x: x.__setitem__((slice(None), 0), 0.0) or x, r"__setitem__ on a traced tensor"),
        (lambda x: x[:, :2].add_(1.0) and x, "updates a slice"),
        (lambda x: x.fill_(1.0), "fill_ on a traced tensor"),
    ],
)
def test_in_place_updates_that_onnx_cannot_express_raise(body, match):
    class M(nn.Module):
        def forward(self, x):
            return body(x * 1)

    with pytest.raises(UnsupportedOpError, match=match):
        export(M(), mg.randn(2, 4), io.BytesIO())
    assert mg.Tensor.add_.__qualname__ == "Tensor.add_"  # the tensor methods are restored


def test_free_sequence_axis_through_attention():
    class SelfAttention(nn.Module):
        def __init__(self, e=8, h=2):
            super().__init__()
            self.h, self.qkv, self.out = h, nn.Linear(e, 3 * e), nn.Linear(e, e)

        def forward(self, x):  # (B, T, E)
            b, t, e = x.shape
            q, k, v = self.qkv(x).split(e, dim=-1)
            q, k, v = (z.view(b, t, self.h, e // self.h).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.out(y.transpose(1, 2).reshape(b, t, e)).unsqueeze(1).squeeze(1)

    mg.manual_seed(0)
    model = SelfAttention().eval()
    dyn = {"input": {0: "b", 1: "t"}, "output": {0: "b", 1: "t"}}
    proto = mg.onnx.to_model(model, mg.randn(2, 6, 8), dynamic_axes=dyn)
    _compare(model, _session(proto), [(1, 6, 8), (3, 4, 8), (2, 9, 8)])


def test_docs_example_runs(capsys):
    import pathlib
    import re

    doc = pathlib.Path(__file__).resolve().parents[2] / "docs" / "applications.md"
    (block,) = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
    exec(compile(block, "docs/applications.md", "exec"), {"__name__": "__main__"})
    assert "exported" in capsys.readouterr().out


def test_torch_style_options_are_accepted(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=-1))
    path = str(tmp_path / "m.onnx")
    export(model, (mg.randn(2, 3), {}), path, export_params=True, verbose=False,
           do_constant_folding=True, input_names=["x"], output_names=["y"],
           dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17)  # fmt: skip
    x = np.ones((4, 3), np.float32)
    got = _session(onnx.load(path)).run(None, {"x": x})[0]
    with mg.no_grad():
        np.testing.assert_allclose(got, model(mg.tensor(x)).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="export_params=False"):
        export(model, mg.randn(2, 3), io.BytesIO(), export_params=False)


def test_looping_over_a_traced_tensor_warns():
    class Rows(nn.Module):
        def forward(self, x):
            return mg.stack([r * 2 for r in x])  # unrolled for the example's batch size

    with pytest.warns(TracerWarning, match=r"__iter__\(\) read a traced tensor"):
        mg.onnx.to_model(Rows(), mg.randn(3, 2))


@pytest.mark.parametrize(
    "act",
    [
        lambda: nn.ReLU(inplace=True),
        lambda: nn.LeakyReLU(0.1, inplace=True),
        lambda: nn.ELU(inplace=True),
        lambda: nn.SiLU(inplace=True),
        lambda: nn.Hardtanh(inplace=True),
        lambda: nn.ReLU6(inplace=True),
        lambda: nn.Hardswish(inplace=True),
    ],
)
def test_in_place_activations_are_in_the_graph(act):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), act(), nn.Linear(8, 2)).eval()
    _compare(model, _session(mg.onnx.to_model(model, mg.randn(3, 4))), [(3, 4)], tol=1e-6)


def test_in_place_methods_and_residual_sums_are_in_the_graph():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            out = self.bn(self.conv(x))
            out += x  # as torchvision's residual blocks
            out = F.relu(out, inplace=True)
            return out.exp_().sigmoid_()

    model = _randomise_norms(Block()).eval()
    proto = mg.onnx.to_model(model, mg.randn(2, 4, 5, 5))
    _compare(model, _session(proto), [(2, 4, 5, 5)], tol=1e-5)
