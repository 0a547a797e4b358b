"""``torch.export``: a forward recorded as a graph of manygrad ops, replayed by
``ep.module()``."""

import io
import os
import textwrap
import zipfile

import numpy as np
import pytest

import manygrad as mg
import manygrad.nn.functional as F
from manygrad import nn
from manygrad.export import Dim, GuardError, export
from parity_helpers import run_both

torch = pytest.importorskip("torch")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x, scale: float = 2.0):
        h = self.act(self.bn(self.conv(x)))
        h += 1.0  # an in-place update of a traced tensor
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        return self.fc(h) * scale, h.sum(-1)


def _net():
    mg.manual_seed(0)
    m = Net()
    m.bn.running_mean.copy_(mg.randn(8))
    return m.eval()


def test_module_replays_the_forward():
    m = _net()
    x = mg.randn(2, 3, 8, 8)
    ep = export(m, (x,))
    assert [n.op for n in ep.graph.nodes].count("placeholder") == 1
    ops = [n.target.__name__ for n in ep.graph.nodes if n.op == "call_function"]
    assert "relu" in ops and "conv" in ops and "batch_norm" in ops
    x2 = mg.randn(2, 3, 8, 8)  # other values, same shape: the graph, not the example
    for got, want in zip(ep.module()(x2), m(x2)):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), atol=1e-5)
    assert "ExportedProgram" in str(ep)
    with pytest.raises(RuntimeError, match="module()"):
        ep(x)


def test_the_graph_is_the_recorded_ops_not_the_python():
    calls = []

    class Traced(nn.Module):
        def forward(self, x):
            calls.append(1)  # Python runs at export only
            return (x * 2).exp()

    ep = export(Traced(), (mg.ones(3),))
    out = ep.module()(mg.zeros(3))
    assert calls == [1] and out.tolist() == [1.0, 1.0, 1.0]


def test_static_dims_and_constants_are_guarded():
    m = _net()
    ep = export(m, (mg.randn(2, 3, 8, 8),))
    with pytest.raises(GuardError, match=r"shape\[0\] to be equal to 2, but got 3"):
        ep.module()(mg.randn(3, 3, 8, 8))
    with pytest.raises(AssertionError):  # PyTorch's guards raise AssertionError
        ep.module()(mg.randn(2, 3, 9, 8))
    ep2 = export(m, (mg.randn(2, 3, 8, 8), 2.0))
    with pytest.raises(GuardError, match="equal to 2.0"):
        ep2.module()(mg.randn(2, 3, 8, 8), 3.0)


def test_dynamic_dims_take_other_sizes_within_bounds():
    m = _net()
    ep = export(m, (mg.randn(2, 3, 8, 8),), dynamic_shapes={"x": {0: Dim("b", min=1, max=8)}})
    for n in (5, 1, 5):
        x = mg.randn(n, 3, 8, 8)
        np.testing.assert_allclose(
            ep.module()(x)[0].detach().numpy(), m(x)[0].detach().numpy(), atol=1e-5
        )
    assert len(ep._cache) == 3  # the example's size, 5 and 1: one trace each
    with pytest.raises(GuardError, match="within"):
        ep.module()(mg.randn(9, 3, 8, 8))
    assert ep.range_constraints == {"b": (1, 8)}


def test_keyword_tensors_are_inputs_and_outputs_keep_their_structure():
    class KW(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x, *, mask):
            y = self.lin(x).masked_fill(mask, 0.0)
            return {"y": y, "parts": [y.sum(), x]}

    m = KW()
    x, mask = mg.randn(2, 4), mg.tensor([[True, False, False, True]] * 2)
    ep = export(m, (x,), {"mask": mask})
    mask2 = ~mask
    got, want = ep.module()(x, mask=mask2), m(x, mask=mask2)
    np.testing.assert_allclose(got["y"].detach().numpy(), want["y"].detach().numpy())
    assert got["parts"][1] is x or np.array_equal(got["parts"][1].numpy(), x.numpy())


