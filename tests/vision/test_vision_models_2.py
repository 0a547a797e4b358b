"""manygrad.vision.models against torchvision.models, for EfficientNet B2-B7 / V2, GoogLeNet,
Inception v3, MNASNet, RegNet, ConvNeXt, ViT, Swin V1/V2 and MaxViT: every builder's
arguments to its model class, the state-dict keys, shapes and module settings of one
builder per model class (on the meta device), every public signature, the weights enums,
and the same outputs with torchvision's weights copied in: eval mode on the smallest
variants at small sizes, train steps (outputs, gradients, batch-norm statistics) in float64
on small configurations of each family."""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad.vision import models as M


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    # NOTE: one thread: on a busy 2-core machine PyTorch's two OpenMP threads wait on each
    # other, and its small float64 convolutions ran 10-50x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def _shapes(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def _state(ref):
    """torchvision's state dict as manygrad tensors, with its ``_metadata`` (module
    versions: MNASNet refuses a state dict without them, as torchvision's does)."""
    sd = ref.state_dict()
    out = type(sd)((k, mg.tensor(v.detach().numpy())) for k, v in sd.items())
    out._metadata = sd._metadata
    return out


def _randomize(ref, torch) -> None:
    """Weights and statistics of order one (torchvision's init gives tiny or zero outputs:
    ViT's zero head, ConvNeXt's 1e-6 layer scale) so that every path shows in the outputs."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = int(np.prod(m.weight.shape[1:]))
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.5 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        for name, p in ref.named_parameters():
            if name.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.5 + 0.5)


def _fill(ref, torch) -> None:
    """Random values for every parameter and batch-norm buffer of a model built on the meta
    device (torchvision's own init of millions of weights costs seconds)."""
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in ref.parameters():
            fan_in = int(np.prod(p.shape[1:])) if p.ndim > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
        for name, b in ref.named_buffers():
            if not name.endswith(("num_batches_tracked", "running_mean", "running_var")):
                raise AssertionError(f"{name}: a computed buffer would be lost on meta")
            b.zero_()  # running statistics: set by _randomize


def _pair(torch, build_ref, build_ours, seed: int = 0, ref_on_meta: bool = False):
    """torchvision's model (seeded, randomized) and manygrad's (built on the meta device,
    no init to pay for) holding the same weights. ``ref_on_meta`` builds torchvision's on
    the meta device too, for models whose only buffers are batch-norm statistics."""
    torch.manual_seed(seed)
    if ref_on_meta:
        with torch.device("meta"):
            ref = build_ref()
        ref = ref.to_empty(device="cpu")
        _fill(ref, torch)
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
    want = want.detach().numpy()
    got = got.detach().numpy()
    assert got.shape == want.shape, what
    scale = float(np.abs(want).max())
    assert scale > 1e-3, f"{what}: values too small ({scale}) for the check to mean anything"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def _check_eval(torch, ref, ours, size: int, rtol: float = 1e-4) -> None:
    ref.eval()
    ours.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.tensor(x))
    with mg.no_grad():
        got = ours(mg.tensor(x))
    _close(got, want, rtol, "eval outputs")


def _check_train(torch, ref, ours, x, params=None, rtol: float = 1e-7) -> None:
    """One train-mode step in float64 on both sides: outputs (a namedtuple's fields too),
    the gradients of the parameters matching the regular expressions ``params`` (default:
    all; the others are frozen, which spares the backward pass through the trunk below
    them), the buffers (batch-norm statistics)."""
    ref = ref.double().train()
    ours = ours.double().train()
    if params is not None:
        for model in (ref, ours):
            for k, p in model.named_parameters():
                p.requires_grad_(any(re.fullmatch(pat, k) for pat in params))
    out_ref = ref(torch.tensor(x))
    out = ours(mg.tensor(x))
    if isinstance(out_ref, tuple):
        assert type(out).__name__ == type(out_ref).__name__ and out._fields == out_ref._fields
        for f in out_ref._fields:
            _close(getattr(out, f), getattr(out_ref, f), rtol, f)
        loss_ref = sum(t.square().sum() for t in out_ref)
        loss = sum(t.square().sum() for t in out)
    else:
        _close(out, out_ref, rtol, "train outputs")
        loss_ref, loss = out_ref.square().sum(), out.square().sum()
    loss_ref.backward()
    loss.backward()
    ref_params = dict(ref.named_parameters())
    grads = {k: (p.grad, ref_params[k].grad) for k, p in ours.named_parameters() if p.requires_grad}
    # NOTE: relative to the largest gradient: some are zero up to rounding (a bias before a
    # batch norm in train mode)
    scale = max(float(r.abs().max()) for _, r in grads.values())
    assert scale > 1e-3, f"gradients too small ({scale}) for the check to mean anything"
    for k, (got, want) in grads.items():
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e3 * rtol,
                                   atol=1e3 * rtol * scale, err_msg=k)  # fmt: skip
    ref_buffers = dict(ref.named_buffers())
    for k, b in ours.named_buffers():
        np.testing.assert_allclose(b.numpy(), ref_buffers[k].numpy(), rtol=1e-7, err_msg=k)


