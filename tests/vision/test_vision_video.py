"""manygrad.vision.models.video against torchvision.models.video: every builder's arguments
to its model class, state-dict keys, shapes and module settings (on the meta device), the
public names and signatures, the Kinetics-400 weights enums and the VideoClassification
preset, and the same outputs with torchvision's weights copied in: eval mode on tiny clips
(2 frames of 32 x 32), train steps in float64 (outputs, gradients, batch-norm statistics)
on small configurations of each family."""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad.vision import models as M
from manygrad.vision.models import video as V


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    # NOTE: one thread: on a busy 2-core machine PyTorch's two OpenMP threads wait on each
    # other, and its small float64 convolutions run many times slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tvv(tv):
    return tv.models.video


def _tv_video(module: str):
    """A module of torchvision.models.video by import path (the package's ``s3d`` is the
    builder, as ours)."""
    return importlib.import_module(f"torchvision.models.video.{module}")


def _shapes(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def _state(ref):
    return {k: mg.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()}


def _randomize(ref, torch, seed: int = 1) -> None:
    """Weights and statistics of order one in every layer (torchvision's init leaves zero
    biases, unit norms and 0.02-wide position tables that would hide paths)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            fan_in = int(np.prod(p.shape[1:])) if p.ndim > 1 else 1
            if p.ndim > 1 and not name.endswith(("_table", "rel_pos_h", "rel_pos_w", "rel_pos_t")):
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / fan_in) ** 0.5)
            elif name.endswith("weight") and p.ndim == 1:  # norms
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _pair(torch, build_ref, build_ours, ref_on_meta: bool = False):
    """torchvision's model (randomized) and manygrad's (built on the meta device, no init
    to pay for) holding the same weights."""
    torch.manual_seed(0)
    if ref_on_meta:
        with torch.device("meta"):
            ref = build_ref()
        ref = ref.to_empty(device="cpu")
        for name, b in ref.named_buffers():
            assert name.endswith(("running_mean", "running_var", "num_batches_tracked")), name
            b.zero_()
    else:
        ref = build_ref()
    _randomize(ref, torch)
    with mg.device("meta"):
        ours = build_ours()
    ours = ours.to_empty(device="cpu")
    assert _shapes(ours) == _shapes(ref)
    ours.load_state_dict(_state(ref))
    return ref, ours


def _close(got, want, rtol: float, what: str = "") -> None:
    want, got = want.detach().numpy(), got.detach().numpy()
    assert got.shape == want.shape, what
    scale = float(np.abs(want).max())
    assert scale > 1e-3, f"{what}: values too small ({scale}) for the check to mean anything"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def _x(shape, seed: int = 1):
    return np.random.default_rng(seed).standard_normal(shape)


def _check_eval(torch, ref, ours, x, rtol: float = 1e-4) -> None:
    ref.eval()
    ours.eval()
    x = x.astype(np.float32)
    with torch.no_grad():
        want = ref(torch.tensor(x))
    with mg.no_grad():
        got = ours(mg.tensor(x))
    _close(got, want, rtol, "eval outputs")


def _check_train(torch, ref, ours, x, rtol: float = 1e-7) -> None:
    """One train-mode step in float64 on both sides: outputs, every gradient, buffers."""
    ref = ref.double().train()
    ours = ours.double().train()
    out_ref, out = ref(torch.tensor(x)), ours(mg.tensor(x))
    _close(out, out_ref, rtol, "train outputs")
    out_ref.square().sum().backward()
    out.square().sum().backward()
    ref_params = dict(ref.named_parameters())
    grads = {k: (p.grad, ref_params[k].grad) for k, p in ours.named_parameters()}
    scale = max(float(r.abs().max()) for _, r in grads.values())
    assert scale > 1e-3, f"gradients too small ({scale}) for the check to mean anything"
    for k, (got, want) in grads.items():
        assert got is not None, k
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e3 * rtol,
                                   atol=1e3 * rtol * scale, err_msg=k)  # fmt: skip
    ref_buffers = dict(ref.named_buffers())
    for k, b in ours.named_buffers():
        np.testing.assert_allclose(b.numpy(), ref_buffers[k].numpy(), rtol=1e-7, err_msg=k)


_ATTRS = (
    "p", "mode", "eps", "momentum", "stride", "padding", "kernel_size", "groups", "dilation",
    "inplace", "normalized_shape", "output_size", "approximate", "window_size", "shift_size",
    "num_heads", "head_dim", "scaler", "residual_pool", "residual_with_cls_embed",
    "norm_before_pool", "proj_after_attn", "needs_transposal", "spatial_size",
    "temporal_size", "tuple_patch_size", "attention_dropout", "dropout", "num_features",
)  # fmt: skip


def _structure(model) -> list:
    """Each module's name, class name and settings."""
    out = []
    for name, m in model.named_modules():
        attrs = {a: getattr(m, a) for a in _ATTRS if hasattr(m, a)}
        attrs = {a: tuple(v) if isinstance(v, list) else v for a, v in attrs.items()}
        out.append((name, type(m).__name__, attrs))
    return out


_BUILDERS = ["r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v1_b", "mvit_v2_s",
             "swin3d_t", "swin3d_s", "swin3d_b"]  # fmt: skip


def test_registry_lists_the_video_builders(tv):
    assert M.list_models(module=V) == sorted(_BUILDERS)
    assert tv.models.list_models(module=tv.models.video) == sorted(_BUILDERS)
    assert M.get_model_weights("r3d_18") is V.R3D_18_Weights
    assert M.get_weight("Swin3D_B_Weights.KINETICS400_IMAGENET22K_V1") is (
        V.Swin3D_B_Weights.KINETICS400_IMAGENET22K_V1
    )


@pytest.mark.parametrize("name", _BUILDERS)
def test_builders_have_torchvisions_keys_and_shapes(tv, torch, name):
    with torch.device("meta"):
        ref = tv.models.get_model(name)
    with mg.device("meta"):
        ours = M.get_model(name)
    assert _shapes(ours) == _shapes(ref)
    assert _structure(ours) == _structure(ref)


_CLASSES = {"r": "VideoResNet", "mc3": "VideoResNet", "s3d": "S3D", "mvit": "MViT",
            "swin3d": "SwinTransformer3d"}  # fmt: skip


class _BuiltError(Exception):
    pass


def _plain(v):
    """A builder argument in comparable form: classes and functions by name, partials and
    configs by their fields."""
    if isinstance(v, functools.partial):
        return ("partial", _plain(v.func), _plain(v.args), _plain(v.keywords))
    if isinstance(v, type) or callable(v):
        return getattr(v, "__name__", repr(v))
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if hasattr(v, "__dict__"):
        return (type(v).__name__, _plain(vars(v)))
    return v


def _builder_arguments(models, name: str, monkeypatch) -> dict:
    """The arguments that the builder ``models.<name>`` gives its model class."""
    family = next(k for k in sorted(_CLASSES, key=len, reverse=True) if name.startswith(k))
    cls = getattr(models, _CLASSES[family])
    seen = {}
    signature = inspect.signature(cls.__init__)

    def init(self, *args, **kwargs):
        seen.update(signature.bind(self, *args, **kwargs).arguments)
        raise _BuiltError

    monkeypatch.setattr(cls, "__init__", init)
    with pytest.raises(_BuiltError):
        getattr(models, name)()
    monkeypatch.undo()
    seen.pop("self")
    return _plain(seen)


def test_builders_give_torchvisions_arguments(tv, tvv, monkeypatch):
    for name in _BUILDERS:
        ours = _builder_arguments(V, name, monkeypatch)
        assert ours == _builder_arguments(tvv, name, monkeypatch), name


@pytest.mark.parametrize("module", ["resnet", "s3d", "mvit", "swin_transformer"])
def test_modules_have_torchvisions_names_and_signatures(tv, module):
    ref = importlib.import_module(f"torchvision.models.video.{module}")
    ours = importlib.import_module(f"manygrad.vision.models.video.{module}")
    assert sorted(ours.__all__) == sorted(ref.__all__)

    def params(fn):
        return [
            (p.name, p.kind, _plain(p.default) if p.default is not p.empty else "-")
            for p in inspect.signature(fn).parameters.values()
        ]

    for name, obj in vars(ref).items():
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == ref.__name__:
            assert hasattr(ours, name), f"{module}.{name}"
            assert params(getattr(ours, name)) == params(obj), f"{module}.{name}"


def test_weights_match_torchvision(tv):
    for name in _BUILDERS:
        ours, ref = M.get_model_weights(name), tv.models.get_model_weights(name)
        assert ours.__name__ == ref.__name__
        assert [w.name for w in ours] == [
            w.name for w in ref
        ] and ours.DEFAULT.name == ref.DEFAULT.name
        for w in ours:
            r = ref[w.name]
            assert w.url == r.url and repr(w) == repr(r)
            assert w.meta == r.meta, (name, w.name)
            assert len(w.meta["categories"]) == 400
            assert w.transforms.keywords == r.transforms.keywords, (name, w.name)
            assert repr(w.transforms()) == repr(r.transforms())
            assert w.transforms().describe() == r.transforms().describe()


@pytest.mark.parametrize("weights", ["R3D_18_Weights.KINETICS400_V1", "MViT_V2_S_Weights.DEFAULT"])
def test_video_classification_preset_matches_torchvision(tv, torch, weights):
    enum, entry = weights.split(".")
    ours = getattr(V, enum)[entry].transforms()
    ref = getattr(tv.models.video, enum)[entry].transforms()
    rng = np.random.default_rng(2)
    clip = rng.integers(0, 256, (2, 3, 3, 140, 180), dtype=np.uint8)  # (N, T, C, H, W)
    want = ref(torch.tensor(clip)).numpy()
    got = ours(mg.tensor(clip)).numpy()
    assert got.shape == want.shape and got.shape[:3] == (2, 3, 3)  # (N, C, T, h, w)
    # PyTorch resizes uint8 with fixed-point weights: one level apart at most
    np.testing.assert_allclose(got, want, atol=1.01 / 255 / 0.2)
    single = rng.random((2, 3, 150, 130)).astype(np.float32)  # (T, C, H, W)
    np.testing.assert_allclose(
        ours(mg.tensor(single)).numpy(), ref(torch.tensor(single)).numpy(), atol=1e-4
    )
    with pytest.raises(ValueError, match="T, C, H, W"):
        ours(mg.zeros(3, 8, 8))


# ---------------------------------------------------------------- video ResNets


def test_mc3_18_eval_matches_torchvision(tv, torch):
    # the whole of one builder (3x3x3 and 1x3x3 stages); the (2+1)-d convolutions, the
    # R(2+1)D stem and Bottlenecks train below
    # NOTE: r3d_18 and r2plus1d_18 take ~5 s each here: manygrad's conv2d (under conv3d)
    # on small maps with 256-1536 channels runs ~10x PyTorch's
    ref, ours = _pair(
        torch, lambda: tv.models.video.mc3_18(num_classes=5), lambda: V.mc3_18(num_classes=5),
        ref_on_meta=True,
    )  # fmt: skip
    _check_eval(torch, ref, ours, _x((2, 3, 2, 32, 32)))


def test_video_resnet_blocks_train_like_torchvision(tvv, torch):
    # the R(2+1)D stem, a strided BasicBlock of 1x3x3 convolutions, a strided Bottleneck of
    # (2+1)-d ones, a BasicBlock of 3x3x3 ones (their widths need not be the builders')
    def build(lib, nn):
        def down(cin, cout, stride):
            return nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False),
                                 nn.BatchNorm3d(cout))  # fmt: skip

        return nn.Sequential(
            lib.R2Plus1dStem(),
            lib.BasicBlock(64, 16, lib.Conv3DNoTemporal, 2, down(64, 16, (1, 2, 2))),
            lib.Bottleneck(16, 8, lib.Conv2Plus1D, 2, down(16, 32, 2)),
            lib.BasicBlock(32, 32, lib.Conv3DSimple),
        )

    ref, ours = _pair(torch, lambda: build(_tv_video("resnet"), torch.nn),
                      lambda: build(V.resnet, mg.nn))  # fmt: skip
    _check_train(torch, ref, ours, _x((2, 3, 2, 16, 16)))
    with mg.device("meta"):
        R = V.resnet
        model = R.VideoResNet(R.Bottleneck, [R.Conv3DSimple] * 4, [1, 1, 1, 1], R.BasicStem,
                              zero_init_residual=True)  # fmt: skip
    assert model.layer1[0].conv3[1].weight.device.type == "meta"  # zero_init ran on Bottleneck


