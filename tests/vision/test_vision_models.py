"""manygrad.vision.models against torchvision.models: the same state-dict keys and shapes,
the same outputs with torchvision's weights copied in (eval and train mode, gradients and
batch-norm statistics), and checkpoints read from the hub cache through ``weights=``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad.vision import models as M


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _shapes(model) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _copy_weights(src, dst) -> None:
    dst.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in src.state_dict().items()})


def _pair(tv, torch, name: str, seed: int = 0, **kw):
    """torchvision's model (seeded) and manygrad's with its weights copied in."""
    torch.manual_seed(seed)
    ref = tv.models.get_model(name, **kw)
    ours = M.get_model(name, **kw)
    assert list(_shapes(ours).items()) == list(_shapes(ref).items())
    _copy_weights(ref, ours)
    return ref, ours


def _check_keys_and_shapes(tv, torch, name: str, **kw) -> None:
    # on the meta device: no memory, no random init (the large models build in a blink)
    with torch.device("meta"):
        ref = tv.models.get_model(name, **kw)
    with mg.device("meta"):
        ours = M.get_model(name, **kw)
    assert list(_shapes(ours).items()) == list(_shapes(ref).items())


def _randomize_bn_stats(ref, torch) -> None:
    """Non-trivial weights and running statistics: outputs of order one (torchvision's init
    with fresh statistics gives ~1e-10 through MobileNet) and eval mode that uses them."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = int(np.prod(m.weight.shape[1:]))
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.5 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def _shrink_classifier(model, nn, width: int = 32) -> None:
    """Narrow the hidden linear layers of ``model.classifier`` (VGG's and AlexNet's hold
    100M+ weights, slow to fill and copy); the first keeps its inputs, the last its outputs."""
    idx = [i for i, m in enumerate(model.classifier) if isinstance(m, nn.Linear)]
    for j, i in enumerate(idx):
        old = model.classifier[i]
        fin = old.in_features if j == 0 else width
        fout = old.out_features if j == len(idx) - 1 else width
        model.classifier[i] = nn.Linear(fin, fout)


def _check_eval(
    tv, torch, name: str, size: int = 64, atol: float = 1e-4, shrink: bool = False, **kw
) -> None:
    """Same keys and shapes, and the same eval-mode outputs with torchvision's weights.
    ``shrink`` narrows the linear classifier of both models (built on the meta device, with
    random weights drawn afterwards)."""
    torch.manual_seed(0)
    if shrink:
        _check_keys_and_shapes(tv, torch, name, **kw)
        with torch.device("meta"):
            ref = tv.models.get_model(name, **kw)
            _shrink_classifier(ref, torch.nn)
        ref = ref.to_empty(device="cpu")
        with torch.no_grad():
            for p in ref.parameters():
                fan_in = int(np.prod(p.shape[1:])) if p.ndim > 1 else 1
                p.normal_(0.0, 1.0 / np.sqrt(fan_in))
            for b in ref.buffers():
                b.fill_(1 if b.is_floating_point() else 0)
        with mg.device("meta"):
            ours = M.get_model(name, **kw)
            _shrink_classifier(ours, mg.nn)
        ours = ours.to_empty(device="cpu")
    else:
        ref = tv.models.get_model(name, **kw)
        ours = M.get_model(name, **kw)
    _randomize_bn_stats(ref, torch)
    assert list(_shapes(ours).items()) == list(_shapes(ref).items())
    _copy_weights(ref, ours)
    ref.eval()
    ours.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.tensor(x)).numpy()
    with mg.no_grad():
        got = ours(mg.tensor(x)).numpy()
    assert got.shape == want.shape
    scale = float(np.abs(want).max())
    assert scale > 1e-2, f"{name}: outputs too small ({scale}) for the check to mean anything"
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol * scale)


# ---------------------------------------------------------------- ResNet family


def test_resnet18_eval_matches_torchvision(tv, torch):
    _check_eval(tv, torch, "resnet18", size=32, num_classes=10)


