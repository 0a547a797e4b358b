"""manygrad.vision.models.quantization against torchvision.models.quantization: every
builder's state-dict keys, shapes and module tree (on the meta device), the public names
and signatures, the quantized weights enums; with torchvision's float weights copied in,
the same float outputs before and after ``fuse_model()``, the same quantized modules,
keys and dtypes after eager post-training quantization, and the same int8 outputs code for
code once torchvision's quantized state dict is loaded (whole small models and the blocks
of the large ones); ``quantize=True`` with a quantized checkpoint through ``weights=``."""

from __future__ import annotations

import importlib
import inspect
import io
import re
import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad.ao import quantization as MQa
from manygrad.vision import models as M
from manygrad.vision.models import quantization as MQ

_MODULES = ["resnet", "mobilenetv2", "mobilenetv3", "googlenet", "inception", "shufflenetv2"]
_BUILDERS = [
    "resnet18", "resnet50", "resnext101_32x8d", "resnext101_64x4d", "mobilenet_v2",
    "mobilenet_v3_large", "googlenet", "inception_v3", "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
]  # fmt: skip


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    threads, engine = torch.get_num_threads(), torch.backends.quantized.engine
    torch.set_num_threads(1)  # NOTE: PyTorch's two threads wait on each other on 2 busy cores
    torch.backends.quantized.engine = "fbgemm"  # the x86 kernels manygrad's ao follows
    yield torch
    torch.set_num_threads(threads)
    torch.backends.quantized.engine = engine


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        # PyTorch's deprecation notices of its eager quantization and quantized tensors,
        # GoogLeNet's init notice
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _mod(lib: str, name: str):
    return importlib.import_module(f"{lib}.models.quantization.{name}")


def _ours(name: str):
    return importlib.import_module(f"manygrad.vision.models.quantization.{name}")


def _shapes(model) -> list:
    return [(k, tuple(v.shape) if hasattr(v, "shape") else type(v).__name__)
            for k, v in model.state_dict().items()]  # fmt: skip


def _dtypes(model) -> list:
    return [(k, str(getattr(v, "dtype", type(v).__name__)).split(".")[-1])
            for k, v in model.state_dict().items()]  # fmt: skip


def _tree(model) -> str:
    # NOTE: manygrad's QuantizedDropout prints without its (unused) p and inplace
    text = str(model).replace("torch.", "").replace("manygrad.", "")
    return re.sub(r"QuantizedDropout\([^)]*\)", "QuantizedDropout()", text)


def _randomize(ref, torch) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / p[0].numel()) ** 0.5)
            elif name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _pair(torch, build_ref, build_ours):
    with torch.device("meta"):
        ref = build_ref()
    ref = ref.to_empty(device="cpu")
    _randomize(ref, torch)
    with mg.device("meta"):
        ours = build_ours()
    ours = ours.to_empty(device="cpu")
    assert _shapes(ours) == _shapes(ref)
    ours.load_state_dict({k: mg.tensor(v.numpy()) for k, v in ref.state_dict().items()})
    return ref.eval(), ours.eval()


