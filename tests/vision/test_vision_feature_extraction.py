"""manygrad.vision.models.feature_extraction against torchvision's: the same node names for
the same models (train and eval graphs), the same features with the same weights, and the
same behaviour of the returned module (train/eval graphs, copies, leaves, bad queries)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad import nn
from manygrad.vision import models as M
from manygrad.vision.models.feature_extraction import (
    create_feature_extractor,
    get_graph_node_names,
)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize(
    "name", ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "densenet121",
             "shufflenet_v2_x0_5", "squeezenet1_1"],
)  # fmt: skip
def test_node_names_match_torchvision(tv, torch, name):
    from torchvision.models.feature_extraction import get_graph_node_names as ref_names

    with torch.device("meta"):
        ref = tv.models.get_model(name)
    with mg.device("meta"):
        ours = M.get_model(name)
    ref.eval()
    ours.eval()
    want = ref_names(ref, suppress_diff_warning=True)
    got = get_graph_node_names(ours, suppress_diff_warning=True)
    assert got == want
    assert not ours.training  # the mode is restored


def _copy_weights(src, dst) -> None:
    dst.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in src.state_dict().items()})


@pytest.mark.parametrize(
    ("name", "nodes"),
    [
        ("resnet18", {"layer1": "c2", "layer2.1.relu_1": "c3", "layer4": "c5", "flatten": "f"}),
        ("mobilenet_v3_small", ["features.3", "features.8.block.2", "classifier.0"]),
    ],
)
def test_features_match_torchvision(tv, torch, name, nodes):
    from torchvision.models.feature_extraction import create_feature_extractor as ref_fe

    torch.manual_seed(0)
    ref = tv.models.get_model(name).eval()
    ours = M.get_model(name).eval()
    _copy_weights(ref, ours)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    want = ref_fe(ref, nodes)(torch.from_numpy(x))
    got = create_feature_extractor(ours, nodes)(mg.tensor(x))
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_allclose(
            got[k].detach().numpy(), want[k].detach().numpy(), rtol=1e-4, atol=1e-5
        )


class _Branchy(nn.Module):
    """Dropout only in train mode, a leaf-worthy block and a function call twice."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.block = _Block()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = mg.relu(self.conv(x))
        x = mg.relu(self.block(x))
        if self.training:
            x = x * 0.5
        return self.head(x.mean((2, 3)))


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.conv(x) + x


def test_train_and_eval_graphs():
    model = _Branchy()
    with pytest.warns(UserWarning, match="subsequence"):
        train, eval_ = get_graph_node_names(model)
    assert train == ["x", "conv", "relu", "block.conv", "block.add", "relu_1", "mul", "mean",
                     "head"]  # fmt: skip
    assert eval_ == ["x", "conv", "relu", "block.conv", "block.add", "relu_1", "mean", "head"]
    fe = create_feature_extractor(
        model, train_return_nodes=["mul", "block"], eval_return_nodes=["relu_1", "block"],
        suppress_diff_warning=True,
    )  # fmt: skip
    x = mg.randn(2, 3, 5, 5)
    out = fe(x)
    assert list(out) == ["block", "mul"]  # in execution order, as torchvision's
    np.testing.assert_allclose(out["mul"].detach().numpy(), (mg.relu(model.block(mg.relu(model.conv(x))))
                                                    * 0.5).detach().numpy(), rtol=1e-6)  # fmt: skip
    fe.eval()
    out = fe(x)
    assert list(out) == ["block", "relu_1"]
    assert not fe.training and not fe.block.training
    # unused layers are gone, the kept ones are the model's own
    assert not hasattr(fe, "head")
    assert fe.conv is model.conv
    copied = copy.deepcopy(fe)
    assert copied.conv is not model.conv and not copied.training
    np.testing.assert_allclose(copied(x)["relu_1"].detach().numpy(), out["relu_1"].detach().numpy())
    copied.train()
    assert list(copied(x)) == ["block", "mul"]


def test_leaf_modules_and_gradients():
    model = _Branchy()
    names = get_graph_node_names(model, tracer_kwargs={"leaf_modules": [_Block]},
                                 suppress_diff_warning=True)[1]  # fmt: skip
    assert "block" in names and "block.add" not in names
    fe = create_feature_extractor(model, ["block"], tracer_kwargs={"leaf_modules": [_Block]},
                                  suppress_diff_warning=True)  # fmt: skip
    fe(mg.randn(1, 3, 4, 4))["block"].sum().backward()
    assert model.conv.weight.grad is not None and model.head.weight.grad is None


def test_bad_queries():
    model = _Branchy()
    with pytest.raises(ValueError, match="node: 'nope' is not present in model"):
        create_feature_extractor(model, ["nope"], suppress_diff_warning=True)
    with pytest.raises(ValueError, match="give return_nodes"):
        create_feature_extractor(model)
    with pytest.raises(ValueError, match="go together"):
        create_feature_extractor(model, train_return_nodes=["conv"])
    with pytest.raises(ValueError, match="not both"):
        create_feature_extractor(model, ["conv"], train_return_nodes=["conv"],
                                 eval_return_nodes=["conv"])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a query that names a prefix only up to a dot: "block.a" is not "block.add"
        with pytest.raises(ValueError, match="'block.a'"):
            create_feature_extractor(model.eval(), eval_return_nodes=["block.a"],
                                     train_return_nodes=["block"],
                                     suppress_diff_warning=True)  # fmt: skip
