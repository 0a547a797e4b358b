"""manygrad.vision.models.optical_flow against torchvision.models.optical_flow: RAFT's
state-dict keys, shapes and module settings (on the meta device), the public names and
signatures, the weights enums and the OpticalFlow preset, the helpers (pixel-coordinate
sampling, the coordinate grid, the learned-mask upsampling) and the correlation pyramid,
and the same flow predictions with torchvision's weights copied in: raft_large and
raft_small in eval mode on small image pairs with few flow updates, and a train step in
float64 (every prediction, every gradient, the batch-norm statistics) of a small RAFT."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

import manygrad as mg
from manygrad.vision import models as M
from manygrad.vision.models import optical_flow as O

R = importlib.import_module("manygrad.vision.models.optical_flow.raft")
U = importlib.import_module("manygrad.vision.models.optical_flow._utils")


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # NOTE: PyTorch's two threads wait on each other on 2 busy cores
    yield torch
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tvr(tv):
    return importlib.import_module("torchvision.models.optical_flow.raft")


def _shapes(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def _randomize(ref, torch) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / p[0].numel()) ** 0.5)
            elif name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _pair(torch, build_ref, build_ours):
    torch.manual_seed(0)
    with torch.device("meta"):
        ref = build_ref()
    ref = ref.to_empty(device="cpu")
    _randomize(ref, torch)
    with mg.device("meta"):
        ours = build_ours()
    ours = ours.to_empty(device="cpu")
    assert _shapes(ours) == _shapes(ref)
    ours.load_state_dict({k: mg.tensor(v.numpy()) for k, v in ref.state_dict().items()})
    return ref, ours


def _close(got, want, rtol: float, what: str = "") -> None:
    want, got = want.detach().numpy(), got.detach().numpy()
    assert got.shape == want.shape, what
    scale = float(np.abs(want).max())
    assert scale > 1e-3, f"{what}: values too small ({scale}) for the check to mean anything"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def _images(shape, seed: int = 0):
    rng = np.random.default_rng(seed)
    img1 = rng.uniform(-1, 1, shape)
    # the second image: the first shifted by a few pixels, plus noise (a flow to find)
    img2 = np.roll(img1, (3, -2), axis=(-2, -1)) + 0.1 * rng.standard_normal(shape)
    return img1, img2


def _check_eval(torch, ref, ours, shape, updates: int, rtol: float = 2e-4) -> None:
    ref.eval()
    ours.eval()
    a, b = (x.astype(np.float32) for x in _images(shape))
    with torch.no_grad():
        want = ref(torch.tensor(a), torch.tensor(b), num_flow_updates=updates)
    with mg.no_grad():
        got = ours(mg.tensor(a), mg.tensor(b), num_flow_updates=updates)
    assert len(got) == len(want) == updates
    for i, (g, w) in enumerate(zip(got, want)):
        _close(g, w, rtol, f"flow prediction {i}")


_ATTRS = (
    "eps", "momentum", "affine", "track_running_stats", "stride", "padding", "kernel_size",
    "groups", "dilation", "inplace", "num_levels", "radius", "out_channels", "output_dim",
    "downsample_factor", "hidden_size", "hidden_state_size", "multiplier",
)  # fmt: skip


def _structure(model) -> list:
    out = []
    for name, m in model.named_modules():
        attrs = {a: getattr(m, a) for a in _ATTRS if hasattr(m, a)}
        out.append((name, type(m).__name__, attrs))
    return out


# ---------------------------------------------------------------- builders, names, weights


@pytest.mark.parametrize("name", ["raft_large", "raft_small"])
def test_builders_have_torchvisions_keys_and_shapes(tv, torch, name):
    with torch.device("meta"):
        ref = tv.models.get_model(name)
    with mg.device("meta"):
        ours = M.get_model(name)
    assert _shapes(ours) == _shapes(ref)
    assert _structure(ours) == _structure(ref)
    assert (ours.mask_predictor is None) == (ref.mask_predictor is None)
    assert getattr(ours.update_block.recurrent_block.convgru2, "__name__", "module") == getattr(
        ref.update_block.recurrent_block.convgru2, "__name__", "module"
    )


def test_registry_and_weights_match_torchvision(tv, torch):
    assert M.list_models(module=O) == ["raft_large", "raft_small"]
    assert tv.models.list_models(module=tv.models.optical_flow) == ["raft_large", "raft_small"]
    assert M.get_weight("Raft_Large_Weights.C_T_SKHT_V2") is O.Raft_Large_Weights.DEFAULT
    for name in ("raft_large", "raft_small"):
        ours, ref = M.get_model_weights(name), tv.models.get_model_weights(name)
        assert ours.__name__ == ref.__name__ and ours.DEFAULT.name == ref.DEFAULT.name
        assert [w.name for w in ours] == [w.name for w in ref]
        for w in ours:
            r = ref[w.name]
            assert w.url == r.url and repr(w) == repr(r)
            strip = lambda meta: {k: v for k, v in meta.items() if k != "_docs"}  # noqa: E731
            assert strip(w.meta) == strip(r.meta), (name, w.name)
            assert w.meta["_docs"]
    preset = O.Raft_Large_Weights.DEFAULT.transforms()
    ref_preset = tv.models.optical_flow.Raft_Large_Weights.DEFAULT.transforms()
    assert repr(preset) == repr(ref_preset) and preset.describe() == ref_preset.describe()
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (2, 3, 16, 24), dtype=np.uint8)
    got = preset(mg.tensor(u8[0]), mg.tensor(u8[1]))
    want = ref_preset(torch.tensor(u8[0]), torch.tensor(u8[1]))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), atol=1e-6)
        assert g.dtype == mg.float32


@pytest.mark.parametrize("module", ["raft", "_utils"])
def test_modules_have_torchvisions_names_and_signatures(tv, module):
    ref = importlib.import_module(f"torchvision.models.optical_flow.{module}")
    ours = importlib.import_module(f"manygrad.vision.models.optical_flow.{module}")
    if module == "raft":
        assert sorted(ours.__all__) == sorted(ref.__all__)

    def params(fn):
        return [
            (p.name, p.kind, repr(p.default) if p.default is not p.empty else "-")
            for p in inspect.signature(fn).parameters.values()
        ]

    for name, obj in vars(ref).items():
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == ref.__name__:
            assert hasattr(ours, name), f"{module}.{name}"
            got, want = params(getattr(ours, name)), params(obj)
            # defaults that are classes: by name (nn.BatchNorm2d, ResidualBlock)
            assert [p[:2] for p in got] == [p[:2] for p in want], f"{module}.{name}"
            for (_, _, d1), (_, _, d2) in zip(got, want):
                if "class" not in d2:
                    assert d1 == d2, f"{module}.{name}"


# ---------------------------------------------------------------- helpers, correlation


def test_helpers_match_torchvision(tv, torch):
    tvu = importlib.import_module("torchvision.models.optical_flow._utils")
    rng = np.random.default_rng(2)
    img = rng.standard_normal((3, 4, 5, 7))
    grid = rng.uniform(-1.5, 7.5, (3, 6, 2, 2))
    want = tvu.grid_sample(torch.tensor(img), torch.tensor(grid), align_corners=True)
    _close(U.grid_sample(mg.tensor(img), mg.tensor(grid), align_corners=True), want, 1e-12)
    row = rng.standard_normal((3, 4, 1, 7))  # one row: y stays as given
    want = tvu.grid_sample(torch.tensor(row), torch.tensor(grid), align_corners=True)
    _close(U.grid_sample(mg.tensor(row), mg.tensor(grid), align_corners=True), want, 1e-12)
    coords = U.make_coords_grid(2, 3, 5)
    np.testing.assert_array_equal(coords.numpy(), tvu.make_coords_grid(2, 3, 5).numpy())
    assert coords.dtype == mg.float32
    flow = rng.standard_normal((2, 2, 3, 4))
    mask = rng.standard_normal((2, 9 * 64, 3, 4))
    for m in (None, mask):
        want = tvu.upsample_flow(torch.tensor(flow), None if m is None else torch.tensor(m))
        got = U.upsample_flow(mg.tensor(flow), None if m is None else mg.tensor(m))
        _close(got, want, 1e-12, "with mask" if m is not None else "bilinear")


def test_correlation_pyramid_matches_torchvision(tvr, torch):
    rng = np.random.default_rng(3)
    fmap1, fmap2 = rng.standard_normal((2, 2, 12, 8, 16))
    # matches near and beyond the border (zero padding), at every level
    coords = rng.uniform(-3, 18, (2, 2, 8, 16))
    ref, ours = tvr.CorrBlock(num_levels=3, radius=2), R.CorrBlock(num_levels=3, radius=2)
    ref.build_pyramid(torch.tensor(fmap1), torch.tensor(fmap2))
    ours.build_pyramid(mg.tensor(fmap1), mg.tensor(fmap2))
    assert len(ours.corr_pyramid) == 3
    for g, w in zip(ours.corr_pyramid, ref.corr_pyramid):
        _close(g, w, 1e-12, "pyramid")
    want = ref.index_pyramid(torch.tensor(coords))
    got = ours.index_pyramid(mg.tensor(coords))
    assert tuple(got.shape) == (2, ours.out_channels, 8, 16) == tuple(want.shape)
    _close(got, want, 1e-12, "correlation features")
    with pytest.raises(ValueError, match="at least 8"):
        ours.build_pyramid(mg.zeros(1, 4, 4, 8), mg.zeros(1, 4, 4, 8))
    with pytest.raises(ValueError, match="same shape"):
        ours.build_pyramid(mg.zeros(1, 4, 8, 8), mg.zeros(1, 4, 8, 16))


# ---------------------------------------------------------------- whole models


def test_raft_large_eval_matches_torchvision(tv, torch):
    # a 3-level pyramid: 64 x 64 images (the 4-level default needs 128 x 128)
    ref, ours = _pair(
        torch,
        lambda: tv.models.optical_flow.raft_large(
            corr_block=tv.models.optical_flow.raft.CorrBlock(num_levels=3)
        ),
        lambda: O.raft_large(corr_block=R.CorrBlock(num_levels=3)),
    )
    _check_eval(torch, ref, ours, (2, 3, 64, 64), updates=2)


def test_raft_small_eval_matches_torchvision(tv, torch):
    ref, ours = _pair(torch, tv.models.optical_flow.raft_small, O.raft_small)
    _check_eval(torch, ref, ours, (1, 3, 128, 128), updates=3)


def _small_raft(lib, nn):
    """A small RAFT from the parts: residual feature encoder with instance norm, bottleneck
    context encoder with batch norm, a 3-level pyramid, two GRUs, the learned mask."""
    corr = lib.CorrBlock(num_levels=3, radius=2)
    motion = lib.MotionEncoder(in_channels_corr=corr.out_channels, corr_layers=(12, 8),
                               flow_layers=(8, 6), out_channels=12)  # fmt: skip
    recurrent = lib.RecurrentBlock(input_size=12 + 8, hidden_size=12)
    return lib.RAFT(
        feature_encoder=lib.FeatureEncoder(layers=(8, 8, 12, 12, 16), norm_layer=nn.InstanceNorm2d),
        context_encoder=lib.FeatureEncoder(block=lib.BottleneckBlock, layers=(8, 8, 12, 16, 20),
                                           norm_layer=nn.BatchNorm2d),
        corr_block=corr,
        update_block=lib.UpdateBlock(motion_encoder=motion, recurrent_block=recurrent,
                                     flow_head=lib.FlowHead(in_channels=12, hidden_size=8)),
        mask_predictor=lib.MaskPredictor(in_channels=12, hidden_size=8),
    )  # fmt: skip


def test_raft_train_step_matches_torchvision(tvr, torch, monkeypatch):
    # NOTE: torchvision builds its pixel grid in float32 whatever the model's dtype (it
    # cannot run in float64 as is); the reference gets a float64 grid for this check
    grid = tvr.make_coords_grid
    monkeypatch.setattr(tvr, "make_coords_grid", lambda *a, **k: grid(*a, **k).double())
    ref, ours = _pair(torch, lambda: _small_raft(tvr, torch.nn), lambda: _small_raft(R, mg.nn))
    ref, ours = ref.double().train(), ours.double().train()
    a, b = _images((2, 3, 64, 64), seed=5)
    want = ref(torch.tensor(a), torch.tensor(b), num_flow_updates=3)
    got = ours(mg.tensor(a), mg.tensor(b), num_flow_updates=3)
    for i, (g, w) in enumerate(zip(got, want)):
        _close(g, w, 1e-9, f"flow prediction {i}")
    # RAFT's sequence loss: later predictions weigh more
    sum(0.8 ** (2 - i) * (w - 1).abs().mean() for i, w in enumerate(want)).backward()
    sum(0.8 ** (2 - i) * (g - 1).abs().mean() for i, g in enumerate(got)).backward()
    ref_params = dict(ref.named_parameters())
    scale = max(float(p.grad.abs().max()) for p in ref.parameters())
    for k, p in ours.named_parameters():
        assert p.grad is not None, k
        np.testing.assert_allclose(p.grad.numpy(), ref_params[k].grad.numpy(), rtol=1e-6,
                                   atol=1e-7 * scale, err_msg=k)  # fmt: skip
    ref_buffers = dict(ref.named_buffers())
    for k, v in ours.named_buffers():
        np.testing.assert_allclose(v.numpy(), ref_buffers[k].numpy(), rtol=1e-9, err_msg=k)


def test_raft_checks_its_inputs():
    with mg.device("meta"):
        model = O.raft_small()
    with pytest.raises(ValueError, match="divisible by 8"):
        model(mg.zeros(1, 3, 60, 64, device="meta"), mg.zeros(1, 3, 60, 64, device="meta"))
    with pytest.raises(ValueError, match="same shape"):
        model(mg.zeros(1, 3, 64, 64, device="meta"), mg.zeros(1, 3, 64, 72, device="meta"))
    with pytest.raises(ValueError, match="hidden_state_size"):
        R.RAFT(feature_encoder=None, context_encoder=None, corr_block=None,
               update_block=mg.nn.Identity())  # fmt: skip


def test_raft_runs_on_a_gpu_device():
    # the pixel grids, offsets and masks follow the images' device (fakegpu: CuPy's rules)
    model = _small_raft(R, mg.nn).eval()
    a, b = (mg.tensor(x.astype(np.float32)) for x in _images((1, 3, 64, 64)))
    with mg.no_grad():
        want = model(a, b, num_flow_updates=2)[-1].numpy()
        got = model.to("fakegpu")(a.to("fakegpu"), b.to("fakegpu"), num_flow_updates=2)
    np.testing.assert_allclose(got[-1].cpu().numpy(), want, rtol=1e-5, atol=1e-5)
    flows = model.train()(a.to("fakegpu"), b.to("fakegpu"), num_flow_updates=2)
    flows[-1].square().mean().backward()
    assert all(p.grad is not None and p.grad.device.type == "fakegpu"
               for p in model.parameters())  # fmt: skip


def test_weights_load(monkeypatch):
    with mg.device("meta"):
        src = O.raft_small()
    src = src.to_empty(device="cpu")
    g = mg.Generator().manual_seed(0)
    sd = {k: (mg.rand(v.shape, generator=g) - 0.5) / (v[0].numel() if v.ndim > 1 else 1)
          for k, v in src.state_dict().items()}  # fmt: skip
    src.load_state_dict(sd)
    monkeypatch.setattr(O.Raft_Small_Weights, "get_state_dict", lambda self, **kw: sd)
    model = O.raft_small(weights="DEFAULT")
    a, b = mg.rand(1, 3, 128, 128), mg.rand(1, 3, 128, 128)
    with mg.no_grad():
        np.testing.assert_array_equal(
            model(a, b, num_flow_updates=1)[0].numpy(), src(a, b, num_flow_updates=1)[0].numpy()
        )