def test_resnet18_train_step_matches_torchvision(tv, torch):
    # NOTE: in float64 on both sides: batch norm over 2 samples at 1x1 (layer4) makes
    # float32 results ill-conditioned (PyTorch's own float32 gradients are ~10% off)
    ref, ours = _pair(tv, torch, "resnet18", num_classes=7)
    ref = ref.double().train()
    ours = ours.double().train()
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32))
    y = np.array([3, 5])
    out_ref = ref(torch.tensor(x))
    out = ours(mg.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), out_ref.detach().numpy(), atol=1e-8)
    torch.nn.functional.cross_entropy(out_ref, torch.tensor(y)).backward()
    mg.nn.functional.cross_entropy(out, mg.tensor(y)).backward()
    ref_params = dict(ref.named_parameters())
    for k, p in ours.named_parameters():
        want = ref_params[k].grad.numpy()
        scale = max(1e-6, float(np.abs(want).max()))
        np.testing.assert_allclose(p.grad.numpy(), want, atol=1e-7 * scale, err_msg=k)
    ref_buffers = dict(ref.named_buffers())
    for k, b in ours.named_buffers():
        np.testing.assert_allclose(b.numpy(), ref_buffers[k].numpy(), atol=1e-9, err_msg=k)


def test_bottleneck_grouped_dilated_resnet_matches(tv, torch):
    # ResNeXt / wide / dilated code paths on a small net (the full ones are slow to build)
    def build(lib, resnet):
        return resnet.ResNet(
            resnet.Bottleneck,
            [1, 2, 1, 1],
            num_classes=5,
            groups=4,
            width_per_group=8,
            replace_stride_with_dilation=[False, True, True],
        )

    torch.manual_seed(0)
    ref = build(torch, tv.models.resnet)
    _randomize_bn_stats(ref, torch)
    ours = build(mg, M.resnet)
    assert list(_shapes(ours).items()) == list(_shapes(ref).items())
    _copy_weights(ref, ours)
    ref.eval()
    ours.eval()
    x = np.random.default_rng(2).standard_normal((1, 3, 48, 48)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours(mg.tensor(x)).detach().numpy(), want, atol=1e-4)


@pytest.mark.parametrize(
    "name", ["resnet34", "resnet50", "resnet101", "resnext50_32x4d", "wide_resnet50_2"]
)
def test_resnet_builders_have_torchvisions_keys_and_shapes(tv, torch, name):
    _check_keys_and_shapes(tv, torch, name)


def test_resnet_init_follows_torchvision():
    model = M.resnet18(num_classes=10, zero_init_residual=True)
    w = model.conv1.weight.detach().numpy()
    fan_out = 64 * 7 * 7  # kaiming normal, fan_out, relu gain
    assert abs(w.std() - np.sqrt(2.0 / fan_out)) < 0.1 * np.sqrt(2.0 / fan_out)
    assert np.all(model.layer1[0].bn2.weight.detach().numpy() == 0)
    assert np.all(model.layer1[0].bn1.weight.detach().numpy() == 1)
    assert np.all(model.bn1.bias.detach().numpy() == 0)


def test_resnet_bad_arguments():
    with pytest.raises(ValueError, match="groups=1 and base_width=64"):
        M.resnet18(groups=2)
    with pytest.raises(ValueError, match="3-element"):
        M.resnet50(replace_stride_with_dilation=[True])
    with pytest.raises(NotImplementedError, match="Dilation > 1"):
        M.resnet18(replace_stride_with_dilation=[False, False, True])


# ---------------------------------------------------------------- VGG, AlexNet, SqueezeNet


def test_vgg_eval_matches_torchvision(tv, torch):
    _check_eval(tv, torch, "vgg11_bn", size=32, shrink=True, num_classes=10)


