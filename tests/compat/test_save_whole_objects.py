"""save(model) as PyTorch does it; load's weights_only guard; file objects."""

import argparse
import copy
import io
import pickle

import numpy as np
import pytest

import manygrad as mg
from manygrad import nn
from manygrad.serialization import WeightsOnlyError


def _model():
    mg.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                      nn.Linear(8, 4), nn.GELU(), nn.Dropout(0.1), nn.LayerNorm(4))  # fmt: skip
    m.eval()
    return m


def test_save_whole_model_and_load_it_back(tmp_path):
    m = _model()
    x = mg.randn(2, 1, 4, 4)
    path = tmp_path / "model.pt"
    mg.save(m, path)
    with pytest.raises(WeightsOnlyError, match="weights_only=False") as e:
        mg.load(path)
    assert isinstance(e.value, pickle.UnpicklingError)
    m2 = mg.load(path, weights_only=False)
    assert type(m2) is nn.Sequential and not m2.training
    np.testing.assert_array_equal(m2(x).detach().numpy(), m(x).detach().numpy())
    assert isinstance(m2[0].weight, nn.Parameter) and m2[0].weight.requires_grad
    names = [k for k, _ in m2.named_buffers()]
    assert names == [k for k, _ in m.named_buffers()]


def test_tied_weights_stay_tied_and_devices_follow_map_location(tmp_path):
    emb = nn.Embedding(5, 3)
    head = nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    model = nn.ModuleDict({"emb": emb, "head": head}).to("fakegpu")
    buf = io.BytesIO()
    mg.save({"model": model}, buf)
    buf.seek(0)
    back = mg.load(buf, map_location="fakegpu", weights_only=False)["model"]
    assert back["emb"].weight is back["head"].weight
    assert back["emb"].weight.device.type == "fakegpu"


def test_safe_globals_allow_named_classes(tmp_path):
    path = tmp_path / "ckpt.pt"
    ns = argparse.Namespace(lr=0.1, layers=3)
    mg.save({"args": ns, "w": mg.ones(2)}, path)
    with pytest.raises(WeightsOnlyError, match="argparse.Namespace"):
        mg.load(path)
    with mg.serialization.safe_globals([argparse.Namespace]):
        out = mg.load(path)
    assert out["args"] == ns and out["w"].tolist() == [1.0, 1.0]
    with pytest.raises(WeightsOnlyError):
        mg.load(path)


def test_file_objects_for_state_dicts_and_checkpoints():
    m = _model()
    for obj in (m.state_dict(), {"model": m.state_dict(), "epoch": 3, "loss": 0.5}):
        buf = io.BytesIO()
        mg.save(obj, buf)
        buf.seek(0)
        back = mg.load(buf)
        sd = back if "epoch" not in back else back["model"]
        assert sorted(sd) == sorted(m.state_dict())
        np.testing.assert_array_equal(sd["0.weight"].numpy(), m[0].weight.detach().numpy())
    assert back["epoch"] == 3


def test_plain_state_dict_stays_a_plain_safetensors_file(tmp_path):
    path = tmp_path / "sd.safetensors"
    mg.save(_model().state_dict(), path)
    meta = mg.io.safetensors.read_metadata(path)
    assert "manygrad.pickle" not in meta and "manygrad.structure" not in meta


def test_unpicklable_objects_get_a_clear_error(tmp_path):
    m = _model()
    m.scorer = lambda x: x  # a lambda inside a model cannot be pickled
    with pytest.raises(TypeError, match="no lambdas or local functions"):
        mg.save(m, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()


LAYERS = [
    lambda: nn.Linear(3, 2), lambda: nn.Conv1d(2, 3, 3), lambda: nn.Conv2d(2, 3, 3),
    lambda: nn.ConvTranspose2d(2, 3, 3), lambda: nn.BatchNorm1d(3), lambda: nn.GroupNorm(1, 2),
    lambda: nn.LayerNorm(3), lambda: nn.RMSNorm(3), lambda: nn.Embedding(4, 2),
    lambda: nn.Dropout(0.2), lambda: nn.MaxPool2d(2), lambda: nn.AvgPool2d(2),
    lambda: nn.AdaptiveAvgPool2d(1), lambda: nn.ReLU(), lambda: nn.GELU("tanh"),
    lambda: nn.SiLU(), lambda: nn.LeakyReLU(0.1), lambda: nn.ELU(), lambda: nn.Softplus(),
    lambda: nn.Softmax(-1), lambda: nn.LogSoftmax(-1), lambda: nn.Tanh(), lambda: nn.Sigmoid(),
    lambda: nn.CrossEntropyLoss(label_smoothing=0.1), lambda: nn.MSELoss(),
    lambda: nn.BCEWithLogitsLoss(), lambda: nn.MultiheadAttention(4, 2),
    lambda: nn.TransformerEncoderLayer(4, 2, 8), lambda: nn.Unflatten(1, (2, 2)),
]  # fmt: skip


@pytest.mark.parametrize("make", LAYERS, ids=lambda f: type(f()).__name__)
def test_layers_pickle_and_deepcopy(make):
    layer = make()
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert type(clone) is type(layer)
        a, b = layer.state_dict(), clone.state_dict()
        assert sorted(a) == sorted(b)
        for k in a:
            np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())


def test_public_functions_pickle_by_reference():
    import types

    for mod in (mg, mg.nn.functional, mg.nn.init):
        for name in dir(mod):
            fn = getattr(mod, name)
            if isinstance(fn, types.FunctionType):
                assert pickle.loads(pickle.dumps(fn)) is fn, f"{mod.__name__}.{name}"
    layer = nn.TransformerEncoderLayer(4, 2, 8, activation="gelu")
    assert pickle.loads(pickle.dumps(layer)).activation is layer.activation
