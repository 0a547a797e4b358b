"""manygrad.vision.models.segmentation against torchvision.models.segmentation: the same
state-dict keys and shapes, the same ``{"out", "aux"}`` outputs with torchvision's weights
copied in (eval and train mode, gradients), the weights enums, the registry, the
``SemanticSegmentation`` preset and checkpoints read from the hub cache."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad.vision.models import _api
from manygrad.vision.models import segmentation as S


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _shapes(model) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _copy_weights(src, dst) -> None:
    dst.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in src.state_dict().items()})


def _randomize(ref, torch) -> None:
    """Weights and batch-norm statistics of order one, so that outputs are too (and eval
    mode uses the statistics)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            elif isinstance(m, torch.nn.Conv2d):
                fan_in = int(np.prod(m.weight.shape[1:]))
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.5 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def _pair(tv, torch, name: str, **kw):
    """torchvision's model (seeded, randomized) and manygrad's with its weights copied in."""
    torch.manual_seed(0)
    ref = tv.models.get_model(name, weights_backbone=None, **kw)
    _randomize(ref, torch)
    ours = _api.get_model(name, weights_backbone=None, **kw)
    assert list(_shapes(ours).items()) == list(_shapes(ref).items())
    _copy_weights(ref, ours)
    return ref, ours


def _check_eval(tv, torch, name: str, shape=(2, 3, 33, 41), **kw) -> None:
    ref, ours = _pair(tv, torch, name, **kw)
    ref.eval()
    ours.eval()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.tensor(x))
    with mg.no_grad():
        got = ours(mg.tensor(x))
    assert list(got) == list(want)
    for key in want:
        w = want[key].numpy()
        assert tuple(got[key].shape) == w.shape == (shape[0], kw["num_classes"], *shape[2:])
        scale = float(np.abs(w).max())
        assert scale > 1e-2, f"{name}[{key}]: outputs too small ({scale}) to mean anything"
        np.testing.assert_allclose(got[key].numpy(), w, rtol=1e-4, atol=1e-4 * scale)


def test_fcn_resnet50_eval_matches_torchvision(tv, torch):
    _check_eval(tv, torch, "fcn_resnet50", shape=(1, 3, 20, 27), num_classes=5, aux_loss=True)


def test_deeplabv3_mobilenet_eval_matches_torchvision(tv, torch):
    _check_eval(tv, torch, "deeplabv3_mobilenet_v3_large", num_classes=4, aux_loss=True)


def test_lraspp_eval_matches_torchvision(tv, torch):
    _check_eval(tv, torch, "lraspp_mobilenet_v3_large", shape=(1, 3, 50, 37), num_classes=3)


def test_deeplabv3_train_step_matches_torchvision(tv, torch):
    # NOTE: float64 on both sides (batch norm over two samples of a pooled 1x1 map is
    # ill-conditioned in float32); dropout off so that both draw nothing
    ref, ours = _pair(tv, torch, "deeplabv3_mobilenet_v3_large", num_classes=3, aux_loss=True)
    for model in (ref, ours):
        model.classifier[0].project[3].p = 0.0
        model.aux_classifier[3].p = 0.0
    ref = ref.double().train()
    ours = ours.double().train()
    x = np.random.default_rng(1).standard_normal((2, 3, 24, 20))
    out_ref = ref(torch.tensor(x))
    out = ours(mg.tensor(x))
    for key in ("out", "aux"):
        np.testing.assert_allclose(
            out[key].detach().numpy(), out_ref[key].detach().numpy(), rtol=1e-7, atol=1e-9
        )
    (out_ref["out"].square().mean() + 0.5 * out_ref["aux"].square().mean()).backward()
    (out["out"].square().mean() + 0.5 * out["aux"].square().mean()).backward()
    ref_params = dict(ref.named_parameters())
    for k, p in ours.named_parameters():
        want = ref_params[k].grad.numpy()
        scale = max(1e-8, float(np.abs(want).max()))
        np.testing.assert_allclose(p.grad.numpy(), want, atol=1e-6 * scale, err_msg=k)
    ref_buffers = dict(ref.named_buffers())
    for k, b in ours.named_buffers():
        np.testing.assert_allclose(b.numpy(), ref_buffers[k].numpy(), atol=1e-9, err_msg=k)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("fcn_resnet50", {"aux_loss": True}),
        ("fcn_resnet101", {}),
        ("deeplabv3_resnet50", {}),
        ("deeplabv3_resnet101", {"aux_loss": True}),
        ("deeplabv3_mobilenet_v3_large", {"aux_loss": True}),
        ("lraspp_mobilenet_v3_large", {"num_classes": 7}),
    ],
)
def test_builders_have_torchvisions_keys_and_shapes(tv, torch, name, kw):
    with torch.device("meta"):
        ref = tv.models.get_model(name, weights_backbone=None, **kw)
    with mg.device("meta"):
        ours = _api.get_model(name, weights_backbone=None, **kw)
    assert list(_shapes(ours).items()) == list(_shapes(ref).items())
    assert repr(ours.backbone.return_layers) == repr(ref.backbone.return_layers)