_ATTRS = (
    "p", "mode", "eps", "momentum", "stride", "padding", "kernel_size", "groups", "dilation",
    "ceil_mode", "inplace", "normalized_shape", "output_size", "approximate", "dims",
    "start_dim", "batch_first", "window_size", "shift_size", "num_heads", "partition_type",
    "n_heads", "scale_factor",
)  # fmt: skip


def _structure(model) -> list:
    """Each module's name, class name and settings (dropout and stochastic-depth rates,
    norm eps and momentum, strides, paddings, windows and shifts, ...)."""
    out = []
    for name, m in model.named_modules():
        attrs = {a: getattr(m, a) for a in _ATTRS if hasattr(m, a)}
        attrs = {a: tuple(v) if isinstance(v, list) else v for a, v in attrs.items()}
        out.append((name, type(m).__name__, attrs))
    return out


def _x(shape, seed: int = 1):
    return np.random.default_rng(seed).standard_normal(shape)


# ---------------------------------------------------------------- every builder, on meta

_NEW = (
    [f"efficientnet_b{i}" for i in range(2, 8)]
    + [f"efficientnet_v2_{s}" for s in "sml"]
    + ["googlenet", "inception_v3", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"]
    + [f"regnet_y_{s}" for s in ["400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf"]]
    + ["regnet_y_128gf"]
    + [f"regnet_x_{s}" for s in ["400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf"]]
    + [f"convnext_{s}" for s in ["tiny", "small", "base", "large"]]
    + [f"vit_{s}" for s in ["b_16", "b_32", "l_16", "l_32", "h_14"]]
    + [f"swin_{s}" for s in ["t", "s", "b", "v2_t", "v2_s", "v2_b"]]
    + ["maxvit_t"]
)


def _tv_regnet_on_meta(tv, torch, name: str):
    # NOTE: torchvision's regnet builders compute their widths with tensors, which fails on
    # the meta device: the block parameters come from the CPU, the model from meta
    src = open(tv.models.regnet.__file__).read()
    call = re.search(
        rf"def {name}\(.*?BlockParams\.from_init_params\(\s*([^*]*?),\s*\*\*kwargs", src, re.S
    )
    params = eval(f"dict({call.group(1)})")  # noqa: S307 (torchvision's own literals)
    block_params = tv.models.regnet.BlockParams.from_init_params(**params)
    ours_params = M.regnet.BlockParams.from_init_params(**params)
    assert vars(ours_params) == vars(block_params)
    norm = functools.partial(torch.nn.BatchNorm2d, eps=1e-05, momentum=0.1)
    with torch.device("meta"):
        return tv.models.regnet.RegNet(block_params, norm_layer=norm)


_CLASSES = {
    "efficientnet": "EfficientNet",
    "googlenet": "GoogLeNet",
    "inception": "Inception3",
    "mnasnet": "MNASNet",
    "regnet": "RegNet",
    "convnext": "ConvNeXt",
    "vit": "VisionTransformer",
    "swin": "SwinTransformer",
    "maxvit": "MaxVit",
}


class _BuiltError(Exception):
    pass


def _plain(v):
    """A builder argument in comparable form: classes and functions by name, partials,
    configs (MBConvConfig, BlockParams, ...) by their fields."""
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
    """The arguments that ``models.get_model(name)`` gives its model class (caught before
    anything is built)."""
    import inspect

    family = next(k for k in _CLASSES if name.startswith(k))
    cls = getattr(models, _CLASSES[family])
    seen = {}
    signature = inspect.signature(cls.__init__)

    def init(self, *args, **kwargs):
        seen.update(signature.bind(self, *args, **kwargs).arguments)
        raise _BuiltError

    monkeypatch.setattr(cls, "__init__", init)
    with warnings.catch_warnings(), pytest.raises(_BuiltError):
        warnings.simplefilter("ignore", FutureWarning)
        models.get_model(name)
    monkeypatch.undo()
    seen.pop("self")
    return _plain(seen)


@pytest.mark.parametrize("family", list(_CLASSES))
def test_builders_give_torchvisions_arguments(tv, family, monkeypatch):
    # every builder of the family: the stage tables, widths, depths, norm layers, dropout,
    # stochastic depth, image sizes (the classes' structure is checked below and by the
    # outputs)
    names = [n for n in _NEW if n.startswith(family)]
    assert names
    for name in names:
        ours = _builder_arguments(M, name, monkeypatch)
        assert ours == _builder_arguments(tv.models, name, monkeypatch), name


# one builder per model class and block type, on the meta device (no memory, no init):
# keys, shapes and every module's settings
_ON_META = [
    "efficientnet_b2",
    "efficientnet_v2_s",
    "googlenet",
    "inception_v3",
    "mnasnet0_75",
    "regnet_y_400mf",
    "regnet_x_800mf",
    "convnext_tiny",
    "vit_b_32",
    "swin_t",
    "swin_v2_t",
    "maxvit_t",
]


@pytest.mark.parametrize("name", _ON_META)
def test_builders_have_torchvisions_keys_and_shapes(tv, torch, name, monkeypatch):
    # NOTE: manygrad's trunc_normal_ computes on meta tensors (tens of ms a call); the init
    # does not change keys or shapes
    monkeypatch.setattr(mg.nn.init, "trunc_normal_", lambda t, *a, **k: t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # GoogLeNet's, Inception's init notice
        if name.startswith("regnet"):
            ref = _tv_regnet_on_meta(tv, torch, name)
        else:
            with torch.device("meta"):
                ref = tv.models.get_model(name)
        with mg.device("meta"):
            ours = M.get_model(name)
    assert _shapes(ours) == _shapes(ref)
    assert _structure(ours) == _structure(ref)


def test_regnet_block_params_match_torchvision(tv):
    rng = np.random.default_rng(0)
    for _ in range(40):
        cfg = dict(
            depth=int(rng.integers(5, 40)),
            w_0=8 * int(rng.integers(1, 60)),
            w_a=round(float(rng.uniform(5, 200)), 2),
            w_m=round(float(rng.uniform(1.5, 3)), 2),
            group_width=int(rng.choice([8, 16, 24, 48, 56])),
            bottleneck_multiplier=float(rng.choice([0.5, 1.0, 2.0])),
        )
        ours = M.regnet.BlockParams.from_init_params(**cfg)
        assert vars(ours) == vars(tv.models.regnet.BlockParams.from_init_params(**cfg)), cfg
    with pytest.raises(ValueError, match="w_0"):
        M.regnet.BlockParams.from_init_params(depth=4, w_0=12, w_a=8.0, w_m=2.0, group_width=8)


# ---------------------------------------------------------------- GoogLeNet, Inception v3


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    return tmp_path


def _save_checkpoint(torch, ref, torch_home, weights) -> None:
    """``ref``'s state dict where ``weights=`` looks for it: the hub cache."""
    torch.save(ref.state_dict(), torch_home / "hub" / "checkpoints" / weights.url.split("/")[-1])


def test_googlenet_eval_and_train_match_torchvision(tv, torch):
    kw = dict(num_classes=7, transform_input=True, dropout=0.0, dropout_aux=0.0, init_weights=True)
    ref, ours = _pair(
        torch, lambda: tv.models.googlenet(**kw), lambda: M.googlenet(**kw), ref_on_meta=True
    )
    _check_eval(torch, ref, ours, size=32)
    params = [r"inception5b\.branch[23]\..*", r"aux[12]\..*", r"fc\..*"]
    _check_train(torch, ref, ours, _x((2, 3, 16, 16)), params=params)


def test_googlenet_pretrained_loading_drops_the_aux_heads(tv, torch, torch_home):
    ref, _ = _pair(
        torch, lambda: tv.models.googlenet(init_weights=False),
        lambda: M.googlenet(init_weights=False), ref_on_meta=True,
    )  # fmt: skip
    _save_checkpoint(torch, ref, torch_home, M.GoogLeNet_Weights.DEFAULT)
    model = M.googlenet(weights="DEFAULT", progress=False)
    assert model.transform_input and not model.aux_logits
    assert model.aux1 is None and "aux1.fc1.weight" not in model.state_dict()
    ref.transform_input = True
    _check_eval(torch, ref, model, size=32)
    with pytest.warns(UserWarning, match="NOT pretrained"):
        with_aux = M.googlenet(weights="DEFAULT", progress=False, aux_logits=True)
    assert with_aux.aux1 is not None
    with pytest.raises(ValueError, match="num_classes"):
        M.googlenet(weights="DEFAULT", num_classes=10)


def test_inception_v3_eval_matches_torchvision(tv, torch):
    kw = dict(num_classes=7, transform_input=True, init_weights=False)
    ref, ours = _pair(
        torch, lambda: tv.models.inception_v3(**kw), lambda: M.inception_v3(**kw),
        ref_on_meta=True,
    )  # fmt: skip
    _check_eval(torch, ref, ours, size=75)  # the smallest input it takes


@pytest.mark.parametrize(
    "block, args, size",
    [
        ("InceptionA", (8, 4), 7),
        ("InceptionB", (8,), 7),
        ("InceptionC", (8, 4), 5),
        ("InceptionD", (8,), 7),
        ("InceptionE", (8,), 3),
        ("InceptionAux", (8, 5), 17),
    ],
)
def test_inception_blocks_train_like_torchvision(tv, torch, block, args, size):
    # the blocks in train mode (the whole net only takes the auxiliary branch from 299 x 299)
    ref, ours = _pair(
        torch, lambda: getattr(tv.models.inception, block)(*args),
        lambda: getattr(M.inception, block)(*args),
    )  # fmt: skip
    _check_train(torch, ref, ours, _x((2, args[0], size, size)))


def test_inception_outputs_in_train_mode(tv):
    with mg.device("meta"):
        model = M.inception.Inception3(init_weights=False)
    logits, aux = mg.zeros(1, 3), mg.ones(1, 3)
    out = model.train().eager_outputs(logits, aux)
    assert type(out).__name__ == "InceptionOutputs" and out._fields == ("logits", "aux_logits")
    assert out.aux_logits is aux and M.inception.InceptionOutputs is M.inception._InceptionOutputs
    assert model.eval().eager_outputs(logits, aux) is logits
    model.aux_logits = False
    assert model.train().eager_outputs(logits, None) is logits


# ---------------------------------------------------------------- EfficientNet, MNASNet, RegNet


def test_efficientnet_v2_blocks_eval_and_train_match(tv, torch):
    # FusedMBConv with and without expansion, MBConv, a last conv of its own width
    def build(lib):
        setting = [
            lib.FusedMBConvConfig(1, 3, 1, 8, 8, 2),
            lib.FusedMBConvConfig(4, 3, 2, 8, 16, 2),
            lib.MBConvConfig(4, 3, 2, 16, 24, 2),
        ]
        norm = functools.partial(lib.nn.BatchNorm2d, eps=1e-3)
        return lib.EfficientNet(setting, 0.0, stochastic_depth_prob=0.0, num_classes=5,
                                norm_layer=norm, last_channel=40)  # fmt: skip

    class Ref:
        nn = torch.nn
        FusedMBConvConfig = tv.models.efficientnet.FusedMBConvConfig
        MBConvConfig = tv.models.efficientnet.MBConvConfig
        EfficientNet = tv.models.efficientnet.EfficientNet

    class Ours:
        nn = mg.nn
        FusedMBConvConfig = M.efficientnet.FusedMBConvConfig
        MBConvConfig = M.efficientnet.MBConvConfig
        EfficientNet = M.efficientnet.EfficientNet

    ref, ours = _pair(torch, lambda: build(Ref), lambda: build(Ours))
    _check_eval(torch, ref, ours, size=32)
    _check_train(torch, ref, ours, _x((2, 3, 32, 32)))


def test_mnasnet_eval_and_train_match_torchvision(tv, torch):
    ref, ours = _pair(
        torch, lambda: tv.models.mnasnet0_5(num_classes=6, dropout=0.0),
        lambda: M.mnasnet0_5(num_classes=6, dropout=0.0), ref_on_meta=True,
    )  # fmt: skip
    _check_eval(torch, ref, ours, size=32)
    _check_train(
        torch, ref, ours, _x((2, 3, 32, 32)), params=[r"layers\.1[0-6]\..*", r"classifier.*"]
    )


def test_mnasnet_version_1_checkpoint_loads_with_the_old_stem(tv, torch, torch_home, monkeypatch):
    # the pretrained 0.5 was saved before the stem scaled with alpha (version 1): loading
    # puts the fixed 32/16-wide stem back, as torchvision's load does
    tvm = tv.models.mnasnet
    old = tvm.MNASNet(0.5, num_classes=6)
    stem = [
        torch.nn.Conv2d(3, 32, 3, padding=1, stride=2, bias=False),
        torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False),
        torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 16, 1, bias=False),
        torch.nn.BatchNorm2d(16),
        tvm._stack(16, tvm._get_depths(0.5)[2], 3, 2, 3, 3, tvm._BN_MOMENTUM),
    ]
    for i, layer in enumerate(stem):
        old.layers[i] = layer
    old._version = 1
    _randomize(old, torch)
    checkpoint = old.state_dict()
    assert checkpoint._metadata[""]["version"] == 1
    ref = tvm.MNASNet(0.5, num_classes=6)
    with pytest.warns(UserWarning, match="previous version"):
        ref.load_state_dict(checkpoint)
    weights = M.MNASNet0_5_Weights.DEFAULT
    torch.save(checkpoint, torch_home / "hub" / "checkpoints" / weights.url.split("/")[-1])
    # a checkpoint of 6 classes under the 1000-class entry: only the head differs
    monkeypatch.setitem(weights.meta, "num_classes", 6)
    with pytest.warns(UserWarning, match="previous version"):
        ours = M.mnasnet0_5(weights="DEFAULT", progress=False)
    assert ours.layers[0].out_channels == 32 and ours._version == 1
    assert _shapes(ours) == _shapes(ref)
    _check_eval(torch, ref, ours, size=32)
    with pytest.raises(ValueError, match="version"):
        M.mnasnet0_5().load_state_dict(dict(ours.state_dict()))  # no _metadata