@pytest.mark.parametrize(
    "name", ["vgg11", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
)
def test_vgg_builders_have_torchvisions_keys_and_shapes(tv, torch, name):
    _check_keys_and_shapes(tv, torch, name)


def test_alexnet_eval_matches_torchvision(tv, torch):
    _check_eval(tv, torch, "alexnet", size=63, shrink=True, num_classes=10, dropout=0.2)


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_squeezenet_eval_matches_torchvision(tv, torch, name):
    _check_eval(tv, torch, name, size=32, num_classes=10)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"])
def test_mobilenet_eval_matches_torchvision(tv, torch, name):
    _check_eval(tv, torch, name, size=32, num_classes=10)


def test_mobilenet_options_match_torchvision(tv, torch):
    _check_keys_and_shapes(tv, torch, "mobilenet_v2", width_mult=0.5)
    _check_keys_and_shapes(tv, torch, "mobilenet_v3_large", reduced_tail=True, dilated=True)
    _check_keys_and_shapes(tv, torch, "mobilenet_v3_small", width_mult=0.75)


# ---------------------------------------------------------------- DenseNet, ShuffleNet V2


def _small_densenets(tv, torch, **kw):
    cfg = dict(growth_rate=8, block_config=(2, 3, 2, 2), num_init_features=16, num_classes=5)
    cfg.update(kw)
    torch.manual_seed(0)
    ref = tv.models.densenet.DenseNet(**cfg)
    _randomize_bn_stats(ref, torch)
    ours = M.densenet.DenseNet(**cfg)
    assert list(_shapes(ours).items()) == list(_shapes(ref).items())
    _copy_weights(ref, ours)
    return ref, ours


def test_densenet_eval_and_checkpointed_train_step_match(tv, torch):
    ref, ours = _small_densenets(tv, torch, memory_efficient=True)
    x = np.random.default_rng(4).standard_normal((2, 3, 40, 40)).astype(np.float32)
    ref.eval()
    ours.eval()
    with torch.no_grad():
        want = ref(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours(mg.tensor(x)).detach().numpy(), want, atol=1e-4)
    # NOTE: in float64 on both sides: float32 gradients of the stem are ill-conditioned
    # here (PyTorch's own are 0.8% off its float64 ones)
    ref = ref.double().train()
    ours = ours.double().train()
    out_ref = ref(torch.tensor(x).double())
    out = ours(mg.tensor(x).double())
    np.testing.assert_allclose(out.detach().numpy(), out_ref.detach().numpy(), atol=1e-9)
    out_ref.square().sum().backward()
    out.square().sum().backward()
    ref_params = dict(ref.named_parameters())
    for k, p in ours.named_parameters():
        want = ref_params[k].grad.numpy()
        scale = max(1e-3, float(np.abs(want).max()))
        np.testing.assert_allclose(p.grad.numpy(), want, atol=1e-8 * scale, err_msg=k)
    for k, b in ours.named_buffers():
        np.testing.assert_allclose(b.numpy(), ref.state_dict()[k].numpy(), atol=1e-9, err_msg=k)


def test_densenet_legacy_checkpoint_keys_are_renamed(tv, torch):
    ref, ours = _small_densenets(tv, torch)
    legacy = {}
    for k, v in ref.state_dict().items():
        # the 2017 checkpoints: "...denselayer1.norm.1.weight" for "...denselayer1.norm1.weight"
        if not k.endswith("num_batches_tracked"):
            k = k.replace("layer1.norm1.", "layer1.norm.1.")
            k = k.replace("layer2.conv2.", "layer2.conv.2.")
        legacy[k] = mg.tensor(v.numpy())
    assert any(".norm.1." in k for k in legacy)

    class Legacy:
        def get_state_dict(self, **kwargs):
            return dict(legacy)

    fresh = M.densenet.DenseNet(
        growth_rate=8, block_config=(2, 3, 2, 2), num_init_features=16, num_classes=5
    )
    M.densenet._load_state_dict(fresh, Legacy(), progress=False)
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k].numpy(), v.numpy(), err_msg=k)


@pytest.mark.parametrize("name", ["densenet121", "densenet161", "densenet169", "densenet201"])
def test_densenet_builders_have_torchvisions_keys_and_shapes(tv, torch, name):
    _check_keys_and_shapes(tv, torch, name)


def test_shufflenet_eval_matches_torchvision(tv, torch):
    _check_eval(tv, torch, "shufflenet_v2_x0_5", size=32, num_classes=10)


@pytest.mark.parametrize("name", ["shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"])
def test_shufflenet_builders_have_torchvisions_keys_and_shapes(tv, torch, name):
    _check_keys_and_shapes(tv, torch, name)


# ---------------------------------------------------------------- EfficientNet