def test_registry_and_weights_match_torchvision(tv):
    names = _api.list_models(module=S)
    assert names == tv.models.list_models(module=tv.models.segmentation)
    for name in names:
        ours, ref = _api.get_model_weights(name), tv.models.get_model_weights(name)
        assert ours.__name__ == ref.__name__
        assert [w.name for w in ours] == [w.name for w in ref]
        for w in ours:
            r = ref[w.name]
            assert repr(w) == repr(r)
            assert w.url == r.url
            for key in ("categories", "num_params", "min_size", "recipe", "_metrics", "_ops"):
                assert w.meta[key] == r.meta[key], (name, key)
            assert w.transforms.keywords == r.transforms.keywords
            assert repr(w.transforms()) == repr(r.transforms())
    assert S.FCN_ResNet50_Weights.verify("COCO_WITH_VOC_LABELS_V1") is (
        S.FCN_ResNet50_Weights.DEFAULT
    )


def test_semantic_segmentation_preset_matches_torchvision(tv, torch):
    ours = S.DeepLabV3_ResNet50_Weights.DEFAULT.transforms()
    ref = tv.models.segmentation.DeepLabV3_ResNet50_Weights.DEFAULT.transforms()
    rng = np.random.default_rng(6)
    img = rng.random((2, 3, 40, 60)).astype(np.float32)
    want = ref(torch.tensor(img)).numpy()
    got = ours(mg.tensor(img)).numpy()
    assert got.shape == want.shape == (2, 3, 520, 780)
    np.testing.assert_allclose(got, want, atol=2e-4)
    u8 = rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)
    pil = pytest.importorskip("PIL.Image").fromarray(u8)
    np.testing.assert_allclose(ours(pil).numpy(), ref(pil).numpy(), atol=1e-5)
    assert ours.describe() == ref.describe()
    from manygrad.vision.models._presets import SemanticSegmentation

    plain = SemanticSegmentation(resize_size=None)
    np.testing.assert_allclose(
        plain(mg.tensor(u8.transpose(2, 0, 1))).numpy(),
        tv.transforms._presets.SemanticSegmentation(resize_size=None)(
            torch.tensor(u8.transpose(2, 0, 1))
        ).numpy(),
        atol=1e-6,
    )


def test_intermediate_layer_getter_and_bad_arguments():
    from manygrad.vision.models import resnet18
    from manygrad.vision.models.segmentation._utils import IntermediateLayerGetter

    body = IntermediateLayerGetter(resnet18(), {"layer1": "feat1", "layer3": "feat2"})
    assert list(body.keys())[-1] == "layer3"  # cut after the last layer asked for
    out = body(mg.rand(1, 3, 64, 64))
    assert [(k, tuple(v.shape)) for k, v in out.items()] == [
        ("feat1", (1, 64, 16, 16)),
        ("feat2", (1, 256, 4, 4)),
    ]
    with pytest.raises(ValueError, match="return_layers are not present"):
        IntermediateLayerGetter(resnet18(), {"layer5": "x"})
    with pytest.raises(NotImplementedError, match="auxiliary loss"):
        S.lraspp_mobilenet_v3_large(weights_backbone=None, aux_loss=True)
    with pytest.raises(TypeError, match="expected FCN_ResNet50_Weights"):
        S.fcn_resnet50(weights=S.FCN_ResNet101_Weights.DEFAULT)
    with pytest.raises(ValueError, match="num_classes"):
        S.fcn_resnet50(weights="DEFAULT", num_classes=5)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_weights_load_from_hub_cache(tv, torch, torch_home):
    torch.manual_seed(0)
    ref = tv.models.segmentation.lraspp_mobilenet_v3_large(weights_backbone=None)
    _randomize(ref, torch)
    ckpt = torch_home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(ref.state_dict(), ckpt / "lraspp_mobilenet_v3_large-d234d4ea.pth")
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = ref.eval()(torch.tensor(x))["out"].numpy()
    model = S.lraspp_mobilenet_v3_large(weights="DEFAULT", progress=False).eval()
    np.testing.assert_allclose(model(mg.tensor(x))["out"].detach().numpy(), want, atol=1e-4)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        legacy = S.lraspp_mobilenet_v3_large(pretrained=True, progress=False).eval()
    texts = [str(w.message) for w in rec]
    assert any("'pretrained' is deprecated since 0.13" in t for t in texts)
    assert any("`weights=LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1`" in t
               for t in texts)  # fmt: skip
    np.testing.assert_allclose(legacy(mg.tensor(x))["out"].detach().numpy(), want, atol=1e-4)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        S.lraspp_mobilenet_v3_large(None, True, 4, pretrained_backbone=False)
    texts = [str(w.message) for w in rec]
    assert any("Using 'weights', 'progress', and 'num_classes' as positional" in t
               for t in texts)  # fmt: skip
    assert any("`weights_backbone=None`" in t for t in texts)