def test_regnet_eval_and_train_match_torchvision(tv, torch):
    ref, ours = _pair(
        torch, lambda: tv.models.regnet_y_400mf(num_classes=5),
        lambda: M.regnet_y_400mf(num_classes=5),
    )  # fmt: skip
    _check_eval(torch, ref, ours, size=32)

    # a small RegNetY (squeeze-excitation, grouped 3x3, projections), all gradients
    def build(lib):
        params = lib.BlockParams.from_init_params(
            depth=4, w_0=16, w_a=12.0, w_m=2.0, group_width=8, se_ratio=0.25
        )
        return lib.RegNet(params, num_classes=4, stem_width=8)

    ref, ours = _pair(torch, lambda: build(tv.models.regnet), lambda: build(M.regnet))
    _check_train(torch, ref, ours, _x((2, 3, 32, 32)))


# ---------------------------------------------------------------- ConvNeXt


def test_convnext_tiny_eval_matches_torchvision(tv, torch):
    ref, ours = _pair(
        torch, lambda: tv.models.convnext_tiny(num_classes=5),
        lambda: M.convnext_tiny(num_classes=5), ref_on_meta=True,
    )  # fmt: skip
    _check_eval(torch, ref, ours, size=32)


def test_convnext_train_step_matches_torchvision(tv, torch):
    # layer scale of order one (1e-6 hides the blocks), no stochastic depth (random)
    def build(lib):
        cfg = lib.CNBlockConfig
        return lib.ConvNeXt([cfg(8, 16, 2), cfg(16, None, 1)], layer_scale=0.5, num_classes=3)

    ref, ours = _pair(torch, lambda: build(tv.models.convnext), lambda: build(M.convnext))
    _check_eval(torch, ref, ours, size=16)
    _check_train(torch, ref, ours, _x((2, 3, 16, 16)))


