"""Quantization-aware training with conv / linear + batch norm folded (``fuse_modules_qat``,
``nni.ConvBn*d``, ``nniqat.ConvBn*d`` / ``ConvBnReLU*d`` / ``LinearBn1d``), fixed-qparams
fake quantization, and their conversion, compared with PyTorch on the same weights."""

import numpy as np
import pytest
import torch

import manygrad as mg
import manygrad.ao.nn.intrinsic as mnni
import manygrad.ao.nn.intrinsic.qat as mnniqat
import manygrad.ao.nn.qat as mnnqat
import manygrad.ao.quantization as mq

tq = torch.ao.quantization
tnniqat = torch.ao.nn.intrinsic.qat
pytestmark = pytest.mark.filterwarnings("ignore")


def _np(t):
    t = t.dequantize() if getattr(t, "is_quantized", False) else t
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.detach().cpu().numpy()


def _copy_weights(src, dst):
    dst.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in src.state_dict().items()})


# ------------------------------------------------------------------ fusion: types and errors
CASES = [
    ("Conv1d", "BatchNorm1d", None, (2, 3, 9)),
    ("Conv2d", "BatchNorm2d", None, (2, 3, 7, 7)),
    ("Conv3d", "BatchNorm3d", None, (2, 3, 4, 5, 5)),
    ("Conv1d", "BatchNorm1d", "ReLU", (2, 3, 9)),
    ("Conv2d", "BatchNorm2d", "ReLU", (2, 3, 7, 7)),
    ("Conv3d", "BatchNorm3d", "ReLU", (2, 3, 4, 5, 5)),
    ("Linear", "BatchNorm1d", None, (6, 3)),
]


def _seq(lib, conv, bn, relu, seed=0):
    torch.manual_seed(seed)
    first = (
        getattr(torch.nn, conv)(3, 5)
        if conv == "Linear"
        else getattr(torch.nn, conv)(3, 5, 3, padding=1)
    )
    mods = [first, getattr(torch.nn, bn)(5)] + ([torch.nn.ReLU()] if relu else [])
    t = torch.nn.Sequential(*mods)
    with torch.no_grad():  # non-trivial batch-norm state
        t[1].weight.uniform_(0.5, 1.5)
        t[1].bias.uniform_(-0.5, 0.5)
        t[1].running_mean.uniform_(-0.2, 0.2)
        t[1].running_var.uniform_(0.5, 2.0)
    if lib is torch:
        return t
    m = mg.nn.Sequential(*[getattr(mg.nn, type(x).__name__)(*a) for x, a in zip(
        mods, [(3, 5) if conv == "Linear" else (3, 5, 3), (5,), ()])])  # fmt: skip
    if conv != "Linear":
        m[0] = getattr(mg.nn, conv)(3, 5, 3, padding=1)
    _copy_weights(t, m)
    return m


@pytest.mark.parametrize("conv,bn,relu,shape", CASES)
@pytest.mark.parametrize("train", [True, False])
def test_fuse_modules_qat_types_match(conv, bn, relu, shape, train):
    names = ["0", "1"] + (["2"] if relu else [])
    out = []
    for lib, q in ((torch, tq), (mg, mq)):
        s = _seq(lib, conv, bn, relu).train(train)
        f = q.fuse_modules_qat(s, names)
        out.append([type(m).__name__ for m in f])
        assert [type(m).__name__ for m in s] == [
            type(m).__name__ for m in _seq(lib, conv, bn, relu)
        ]
    assert out[0] == out[1]