def test_exported_module_shares_parameters_and_trains():
    m = _net()
    ep = export(m, (mg.randn(2, 3, 8, 8),))
    out = ep.module()(mg.randn(2, 3, 8, 8))[0].sum()
    out.backward()
    assert m.fc.weight.grad is not None and m.fc.weight.grad.shape == (4, 8)


def test_buffers_changed_in_training_mode_warn():
    m = _net().train()
    with pytest.warns(UserWarning, match="eval"):
        export(m, (mg.randn(2, 3, 8, 8),))


def test_bad_arguments():
    with pytest.raises(TypeError, match="tuple"):
        export(_net(), mg.randn(2, 3, 8, 8))
    with pytest.raises(TypeError, match="nn.Module"):
        export(lambda x: x, (mg.ones(1),))
    with pytest.raises(ValueError, match="not an argument"):
        export(_net(), (mg.randn(2, 3, 8, 8),), dynamic_shapes={"y": {0: Dim("b")}})
    with pytest.raises(TypeError, match="ExportedProgram"):
        mg.export.save(None, "x.pt2")


def test_a_pytorch_export_program_runs_unchanged(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(
        textwrap.dedent(
            """
            import torch
            from torch.export import Dim, export

            torch.manual_seed(0)
            model = torch.nn.Sequential(
                torch.nn.Linear(6, 16), torch.nn.GELU(), torch.nn.LayerNorm(16),
                torch.nn.Linear(16, 3),
            ).eval()
            x = torch.randn(4, 6)
            ep = export(model, (x,), dynamic_shapes=({0: Dim("batch")},))
            m = ep.module()
            for n in (4, 7):
                x = torch.randn(n, 6)
                print(n, torch.allclose(m(x), model(x), atol=1e-6))
            try:
                m(torch.randn(4, 5))
            except Exception:
                print("refused")
            print(type(ep.run_decompositions()).__name__)
            import io
            buf = io.BytesIO()
            torch.export.save(ep, buf)
            buf.seek(0)
            loaded = torch.export.load(buf).module()
            print("loaded", torch.allclose(loaded(x), model(x), atol=1e-6))
            """
        )
    )
    out = run_both(script)
    assert out["mg"] == out["torch"] and "7 True" in out["mg"] and "loaded True" in out["mg"]


class Wide(nn.Module):
    """Ops whose records hold geometry objects, arrays, slices and internal constants."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(16, 5)
        self.norm = nn.LayerNorm(5)
        self.att = nn.MultiheadAttention(5, 1, batch_first=True)
        self.lstm = nn.LSTM(5, 5, batch_first=True)
        self.emb = nn.Embedding(10, 5)

    def forward(self, x, i):
        y = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2).flatten(2)
        y = self.norm(self.fc(y)) + self.emb(i)
        y, _ = self.att(y, y, y)
        y, _ = self.lstm(y)
        y = F.interpolate(y.unsqueeze(1), scale_factor=2)  # an index constant made inside
        return {"mean": y[:, :, 1:3].softmax(-1).mean(), "arg": y.argmax(-1)}


def test_save_and_load_run_without_the_model(tmp_path):
    mg.manual_seed(0)
    m = Wide().eval()
    x, i = mg.randn(2, 3, 8, 8), mg.randint(0, 10, (2, 4))
    b = Dim("b")
    ep = export(m, (x, i), dynamic_shapes={"x": {0: b}, "i": {0: b}})
    x3, i3 = mg.randn(3, 3, 8, 8), mg.randint(0, 10, (3, 4))
    ep.module()(x3, i3)  # a second size: its graph goes into the file too
    path = tmp_path / "model.pt2"
    mg.export.save(ep, path, extra_files={"note": "v1"})
    extra = {"note": ""}
    loaded = mg.export.load(path, extra_files=extra)
    assert extra == {"note": "v1"}
    del m, ep  # the loaded program needs neither
    mg.manual_seed(0)
    ref = Wide().eval()
    for args in ((x, i), (x3, i3)):
        with mg.no_grad():
            got, want = loaded.module()(*args), ref(*args)
        for k in want:
            np.testing.assert_array_equal(got[k].numpy(), want[k].numpy())
    assert loaded.graph_signature.parameters[:2] == ["conv.weight", "conv.bias"]
    sd = loaded.state_dict
    np.testing.assert_array_equal(sd["bn.running_mean"].numpy(), ref.bn.running_mean.numpy())
    assert any(p is sd["fc.weight"] for p in loaded.module().parameters())
    with pytest.raises(GuardError, match="loaded from a file"):
        loaded.module()(mg.randn(5, 3, 8, 8), mg.randint(0, 10, (5, 4)))
    with pytest.raises(GuardError):
        loaded.module()(mg.randn(2, 3, 9, 8), i)
    buf = io.BytesIO()  # file objects too
    mg.export.save(loaded, buf)
    buf.seek(0)
    with mg.no_grad():
        again, want = mg.export.load(buf).module()(x, i), ref(x, i)
    np.testing.assert_array_equal(again["mean"].numpy(), want["mean"].numpy())


def test_load_refuses_other_files_and_foreign_objects(tmp_path):
    p = tmp_path / "weights.safetensors"
    mg.save({"w": mg.ones(2)}, p)
    with pytest.raises(mg.errors.CheckpointError, match="no exported program"):
        mg.export.load(p)
    z = tmp_path / "torch.pt2"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("archive/version", "1")
    with pytest.raises(mg.errors.CheckpointError, match="zip archive"):
        mg.export.load(z)
    # a record naming anything outside manygrad's ops is refused before it is called
    from manygrad import _export_archive
    from manygrad.io import safetensors as st
    from manygrad.serialization import WeightsOnlyError, dumps

    class Sneaky:
        def __reduce__(self):
            return (os.getcwd, ())

    data, arrays = dumps({"format": _export_archive.FORMAT, "graphs": [Sneaky()]})
    bad = tmp_path / "bad.pt2"
    st.save_file(arrays, str(bad), {"manygrad.pickle": data,
                                    "manygrad.export.format": _export_archive.FORMAT})  # fmt: skip
    with pytest.raises(WeightsOnlyError, match="getcwd"):
        mg.export.load(bad)


class _Head(mg.nn.Module):
    """No size of the batch dim appears in its graph."""

    def __init__(self):
        super().__init__()
        self.norm, self.fc = mg.nn.LayerNorm(6), mg.nn.Linear(6, 3)

    def forward(self, x):
        return F.log_softmax(self.fc(mg.tanh(self.norm(x))), dim=-1)


class _Flat(mg.nn.Module):
    """Its graph holds the batch size (a reshape to it)."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1).sum(1)


def test_a_loaded_program_serves_other_sizes_when_its_graph_holds_none(tmp_path):
    mg.manual_seed(0)
    m = _Head().eval()
    x = mg.randn(8, 6)
    ep = export(m, (x,), dynamic_shapes={"x": {0: Dim("batch", min=1, max=64)}})
    mg.export.save(ep, tmp_path / "head.pt2")
    loaded = mg.export.load(tmp_path / "head.pt2").module()
    for n in (1, 3, 8, 50):
        xs = mg.randn(n, 6)
        with mg.no_grad():
            np.testing.assert_allclose(loaded(xs).numpy(), m(xs).numpy(), rtol=1e-6, atol=1e-7)
    with pytest.raises(GuardError, match=r"within \[1, 64\]"):
        loaded(mg.randn(65, 6))
    with pytest.raises(GuardError, match=r"shape\[1\]"):
        loaded(mg.randn(4, 7))
    # a graph with the size in it keeps the sizes it was traced for
    ep = export(_Flat(), (mg.randn(4, 2, 3),), dynamic_shapes={"x": {0: Dim("b")}})
    assert not ep._is_generic()
    mg.export.save(ep, tmp_path / "flat.pt2")
    flat = mg.export.load(tmp_path / "flat.pt2").module()
    np.testing.assert_allclose(flat(mg.ones(4, 2, 3)).numpy(), np.full(4, 6.0))
    with pytest.raises(GuardError, match="loaded from a file"):
        flat(mg.ones(5, 2, 3))