# ---------------------------------------------------------------- Vision Transformer


def _small_vit(lib, **kw):
    cfg = dict(image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=16,
               mlp_dim=24, num_classes=5)  # fmt: skip
    cfg.update(kw)
    return lib.VisionTransformer(**cfg)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"representation_size": 12},
        {"conv_stem_configs": "stem"},
    ],
    ids=["patches", "pre_logits", "conv_stem"],
)
def test_vit_eval_and_train_match_torchvision(tv, torch, kw):
    def build(lib, models):
        if kw.get("conv_stem_configs"):
            cfg = models.vision_transformer.ConvStemConfig
            stem = [cfg(8, 3, 2), cfg(8, 3, 2, norm_layer=lib.nn.BatchNorm2d), cfg(16, 3, 4)]
            return _small_vit(models.vision_transformer, conv_stem_configs=stem)
        return _small_vit(models.vision_transformer, **kw)

    ref, ours = _pair(torch, lambda: build(torch, tv.models), lambda: build(mg, M))
    _check_eval(torch, ref, ours, size=32)
    _check_train(torch, ref, ours, _x((2, 3, 32, 32)))


def test_vit_builder_fixes_image_size_from_weights():
    with pytest.raises(ValueError, match="image_size"):
        M.vit_b_16(weights="IMAGENET1K_SWAG_E2E_V1", image_size=224)
    with pytest.raises(ValueError, match="32 x 32"):
        _small_vit(M.vision_transformer)(mg.zeros(1, 3, 48, 48))