def test_fuse_modules_errors_match():
    def errs(lib, q):
        nn = lib.nn
        res = []
        for make, names, qat in (
            (lambda: nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)), ["0", "1"], False),
            (lambda: nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(3)), ["0", "1"], True),
            (lambda: nn.Sequential(nn.Linear(1, 1), nn.Sigmoid()), ["0", "1"], False),
            (lambda: nn.Sequential(nn.ConvTranspose2d(2, 2, 1), nn.BatchNorm2d(2)), ["0", "1"], True),
        ):  # fmt: skip
            try:
                (q.fuse_modules_qat if qat else q.fuse_modules)(make(), names)
                res.append(None)
            except Exception as e:  # noqa: BLE001 - the types are compared
                res.append(type(e).__name__)
        s = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)).eval()
        s[1].train()
        try:
            q.fuse_modules(s, ["0", "1"])
        except Exception as e:  # noqa: BLE001
            res.append(type(e).__name__)
        return res

    t, m = errs(torch, tq), errs(mg, mq)
    assert None not in t
    # NOTE: PyTorch raises a bare Exception for ConvTranspose + BN in QAT; manygrad a
    # NotImplementedError (an Exception too)
    assert t[3] == "Exception" and m[3] == "NotImplementedError"
    assert t[:3] + t[4:] == m[:3] + m[4:]
    with pytest.raises(AssertionError, match="eval"):
        mq.fuse_modules(mg.nn.Sequential(mg.nn.Conv2d(1, 2, 1), mg.nn.BatchNorm2d(2)), ["0", "1"])
    with pytest.raises(AssertionError, match="did not find fuser method.*Sigmoid"):
        mq.fuse_modules(mg.nn.Sequential(mg.nn.Linear(1, 1), mg.nn.Sigmoid()), ["0", "1"])
    with pytest.raises(AssertionError, match="Incorrect types"):
        mnni.ConvBn2d(mg.nn.Conv2d(1, 2, 1), mg.nn.BatchNorm1d(2))


def test_fuse_custom_mapping_and_hooks_move():
    calls = []
    s = mg.nn.Sequential(mg.nn.Linear(2, 2), mg.nn.Tanh()).eval()
    s[0].register_forward_pre_hook(lambda m, a: calls.append("pre"))
    s[1].register_forward_hook(lambda m, a, o: calls.append("post"))
    mapping = {(mg.nn.Linear, mg.nn.Tanh): lambda is_qat, a, b: mnni.LinearTanh(a, b)}
    f = mq.fuse_modules(s, ["0", "1"], fuse_custom_config_dict={
        "additional_fuser_method_mapping": mapping})  # fmt: skip
    assert type(f[0]).__name__ == "LinearTanh" and type(f[1]).__name__ == "Identity"
    x = mg.randn(3, 2)
    np.testing.assert_allclose(_np(f(x)), _np(s(x)), rtol=1e-6)
    assert calls == ["pre", "post", "pre", "post"]