def test_efficientnet_b0_eval_matches_torchvision(tv, torch):
    _check_eval(tv, torch, "efficientnet_b0", size=32, num_classes=10)


def test_efficientnet_b1_has_torchvisions_keys_and_shapes(tv, torch):
    _check_keys_and_shapes(tv, torch, "efficientnet_b1")


def test_efficientnet_train_step_matches_without_random_drops(tv, torch):
    # a small net from MBConv stages, stochastic depth and dropout off (deterministic)
    def build(lib):
        setting = [lib.MBConvConfig(1, 3, 1, 8, 8, 2), lib.MBConvConfig(6, 5, 2, 8, 16, 2)]
        return lib.EfficientNet(setting, dropout=0.0, stochastic_depth_prob=0.0, num_classes=4)

    torch.manual_seed(0)
    ref = build(tv.models.efficientnet)
    ours = build(M.efficientnet)
    assert list(_shapes(ours).items()) == list(_shapes(ref).items())
    _randomize_bn_stats(ref, torch)
    _copy_weights(ref, ours)
    ref = ref.double().train()
    ours = ours.double().train()
    x = np.random.default_rng(5).standard_normal((2, 3, 48, 48))
    out_ref = ref(torch.tensor(x))
    out = ours(mg.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), out_ref.detach().numpy(), atol=1e-8)
    out_ref.square().sum().backward()
    out.square().sum().backward()
    ref_params = dict(ref.named_parameters())
    for k, p in ours.named_parameters():
        want = ref_params[k].grad.numpy()
        scale = max(1e-6, float(np.abs(want).max()))
        np.testing.assert_allclose(p.grad.numpy(), want, atol=1e-7 * scale, err_msg=k)