def test_vit_interpolate_embeddings_matches_torchvision(tv, torch):
    ref, ours = _pair(
        torch, lambda: _small_vit(tv.models.vision_transformer),
        lambda: _small_vit(M.vision_transformer),
    )  # fmt: skip
    want = tv.models.vision_transformer.interpolate_embeddings(
        64, 16, ref.state_dict(), reset_heads=True
    )
    got = M.vision_transformer.interpolate_embeddings(64, 16, ours.state_dict(), reset_heads=True)
    assert list(got) == list(want)
    pos = got["encoder.pos_embedding"]
    assert tuple(pos.shape) == (1, 17, 16)
    np.testing.assert_allclose(pos.numpy(), want["encoder.pos_embedding"].numpy(), atol=1e-6)
    bigger = _small_vit(M.vision_transformer, image_size=64)
    bigger.load_state_dict(got, strict=False)
    with pytest.raises(ValueError, match="perfect square"):
        M.vision_transformer.interpolate_embeddings(
            64, 16, {"encoder.pos_embedding": mg.zeros(1, 4, 16)}
        )


def test_vit_mlp_block_renames_version_1_keys():
    block = M.vision_transformer.MLPBlock(4, 8, 0.0)
    sd = block.state_dict()
    legacy = {
        k.replace("0.", "linear_1.").replace("3.", "linear_2."): v.clone() for k, v in sd.items()
    }
    fresh = M.vision_transformer.MLPBlock(4, 8, 0.0)
    fresh.load_state_dict(legacy)  # no _metadata: version 1's names
    for k, v in sd.items():
        np.testing.assert_array_equal(fresh.state_dict()[k].numpy(), v.numpy())