# ---------------------------------------------------------------- S3D


def test_s3d_matches_torchvision(tv, tvv, torch):
    ref, ours = _pair(torch, lambda: tvv.s3d(num_classes=5, dropout=0.0),
                      lambda: V.s3d(num_classes=5, dropout=0.0), ref_on_meta=True)  # fmt: skip
    ref.eval()
    ours.eval()
    # the trunk on a tiny clip; the pool and classifier on a map of the size they take
    x = _x((1, 3, 8, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = ref.features(torch.tensor(x))
    with mg.no_grad():
        got = ours.features(mg.tensor(x))
    _close(got, want, 1e-4, "features")
    feats = _x((2, 1024, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        want = ref.classifier(ref.avgpool(torch.tensor(feats))).mean(dim=(2, 3, 4))
    with mg.no_grad():
        got = ours.classifier(ours.avgpool(mg.tensor(feats))).mean(dim=(2, 3, 4))
    _close(got, want, 1e-4, "head")
    with pytest.raises(ValueError, match="14 frames of 224 x 224"), mg.no_grad():
        ours(mg.tensor(x))


def test_s3d_blocks_train_like_torchvision(tv, tvv, torch):
    norm = {"eps": 0.001, "momentum": 0.001}

    def build(lib, nn):
        bn = functools.partial(nn.BatchNorm3d, **norm)
        return nn.Sequential(
            lib.TemporalSeparableConv(3, 8, 3, 2, 1, bn),
            lib.SepInceptionBlock3D(8, 4, 4, 6, 2, 4, 4, bn),
        )

    ref, ours = _pair(
        torch,
        lambda: build(_tv_video("s3d"), torch.nn),
        lambda: build(importlib.import_module("manygrad.vision.models.video.s3d"), mg.nn),
    )
    _check_train(torch, ref, ours, _x((2, 3, 4, 12, 12)))


# ---------------------------------------------------------------- MViT


def _small_mvit(lib, v2: bool):
    cfg = lib.mvit.MSBlockConfig
    if v2:  # relative positions, pooled-query residuals, widening in the attention
        blocks = [cfg(2, 8, 8, [3, 3, 3], [3, 3, 3], [1, 1, 1], [1, 2, 2]),
                  cfg(2, 8, 16, [3, 3, 3], [3, 3, 3], [1, 2, 2], [1, 2, 2]),
                  cfg(2, 16, 16, [3, 3, 3], [3, 3, 3], [1, 1, 1], [1, 1, 1])]  # fmt: skip
        kw = dict(residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True,
                  proj_after_attn=True)  # fmt: skip
    else:  # absolute positions, unpooled queries in some blocks, widening in the MLP
        blocks = [cfg(1, 8, 16, [], [3, 3, 3], [], [1, 2, 2]),
                  cfg(2, 16, 16, [3, 3, 3], [3, 3, 3], [1, 2, 2], [1, 2, 2]),
                  cfg(2, 16, 16, [], [3, 3, 3], [], [1, 1, 1])]  # fmt: skip
        kw = dict(residual_pool=False, residual_with_cls_embed=True, rel_pos_embed=False,
                  proj_after_attn=False)  # fmt: skip
    return lib.MViT(spatial_size=(32, 32), temporal_size=4, block_setting=blocks, dropout=0.0,
                    num_classes=3, **kw)  # fmt: skip


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_mvit_eval_and_train_match_torchvision(tvv, torch, v2):
    ref, ours = _pair(torch, lambda: _small_mvit(tvv, v2), lambda: _small_mvit(V, v2))
    _check_eval(torch, ref, ours, _x((2, 3, 4, 32, 32)))
    _check_train(torch, ref, ours, _x((2, 3, 4, 32, 32)))
    with pytest.raises(ValueError, match="spatial_size and temporal_size"):
        ours(mg.zeros(1, 3, 4, 48, 48, dtype=mg.float64))


def test_mvit_relative_positions_resample_like_torchvision(tvv, torch):
    # query and key grids of different sizes, tables of other lengths: interpolated rows
    rng = np.random.default_rng(4)
    q = rng.standard_normal((2, 2, 1 + 2 * 4 * 4, 5))
    attn = rng.standard_normal((2, 2, 1 + 2 * 4 * 4, 1 + 1 * 2 * 2))
    tables = [rng.standard_normal((n, 5)) for n in (9, 5, 2)]
    want = tvv.mvit._add_rel_pos(torch.tensor(attn), torch.tensor(q), (2, 4, 4), (1, 2, 2),
                                 *[torch.tensor(t) for t in tables])  # fmt: skip
    got = V.mvit._add_rel_pos(mg.tensor(attn), mg.tensor(q), (2, 4, 4), (1, 2, 2),
                              *[mg.tensor(t) for t in tables])  # fmt: skip
    _close(got, want, 1e-10)


# ---------------------------------------------------------------- Video Swin


def _small_swin3d(lib, **kw):
    return lib.SwinTransformer3d([2, 4, 4], 8, [2, 2], [2, 4], [2, 3, 3], num_classes=3,
                                 stochastic_depth_prob=0.0, **kw)  # fmt: skip


def test_swin3d_eval_and_train_match_torchvision(tvv, torch):
    # 3 frames of 28 x 36: patches pad to 2 x 7 x 9, the windows pad and shift in H and
    # W and shrink to the clip in T; merging pads the odd sides
    ref, ours = _pair(torch, lambda: _small_swin3d(tvv.swin_transformer),
                      lambda: _small_swin3d(V.swin_transformer))  # fmt: skip
    _check_eval(torch, ref, ours, _x((2, 3, 3, 28, 36)))
    _check_train(torch, ref, ours, _x((2, 3, 3, 28, 36)))


def test_swin3d_shifted_window_attention_matches_torchvision(tvv, torch):
    # shifts in all three axes: the 27 regions of the mask
    ref, ours = _pair(
        torch, lambda: tvv.swin_transformer.ShiftedWindowAttention3d(8, [2, 2, 2], [1, 1, 1], 2),
        lambda: V.swin_transformer.ShiftedWindowAttention3d(8, [2, 2, 2], [1, 1, 1], 2),
    )  # fmt: skip
    _check_train(torch, ref, ours, _x((2, 4, 5, 4, 8)))


def test_video_models_run_on_a_gpu_device():
    # the masks, position indices and rolls follow the model's device (fakegpu: CuPy's
    # rules, no silent host copies)
    cfg = V.mvit.MSBlockConfig(2, 8, 8, [3, 3, 3], [3, 3, 3], [1, 2, 2], [1, 2, 2])
    models = [
        _small_swin3d(V.swin_transformer),
        V.MViT((32, 32), 2, [cfg], True, False, True, True, dropout=0.0, num_classes=3),
    ]
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 32, 32)).astype(np.float32)
    for model in models:
        with mg.no_grad():
            want = model.eval()(mg.tensor(x)).numpy()
            got = model.to("fakegpu")(mg.tensor(x, device="fakegpu")).cpu().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
        model.train()(mg.tensor(x, device="fakegpu")).square().sum().backward()
        assert all(p.grad is not None and p.grad.device.type == "fakegpu"
                   for p in model.parameters())  # fmt: skip


# ---------------------------------------------------------------- weights


def test_weights_fix_the_classes_and_load(torch, monkeypatch):
    # a checkpoint (here: another model's state dict) through weights=, built on meta
    with mg.device("meta"):
        src = V.mc3_18()
    src = src.to_empty(device="cpu").eval()
    g = mg.Generator().manual_seed(0)
    sd = {k: (mg.rand(v.shape, generator=g) + 0.5) / (v[0].numel() if v.ndim > 1 else 1)
          if v.is_floating_point() else v.zero_() for k, v in src.state_dict().items()}  # fmt: skip
    src.load_state_dict(sd)
    monkeypatch.setattr(V.MC3_18_Weights, "get_state_dict", lambda self, **kw: sd)
    model = V.mc3_18(weights="DEFAULT").eval()
    x = mg.randn(1, 3, 2, 16, 16)
    with mg.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), src(x).numpy())
    assert model.fc.out_features == 400
    with pytest.raises(ValueError, match="num_classes"):
        V.mc3_18(weights="DEFAULT", num_classes=10)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        V.mc3_18(pretrained=True)
    assert any("`weights=MC3_18_Weights.KINETICS400_V1`" in str(w.message) for w in rec)
    assert re.search("abseiling", V.R3D_18_Weights.DEFAULT.meta["categories"][0])