def test_stochastic_depth_drops_whole_rows():
    from manygrad.vision.ops import StochasticDepth

    layer = StochasticDepth(0.25, "row")
    x = mg.ones(4000, 3)
    y = layer(x).numpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1.0 / 0.75)}
    assert np.all(y == y[:, :1])  # each sample kept or dropped as a whole
    assert abs((y[:, 0] == 0).mean() - 0.25) < 0.03
    np.testing.assert_array_equal(layer.eval()(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match="mode"):
        StochasticDepth(0.2, "col")(x)


# ---------------------------------------------------------------- presets


@pytest.mark.parametrize(
    "weights", ["ResNet50_Weights.IMAGENET1K_V2", "EfficientNet_B0_Weights.IMAGENET1K_V1"]
)
def test_preset_transforms_match_torchvision(tv, torch, weights):
    ours = M.get_weight(weights).transforms()
    ref = tv.models.get_weight(weights).transforms()
    rng = np.random.default_rng(6)
    img = rng.random((3, 240, 300)).astype(np.float32)
    want = ref(torch.tensor(img)).numpy()
    got = ours(mg.tensor(img)).numpy()
    assert got.shape == want.shape == (3, 224, 224)
    np.testing.assert_allclose(got, want, atol=2e-4)  # PyTorch's float32 sums
    batch = rng.random((2, 3, 250, 230)).astype(np.float32)
    np.testing.assert_allclose(
        ours(mg.tensor(batch)).numpy(), ref(torch.tensor(batch)).numpy(), atol=2e-4
    )
    u8 = rng.integers(0, 256, (3, 260, 240), dtype=np.uint8)
    # PyTorch resizes uint8 with fixed-point weights: one level apart at most
    np.testing.assert_allclose(
        ours(mg.tensor(u8)).numpy(), ref(torch.tensor(u8)).numpy(), atol=1.01 / 255 / 0.224
    )
    pil = pytest.importorskip("PIL.Image").fromarray(u8.transpose(1, 2, 0))
    np.testing.assert_allclose(ours(pil).numpy(), ref(pil).numpy(), atol=1e-6)
    assert repr(ours) == repr(ref)


# ---------------------------------------------------------------- registry and weights


def test_registry_matches_torchvision(tv):
    ours = set(M.list_models(module=M))  # the classification models (subpackages: theirs)
    assert ours <= set(tv.models.list_models(module=tv.models))
    assert {"resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"} <= ours
    assert M.list_models(include="resnet*", exclude="*101") == [
        n for n in tv.models.list_models(include="resnet*", exclude="*101")
    ]
    assert M.list_models(module=M) == sorted(ours)
    assert M.get_model_weights("resnet50") is M.ResNet50_Weights
    assert M.get_model_weights(M.resnet18) is M.ResNet18_Weights
    assert M.get_weight("ResNet50_Weights.IMAGENET1K_V2") is M.ResNet50_Weights.DEFAULT
    with pytest.raises(ValueError, match="Unknown model"):
        M.get_model("resnet19")


def test_weights_enums_match_torchvision(tv):
    for name in M.list_models(module=M):
        ours, ref = M.get_model_weights(name), tv.models.get_model_weights(name)
        assert ours.__name__ == ref.__name__
        assert [w.name for w in ours] == [w.name for w in ref], name
        assert ours.DEFAULT.name == ref.DEFAULT.name, name
        for w in ours:
            r = ref[w.name]
            assert w.url == r.url
            assert repr(w) == repr(r)
            assert w.meta["num_params"] == r.meta["num_params"]
            cats = r.meta["categories"]
            assert w.meta["categories"] == cats, (name, w.name)
            assert w.meta["num_classes"] == (None if cats is None else len(cats))
            np.testing.assert_equal(w.meta["_metrics"], r.meta["_metrics"])  # nan == nan
            assert w.transforms.keywords.get("crop_size") == r.transforms.keywords["crop_size"]
            for key, default in [("resize_size", 256), ("mean", None), ("std", None)]:
                got = w.transforms.keywords.get(key, default)
                assert got == r.transforms.keywords.get(key, default), (name, key)
            interp = r.transforms.keywords.get("interpolation")
            assert w.transforms.keywords.get("interpolation", "bilinear") == (
                "bilinear" if interp is None else interp.value
            )
    assert M.ResNet18_Weights.verify("ResNet18_Weights.IMAGENET1K_V1") is (
        M.ResNet18_Weights.IMAGENET1K_V1
    )
    with pytest.raises(TypeError, match="expected ResNet18_Weights"):
        M.resnet18(weights=M.ResNet50_Weights.DEFAULT)
    assert M.ResNet18_Weights.DEFAULT.meta["categories"][:2] == ["tench", "goldfish"]
    assert M.VGG16_Weights.IMAGENET1K_FEATURES.meta["categories"] is None


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_weights_load_from_hub_cache(tv, torch, torch_home):
    torch.manual_seed(0)
    ref = tv.models.resnet18()
    _randomize_bn_stats(ref, torch)
    ckpt = torch_home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(ref.state_dict(), ckpt / "resnet18-f37072fd.pth")
    model = M.get_model("resnet18", weights="IMAGENET1K_V1", progress=False)
    ref.eval()
    model.eval()
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.tensor(x)).numpy()
    np.testing.assert_allclose(model(mg.tensor(x)).detach().numpy(), want, atol=1e-4)
    with pytest.raises(ValueError, match="num_classes"):
        M.resnet18(weights="DEFAULT", num_classes=10)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        legacy = M.resnet18(pretrained=True)
    texts = [str(w.message) for w in rec]
    assert any("'pretrained' is deprecated since 0.13" in t for t in texts)
    assert any("`weights=ResNet18_Weights.IMAGENET1K_V1`" in t for t in texts)
    np.testing.assert_allclose(legacy.eval()(mg.tensor(x)).detach().numpy(), want, atol=1e-4)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert M.squeezenet1_1(pretrained=False).num_classes == 1000
    assert any("`weights=None`" in str(w.message) for w in rec)


def test_missing_weights_offline_error_names_url_and_path(torch_home, monkeypatch):
    import urllib.request
    from urllib.error import URLError

    from manygrad import _hub_download

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(_hub_download, "urlopen", offline)
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(URLError) as e:
        M.resnet34(weights="DEFAULT", progress=False)
    msg = str(e.value)
    assert "https://download.pytorch.org/models/resnet34-b627a593.pth" in msg
    assert str(torch_home / "hub" / "checkpoints" / "resnet34-b627a593.pth") in msg