# ---------------------------------------------------------------- Swin, MaxViT


@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t"])
def test_swin_eval_matches_torchvision(tv, torch, name):
    ref, ours = _pair(
        torch, lambda: tv.models.get_model(name, num_classes=5),
        lambda: M.get_model(name, num_classes=5),
    )  # fmt: skip
    _check_eval(torch, ref, ours, size=64)


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_swin_train_step_matches_torchvision(tv, torch, v2):
    # 40 x 40 images, 4 x 4 patches: a 10 x 10 map padded to windows of 4 and shifted by 2;
    # then 5 x 5 (odd: patch merging pads)
    def build(lib):
        kw = {"block": lib.SwinTransformerBlockV2, "downsample_layer": lib.PatchMergingV2}
        return lib.SwinTransformer(
            [4, 4], 8, [2, 2], [2, 4], [4, 4], stochastic_depth_prob=0.0, num_classes=3,
            **(kw if v2 else {}),
        )  # fmt: skip

    ref, ours = _pair(
        torch, lambda: build(tv.models.swin_transformer),
        lambda: build(M.swin_transformer),
    )  # fmt: skip
    _check_eval(torch, ref, ours, size=40)
    _check_train(torch, ref, ours, _x((2, 3, 40, 40)))


def test_maxvit_eval_and_train_match_torchvision(tv, torch):
    def build(lib):
        return lib.MaxVit((32, 32), 8, 2, [8, 16], [2, 1], head_dim=4,
                          stochastic_depth_prob=0.0, num_classes=3)  # fmt: skip

    ref, ours = _pair(torch, lambda: build(tv.models.maxvit), lambda: build(M.maxvit))
    _check_eval(torch, ref, ours, size=32)
    _check_train(torch, ref, ours, _x((2, 3, 32, 32)))
    with pytest.raises(ValueError, match="not divisible by partition size"):
        M.maxvit.MaxVit((32, 32), 8, 3, [8, 16], [1, 1], 4, 0.0)