# ------------------------------------------------------------- QAT ConvBn modules, trained
@pytest.mark.parametrize("conv,bn,relu,shape", CASES)
def test_qat_bn_folded_training_matches(conv, bn, relu, shape, qnnpack):
    """Three SGD steps of the folded QAT module (fake quantization on), then frozen batch
    norm, then convert: losses, gradients, batch-norm statistics and int8 outputs as
    PyTorch's."""
    names = ["0", "1"] + (["2"] if relu else [])
    rng = np.random.default_rng(3)
    xs = [rng.normal(0, 1, shape).astype(np.float32) for _ in range(4)]
    res = []
    for lib, q in ((torch, tq), (mg, mq)):
        nn = lib.nn
        inner = q.fuse_modules_qat(_seq(lib, conv, bn, relu).train(), names)
        model = nn.Sequential(q.QuantStub(), inner, q.DeQuantStub()).train()
        model.qconfig = q.get_default_qat_qconfig("qnnpack")
        q.prepare_qat(model, inplace=True)
        opt = lib.optim.SGD(model.parameters(), lr=0.05)
        rec = {"types": type(model[1][0]).__name__, "loss": [], "grad": []}
        for i, x in enumerate(xs):
            if i == 3:
                model[1][0].freeze_bn_stats()
                model.train()  # NOTE: a frozen batch norm stays in eval mode
                rec["bn_training"] = model[1][0].bn.training
            y = model(lib.tensor(x))
            loss = (y * y).mean() + y.mean()
            opt.zero_grad()
            loss.backward()
            rec["grad"].append(_np(model[1][0].weight.grad).copy())
            opt.step()
            rec["loss"].append(float(loss))
        qat = model[1][0]
        rec["running"] = (_np(qat.bn.running_mean), _np(qat.bn.running_var))
        model.eval()
        qm = q.convert(model)
        rec["qtype"] = type(qm[1][0]).__name__
        rec["out"] = _np(qm(lib.tensor(xs[0])))
        res.append(rec)
    t, m = res
    assert t["types"] == m["types"] and t["qtype"] == m["qtype"]
    assert t["bn_training"] is m["bn_training"] is False
    np.testing.assert_allclose(m["loss"], t["loss"], rtol=2e-5, atol=1e-6)
    for a, b in zip(t["grad"], m["grad"]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    for a, b in zip(t["running"], m["running"]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    step = np.abs(np.diff(np.unique(t["out"]))).min()
    assert np.abs(m["out"] - t["out"]).max() <= step * 1.01
    assert np.sum(np.abs(m["out"] - t["out"]) > 1e-6) <= max(1, 0.01 * t["out"].size)


def test_qat_convbn_module_api():
    qc = mq.get_default_qat_qconfig("x86")
    m = mnniqat.ConvBnReLU2d(3, 4, 3, bias=True, qconfig=qc)
    assert m.bias is not None and m.bn.training and not m.freeze_bn
    assert m.freeze_bn_stats() is m and not m.bn.training
    m.train()
    assert not m.bn.training  # frozen
    mg.nn.Sequential(m).apply(mnniqat.update_bn_stats)
    assert m.bn.training and not m.freeze_bn
    f = m.to_float()
    assert type(f).__name__ == "ConvReLU2d"
    m.eval()
    x = mg.randn(2, 3, 6, 6)
    m.weight_fake_quant.disable_fake_quant()
    np.testing.assert_allclose(_np(f.eval()(x)), _np(m(x)), rtol=1e-4, atol=1e-5)
    with pytest.raises(AssertionError, match="qconfig"):
        mnniqat.ConvBn2d(3, 4, 3)
    with pytest.raises(AssertionError, match="ConvBn2d"):
        mnniqat.ConvBn2d.from_float(mg.nn.Conv2d(3, 4, 3))
    lb = mnniqat.LinearBn1d(3, 4, qconfig=qc)
    mg.nn.Sequential(lb).apply(mnniqat.freeze_bn_stats)  # NOTE: as PyTorch's, not LinearBn1d
    assert not lb.freeze_bn


def test_state_dict_keys_match_pytorch():
    def keys(lib, q):
        torch.manual_seed(0)
        s = _seq(lib, "Conv2d", "BatchNorm2d", "ReLU").train()
        model = lib.nn.Sequential(q.QuantStub(), s, lib.nn.Hardsigmoid(), lib.nn.Dropout(),
                                  q.DeQuantStub())  # fmt: skip
        q.fuse_modules_qat(model, ["1.0", "1.1", "1.2"], inplace=True)
        model.qconfig = q.get_default_qat_qconfig("qnnpack")
        q.prepare_qat(model, inplace=True)
        return model, list(model.state_dict())

    (_, tk), (mm, mk) = keys(torch, tq), keys(mg, mq)
    assert tk == mk
    assert any(k.startswith("2.activation_post_process") for k in mk)  # fixed qparams
    assert not any(k.startswith("3.") for k in mk)  # dropout is never observed
    fq = mm[2].activation_post_process
    assert type(fq).__name__ == "FixedQParamsFakeQuantize"
    s, z = fq.calculate_qparams()
    assert float(s) == 1 / 256 and int(z) == 0


def test_fixed_qparams_fake_quant_matches():
    x = np.linspace(-1.5, 1.5, 301).astype(np.float32)
    for name in ("default_fixed_qparams_range_0to1_fake_quant",
                 "default_fixed_qparams_range_neg1to1_fake_quant"):  # fmt: skip
        t = getattr(tq, name)()(torch.tensor(x))
        m = getattr(mq.fake_quantize, name)()(mg.tensor(x))
        np.testing.assert_array_equal(_np(m), _np(t))


def test_backends_quantized_engine_matches():
    import manygrad.backends.quantized as bq

    assert bq.supported_engines == torch.backends.quantized.supported_engines
    old = bq.engine
    try:
        bq.engine = "qnnpack"
        assert mg.backends.quantized.engine == "qnnpack"
        with pytest.raises(RuntimeError, match="not a valid value for quantized engine"):
            bq.engine = "tensorrt"
        assert bq.engine == "qnnpack"
    finally:
        bq.engine = old


# ------------------------------------------------------- fused observer + fake quantization
FUSED = ["default_fused_act_fake_quant", "default_fused_wt_fake_quant",
         "default_fused_per_channel_wt_fake_quant", "fused_wt_fake_quant_range_neg_127_to_127",
         "fused_per_channel_wt_fake_quant_range_neg_127_to_127"]  # fmt: skip


@pytest.mark.parametrize("name", FUSED)
def test_fused_fake_quant_matches_step_by_step(name):
    """Values, straight-through gradients, qparams and running ranges bit-equal to PyTorch's
    fused kernel over steps with the observer and fake quantization switched off and on."""
    rng = np.random.default_rng(5)
    ft, fm = getattr(tq.fake_quantize, name)(), getattr(mq.fake_quantize, name)()
    assert list(ft.state_dict()) == list(fm.state_dict())
    for step in range(6):
        x = (rng.normal(0, 1, (6, 5, 3)) * 10.0 ** rng.uniform(-6, 1)).astype(np.float32)
        if step == 3:
            ft.disable_observer(), fm.disable_observer()
        if step == 4:
            ft.enable_observer(), fm.enable_observer()
            ft.disable_fake_quant(), fm.disable_fake_quant()
        if step == 5:
            ft.enable_fake_quant(), fm.enable_fake_quant()
        xt, xm = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
        yt, ym = ft(xt), fm(xm)
        g = rng.normal(0, 1, x.shape).astype(np.float32)
        yt.backward(torch.tensor(g))
        ym.backward(mg.tensor(g))
        np.testing.assert_array_equal(_np(ym), _np(yt))
        np.testing.assert_array_equal(_np(xm.grad), _np(xt.grad))
        for k in ("scale", "zero_point", "activation_post_process.min_val",
                  "activation_post_process.max_val"):  # fmt: skip
            np.testing.assert_array_equal(_np(fm.state_dict()[k]), _np(ft.state_dict()[k]))
    st, zt = ft.calculate_qparams()
    sm, zm = fm.calculate_qparams()
    np.testing.assert_array_equal(_np(sm), _np(st))
    np.testing.assert_array_equal(_np(zm), _np(zt))


@pytest.mark.parametrize("qmin,qmax,sym", [(0, 255, False), (0, 127, False), (-128, 127, True),
                                           (-127, 127, True), (0, 255, True)])  # fmt: skip
def test_fused_kernel_qparams_on_edge_ranges(qmin, qmax, sym):
    """The kernel's qparams: ranges not holding 0, zero-width, tiny (below the 6.1e-5 scale
    cut-off) and huge ranges, per row, against torch.fused_moving_avg_obs_fake_quant."""
    rng = np.random.default_rng(qmax + sym)
    n = 96
    mn = -np.abs(rng.normal(0, 1, n) * 10.0 ** rng.uniform(-8, 3, n)).astype(np.float32)
    mx = np.abs(rng.normal(0, 1, n) * 10.0 ** rng.uniform(-8, 3, n)).astype(np.float32)
    mn[:10], mx[10:20] = 0, 0
    mn[20:25] = mx[20:25] = 0
    mn[25:35] = np.abs(mn[25:35])
    mx[25:35] = mn[25:35] + 1e-3
    mx[35:45] = -np.abs(mx[35:45])
    mn[35:45] = mx[35:45] - 2.0
    outs = []
    for lib in (torch, mg):
        x = lib.zeros(n, 2)
        rmin, rmax = lib.tensor(mn), lib.tensor(mx)
        sc, zp = lib.ones(n), lib.zeros(n, dtype=lib.int32)
        off, on = lib.tensor([0]), lib.tensor([1])
        lib.fused_moving_avg_obs_fake_quant(x, off, on, rmin, rmax, sc, zp, 0.01, qmin, qmax, 0,
                                            True, sym)  # fmt: skip
        outs.append((_np(sc), _np(zp)))
    np.testing.assert_array_equal(outs[1][0], outs[0][0])
    np.testing.assert_array_equal(outs[1][1], outs[0][1])


def test_default_qat_qconfig_versions_match():
    for backend in ("x86", "fbgemm", "qnnpack", "onednn"):
        for version in (0, 1):
            qt, qm = tq.get_default_qat_qconfig(backend, version), mq.get_default_qat_qconfig(
                backend, version)  # fmt: skip
            for a, b in ((qt.activation(), qm.activation()), (qt.weight(), qm.weight())):
                assert type(a).__name__ == type(b).__name__
                assert (a.quant_min, a.quant_max) == (b.quant_min, b.quant_max)
                assert str(a.qscheme).split(".")[-1] == str(b.qscheme).split(".")[-1]
                assert list(a.state_dict()) == list(b.state_dict())
    with pytest.raises(AssertionError, match="Version number"):
        mq.get_default_qat_qconfig("x86", 2)


def test_qat_embeddings_train_and_convert_like_pytorch():
    """Embedding / EmbeddingBag QAT (float-qparams rows, NoopObserver activations): losses,
    gradients and the converted quantized tables as PyTorch's."""
    rng = np.random.default_rng(8)
    idx = rng.integers(0, 10, (3, 16))
    offsets = np.array([0, 5, 9, 14])
    res = []
    for lib, q in ((torch, tq), (mg, mq)):
        torch.manual_seed(0)
        tmods = (torch.nn.Embedding(10, 6), torch.nn.EmbeddingBag(10, 6, mode="sum"))
        mods = (
            tmods
            if lib is torch
            else (mg.nn.Embedding(10, 6), mg.nn.EmbeddingBag(10, 6, mode="sum"))
        )
        if lib is mg:
            for a, b in zip(tmods, mods):
                _copy_weights(a, b)
        model = lib.nn.ModuleDict({"emb": mods[0], "bag": mods[1]})
        for m in mods:
            m.qconfig = q.default_embedding_qat_qconfig
        q.prepare_qat(model, mapping=q.get_embedding_qat_module_mappings(), inplace=True)
        rec = {"types": [type(m).__name__ for m in model.values()], "loss": [], "grad": []}
        assert all(hasattr(m, "weight_fake_quant") for m in model.values())
        opt = lib.optim.SGD(model.parameters(), lr=0.5)
        for i in range(3):
            e = model["emb"](lib.tensor(idx[i]))
            b = model["bag"](lib.tensor(idx[i]), lib.tensor(offsets))
            loss = (e * e).mean() + b.sum() * 0.1
            opt.zero_grad()
            loss.backward()
            rec["grad"].append(_np(model["emb"].weight.grad).copy())
            opt.step()
            rec["loss"].append(float(loss))
        qm = q.convert(model, mapping=q.get_embedding_static_quant_module_mappings())
        rec["qtypes"] = [m._get_name() for m in qm.values()]
        rec["emb"] = _np(qm["emb"](lib.tensor(idx[0])))
        rec["bag"] = _np(qm["bag"](lib.tensor(idx[1]), lib.tensor(offsets)))
        rec["codes"] = _np(qm["emb"].weight().int_repr())
        res.append(rec)
    t, m = res
    assert t["types"] == ["Embedding", "EmbeddingBag"] == m["types"]
    assert t["qtypes"] == m["qtypes"] == ["QuantizedEmbedding", "QuantizedEmbeddingBag"]
    np.testing.assert_allclose(m["loss"], t["loss"], rtol=1e-5)
    for a, b in zip(t["grad"], m["grad"]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(m["codes"], t["codes"])
    np.testing.assert_allclose(m["emb"], t["emb"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m["bag"], t["bag"], rtol=1e-5, atol=1e-5)
    with pytest.raises(AssertionError, match="per_channel_affine_float_qparams"):
        mnnqat.Embedding(4, 2, qconfig=mq.get_default_qat_qconfig("x86"))


def test_per_channel_qat_checkpoint_loads_and_converts_like_pytorch():
    """A PyTorch QAT state dict with per-channel weight fake quantizers (x86 qconfig) loads
    into a freshly prepared model (scale / zero point / observer ranges resized, as
    PyTorch's loaders do) and converts to PyTorch's outputs."""

    def build(lib, q):
        m = lib.nn.Sequential(q.QuantStub(), lib.nn.Conv2d(3, 4, 3), lib.nn.BatchNorm2d(4),
                              lib.nn.ReLU(), q.DeQuantStub()).train()  # fmt: skip
        q.fuse_modules_qat(m, ["1", "2", "3"], inplace=True)
        m.qconfig = q.get_default_qat_qconfig("x86")
        return q.prepare_qat(m, inplace=True)

    torch.manual_seed(0)
    t = build(torch, tq)
    t(torch.randn(2, 3, 6, 6))
    m = build(mg, mq)
    m.load_state_dict({k: mg.tensor(v.numpy()) for k, v in t.state_dict().items()})
    for k in ("1.weight_fake_quant.scale", "1.weight_fake_quant.activation_post_process.min_val"):
        np.testing.assert_array_equal(_np(m.state_dict()[k]), _np(t.state_dict()[k]))
    x = np.random.default_rng(0).normal(0, 1, (2, 3, 6, 6)).astype(np.float32)
    a = _np(tq.convert(t.eval())(torch.tensor(x)))
    b = _np(mq.convert(m.eval())(mg.tensor(x)))
    np.testing.assert_array_equal(b, a)