def _torch_state(torch, model):
    """A PyTorch model's (quantized) state dict as manygrad reads it from a checkpoint."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    return mg.load(buf)


def _check_quantization(torch, ref, ours, x, fuse=None) -> None:
    """Float outputs, then fused, then eager post-training quantization (fbgemm's QConfig,
    one calibration batch) on both; the int8 outputs with torchvision's quantized state
    dict loaded into ours must be the same codes."""

    def run(x):
        with torch.no_grad():
            want = ref(torch.tensor(x)).numpy()
        with mg.no_grad():
            got = ours(mg.tensor(x)).numpy()
        return got, want

    got, want = run(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    for m in (ref, ours):
        m.fuse_model() if fuse is None else fuse(m)
    fused, want_fused = run(x)
    assert _tree(ours) == _tree(ref)
    np.testing.assert_allclose(fused, want_fused, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    np.testing.assert_allclose(fused, got, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    for m, Q in ((ref, torch.ao.quantization), (ours, MQa)):
        m.qconfig = Q.QConfig(
            activation=Q.default_observer, weight=Q.default_per_channel_weight_observer
        )
        Q.prepare(m, inplace=True)
    run(x)  # calibration
    torch.ao.quantization.convert(ref, inplace=True)
    MQa.convert(ours, inplace=True)
    assert _dtypes(ours) == _dtypes(ref)
    ours.load_state_dict(_torch_state(torch, ref))
    assert _tree(ours) == _tree(ref)  # the quantized modules and their qparams
    x2 = np.random.default_rng(7).random(x.shape).astype(np.float32)
    got, want = run(x2)
    assert np.abs(want).max() > 0.1
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- builders, names, weights


@pytest.mark.parametrize("name", _BUILDERS)
def test_builders_have_torchvisions_keys_and_tree(tv, torch, name):
    with torch.device("meta"):
        ref = getattr(tv.models.quantization, name)()
    with mg.device("meta"):
        ours = getattr(MQ, name)()
    assert _shapes(ours) == _shapes(ref)
    assert _tree(ours) == _tree(ref)


def test_registry_and_weights_match_torchvision(tv):
    names = M.list_models(module=MQ)
    assert names == tv.models.list_models(module=tv.models.quantization)
    assert names == sorted("quantized_" + n for n in _BUILDERS)
    assert M.get_weight("ResNet50_QuantizedWeights.IMAGENET1K_FBGEMM_V2") is (
        MQ.ResNet50_QuantizedWeights.DEFAULT
    )
    for name in names:
        ours, ref = M.get_model_weights(name), tv.models.get_model_weights(name)
        assert ours.__name__ == ref.__name__ and ours.DEFAULT.name == ref.DEFAULT.name
        assert [w.name for w in ours] == [w.name for w in ref]
        for w in ours:
            r = ref[w.name]
            assert w.url == r.url and repr(w) == repr(r)
            meta, want = dict(w.meta), dict(r.meta)
            assert repr(meta.pop("unquantized")) == repr(want.pop("unquantized"))
            assert " ".join(meta.pop("_docs").split()) == " ".join(want.pop("_docs").split())
            assert meta == want, (name, w.name)
            assert w.transforms.keywords == r.transforms.keywords


@pytest.mark.parametrize("module", [*_MODULES, "utils"])
def test_modules_have_torchvisions_names_and_signatures(tv, module):
    ref, ours = _mod("torchvision", module), _ours(module)
    if hasattr(ref, "__all__"):
        assert sorted(ours.__all__) == sorted(ref.__all__)

    def params(fn):
        out = []
        for p in inspect.signature(fn).parameters.values():
            d = p.default
            d = "-" if d is p.empty else getattr(d, "__name__", repr(d))
            out.append((p.name, p.kind, d))
        return out

    for name, obj in vars(ref).items():
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == ref.__name__:
            assert hasattr(ours, name), f"{module}.{name}"
            assert params(getattr(ours, name)) == params(obj), f"{module}.{name}"


# ---------------------------------------------------------------- float, fused, int8


@pytest.mark.parametrize("name, size", [("shufflenet_v2_x0_5", 64)])
def test_models_quantize_like_torchvision(tv, torch, name, size):
    ref, ours = _pair(
        torch, lambda: getattr(tv.models.quantization, name)(num_classes=10),
        lambda: getattr(MQ, name)(num_classes=10),
    )  # fmt: skip
    x = np.random.default_rng(0).random((2, 3, size, size)).astype(np.float32)
    _check_quantization(torch, ref, ours, x)


def _stubbed(nn, quantization, block):
    class Stubbed(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.block = quantization.QuantStub(), block
            self.dequant = quantization.DeQuantStub()

        def forward(self, x):
            return self.dequant(self.block(self.quant(x)))

    return Stubbed()


_FUSED_BLOCKS = ("QuantizableBasicConv2d", "QuantizableBottleneck", "QuantizableBasicBlock",
                 "QuantizableInvertedResidual")  # fmt: skip


def _fuse_blocks(model):
    """The blocks' fuse_model(), and MobileNet's conv-norm-ReLUs as its model fuses them."""
    is_torch = not isinstance(model, mg.nn.Module)
    fuse = _mod("torchvision", "utils")._fuse_modules if is_torch else _ours("utils")._fuse_modules
    for m in list(model.modules()):
        if type(m).__name__ in _FUSED_BLOCKS:
            m.fuse_model()
        elif type(m).__name__ == "Conv2dNormActivation":
            fuse(m, ["0", "1", "2"], None, inplace=True)


@pytest.mark.parametrize(
    "module, block, args, size",
    [
        ("resnet", "QuantizableBottleneck", "bottleneck", 8),
        ("resnet", "QuantizableBasicBlock", "basic", 8),
        ("mobilenetv2", "QuantizableInvertedResidual", (16, 16, 1, 6), 8),  # with its shortcut
        ("mobilenetv2", "QuantizableInvertedResidual", (16, 24, 2, 6), 8),
        ("googlenet", "QuantizableInception", (16, 8, 4, 8, 4, 8, 8), 7),
        ("googlenet", "QuantizableInceptionAux", (16, 5), 9),
        ("inception", "QuantizableInceptionA", (16, 8), 9),  # average pooling
        ("inception", "QuantizableInceptionC", (16, 8), 9),
        ("inception", "QuantizableInceptionE", (16,), 3),
    ],
)
def test_blocks_quantize_like_torchvision(tv, torch, module, block, args, size):
    def build(lib, which):
        cls = getattr(_mod(lib, module) if lib == "torchvision" else _ours(module), block)
        nn = torch.nn if lib == "torchvision" else mg.nn
        Q = torch.ao.quantization if lib == "torchvision" else MQa
        if args in ("bottleneck", "basic"):  # strided, with its projection
            out = 32 if args == "bottleneck" else 8
            down = nn.Sequential(nn.Conv2d(16, out, 1, stride=2, bias=False), nn.BatchNorm2d(out))
            return _stubbed(nn, Q, cls(16, 8, 2, down))
        model = _stubbed(nn, Q, cls(*args))
        utils = _mod(lib, "utils") if lib == "torchvision" else _ours("utils")
        utils._replace_relu(model)  # MobileNet's ReLU6 -> ReLU, as its builder does
        return model

    ref, ours = _pair(torch, lambda: build("torchvision", 0), lambda: build("manygrad", 0))
    x = np.random.default_rng(0).standard_normal((2, 16, size, size)).astype(np.float32)
    _check_quantization(torch, ref, ours, x, fuse=_fuse_blocks)


def _check_fused(torch, ref, ours, x) -> None:
    with mg.no_grad():
        before = ours(mg.tensor(x)).numpy()
    ref.fuse_model()
    ours.fuse_model()
    assert _tree(ours) == _tree(ref)
    with torch.no_grad():
        want = ref(torch.tensor(x)).numpy()
    with mg.no_grad():
        got = ours(mg.tensor(x)).numpy()
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(got, before, rtol=1e-4, atol=1e-4 * scale)


def test_mobilenet_v3_fuse_model_keeps_the_outputs(tv, torch):
    ref, ours = _pair(
        torch, lambda: tv.models.quantization.mobilenet_v3_large(num_classes=10),
        lambda: MQ.mobilenet_v3_large(num_classes=10),
    )  # fmt: skip
    _check_fused(torch, ref, ours, np.random.default_rng(0).random((2, 3, 32, 32), np.float32))


def test_googlenet_train_outputs_and_fusion_match_torchvision(tv, torch):
    kw = dict(num_classes=4, init_weights=False, dropout=0.0, dropout_aux=0.0)
    ref, ours = _pair(
        torch, lambda: tv.models.quantization.googlenet(**kw), lambda: MQ.googlenet(**kw)
    )
    # torchvision's quantizable GoogLeNet returns the auxiliary logits swapped in training
    # NOTE: float64: batch norm over 2 values per channel (1 x 1 maps) magnifies rounding
    ref, ours = ref.double().train(), ours.double().train()
    x = np.random.default_rng(0).random((2, 3, 32, 32))
    with torch.no_grad():
        want = ref(torch.tensor(x))
    with mg.no_grad():
        got = ours(mg.tensor(x))
    assert got._fields == want._fields
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-7, atol=1e-7)
    _check_fused(torch, ref.eval(), ours.eval(), x)


# ---------------------------------------------------------------- quantize=True


def test_quantized_builder_loads_a_quantized_checkpoint(tv, torch, monkeypatch):
    # torchvision's int8 ShuffleNet (its own calibration) as the checkpoint of ours
    torch.manual_seed(0)
    ref = tv.models.quantization.shufflenet_v2_x0_5(quantize=True)
    sd = _torch_state(torch, ref)
    entry = MQ.ShuffleNet_V2_X0_5_QuantizedWeights
    monkeypatch.setattr(entry, "get_state_dict", lambda self, **kw: sd)
    ours = MQ.shufflenet_v2_x0_5(weights="DEFAULT", quantize=True)
    assert _dtypes(ours) == _dtypes(ref) and _tree(ours) == _tree(ref)
    assert ours.fc._get_name() == "QuantizedLinear"
    x = np.random.default_rng(3).random((1, 3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(ours(mg.tensor(x)).numpy(), ref(torch.tensor(x)).numpy())
    with pytest.raises(ValueError, match="num_classes"):
        MQ.shufflenet_v2_x0_5(weights="DEFAULT", quantize=True, num_classes=10)
    with pytest.raises(TypeError, match="ShuffleNet_V2_X0_5_Weights"):
        MQ.shufflenet_v2_x0_5(weights=entry.DEFAULT)  # quantized weights, float model
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        MQ.shufflenet_v2_x0_5(pretrained=True, quantize=True)
    assert any("ShuffleNet_V2_X0_5_QuantizedWeights.IMAGENET1K_FBGEMM_V1" in str(w.message)
               for w in rec)  # fmt: skip


def test_quantize_limits():
    with pytest.raises(RuntimeError, match="backend"):
        MQ.shufflenet_v2_x0_5(quantize=True, backend="tensorrt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NOTE: observers that saw nothing, as torchvision's
        q = MQ.mobilenet_v3_large(quantize=True, num_classes=10)
    assert not q.training and q.features[0][0]._get_name() == "QuantizedConv2d"
    assert q.features[1].block[0][0]._get_name() == "QuantizedConvReLU2d"