@pytest.mark.parametrize("family", ["swin_v2", "maxvit"])
def test_window_attention_models_run_on_a_gpu_device(family):
    # the masks, position indices and rolls follow the model's device (fakegpu: CuPy's
    # rules, no silent host copies)
    if family == "maxvit":
        model = M.maxvit.MaxVit((32, 32), 8, 2, [8, 16], [2, 1], 4, 0.1, num_classes=3)
    else:
        sw = M.swin_transformer
        model = sw.SwinTransformer([4, 4], 8, [2, 2], [2, 4], [4, 4], num_classes=3,
                                   block=sw.SwinTransformerBlockV2,
                                   downsample_layer=sw.PatchMergingV2)  # fmt: skip
    x = np.random.default_rng(0).standard_normal((2, 3, 40, 40)).astype(np.float32)
    x = x[:, :, :32, :32] if family == "maxvit" else x
    with mg.no_grad():
        want = model.eval()(mg.tensor(x)).numpy()
        got = model.to("fakegpu")(mg.tensor(x, device="fakegpu")).cpu().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
    model.train()(mg.tensor(x, device="fakegpu")).square().sum().backward()
    assert all(p.grad is not None and p.grad.device.type == "fakegpu" for p in model.parameters())


# ---------------------------------------------------------------- weights metadata


def test_new_weights_metadata_matches_torchvision(tv):
    for name in _NEW:
        ours, ref = M.get_model_weights(name), tv.models.get_model_weights(name)
        assert [w.name for w in ours] == [w.name for w in ref], name
        for w in ours:
            r = ref[w.name].meta
            assert w.meta["categories"] == r["categories"] and len(r["categories"]) == 1000
            for key in ("num_params", "min_size", "recipe", "_ops", "_file_size", "license"):
                assert w.meta.get(key) == r.get(key), (name, w.name, key)


def test_every_weights_entry_names_its_categories(tv):
    for name in M.list_models(module=M):  # the classifiers
        for w in M.get_model_weights(name):
            r = tv.models.get_weight(str(w)).meta
            for key in ("categories", "min_size"):
                assert w.meta[key] == r[key], (name, w.name, key)


def test_loading_weights_restores_the_computed_buffers(torch):
    # with weights=, a model is built on the meta device and filled by the checkpoint alone:
    # the position indices and V2's coordinate table must come back from it
    from manygrad.vision.models._api import _build

    sw = M.swin_transformer

    def make():
        return sw.SwinTransformer([4, 4], 8, [2, 2], [2, 4], [4, 4], num_classes=3,
                                  block=sw.SwinTransformerBlockV2,
                                  downsample_layer=sw.PatchMergingV2)  # fmt: skip

    src = make().eval()
    sd = src.state_dict()
    model = _build(make, object(), False, load=lambda m, w, p: m.load_state_dict(sd)).eval()
    x = mg.randn(1, 3, 32, 32)
    with mg.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), src(x).numpy())


@pytest.mark.parametrize(
    "module",
    ["efficientnet", "googlenet", "inception", "mnasnet", "regnet", "convnext",
     "vision_transformer", "swin_transformer", "maxvit"],
)  # fmt: skip
def test_modules_have_torchvisions_names_and_signatures(tv, module):
    import importlib
    import inspect

    ref = importlib.import_module(f"torchvision.models.{module}")
    # NOTE: by import path: models.googlenet is the builder, as in torchvision
    ours = importlib.import_module(f"manygrad.vision.models.{module}")
    assert sorted(ours.__all__) == sorted(ref.__all__)

    def params(fn):
        return [
            (p.name, p.kind, _plain(p.default) if p.default is not p.empty else "-")
            for p in inspect.signature(fn).parameters.values()
        ]

    for name, obj in vars(ref).items():
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == ref.__name__:
            assert hasattr(ours, name), f"{module}.{name}"
            if not (inspect.isclass(obj) and issubclass(obj, tuple)):  # namedtuples
                assert params(getattr(ours, name)) == params(obj), f"{module}.{name}"
