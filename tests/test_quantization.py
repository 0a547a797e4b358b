"""Quantized tensors and eager-mode quantization, compared with PyTorch on the same inputs."""

import copy
import warnings

import numpy as np
import pytest
import torch

import manygrad as mg
import manygrad.ao.quantization as mq
import manygrad.nn as mnn
from manygrad.ao.nn import quantized as mnnq

tq = torch.ao.quantization
pytestmark = pytest.mark.filterwarnings("ignore")
QD = ["qint8", "quint8", "qint32"]


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.detach().cpu().numpy()


def _ties(scale, n=4000, seed=0):
    """Half-way values (k + 0.5) * scale, plus random ones."""
    rng = np.random.default_rng(seed)
    k = rng.integers(-300, 300, n)
    return np.concatenate([(k + 0.5) * scale, rng.normal(0, 10, n)]).astype(np.float32)


def _both(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(torch), fn(mg)


# ----------------------------------------------------------------------------- tensors
@pytest.mark.parametrize("qd", QD)
@pytest.mark.parametrize("scale,zp", [(0.1, 0), (0.0375, -5), (0.3, 7), (1e-3, 10), (0.02, 100)])
def test_quantize_per_tensor_rounding_matches(qd, scale, zp):
    if qd == "quint8" and zp < 0:
        zp = -zp
    x = _ties(scale)
    t, m = _both(lambda lib: lib.quantize_per_tensor(lib.tensor(x), scale, zp, getattr(lib, qd)))
    np.testing.assert_array_equal(_np(m.int_repr()), _np(t.int_repr()))
    np.testing.assert_array_equal(_np(m.dequantize()), _np(t.dequantize()))
    assert m.q_scale() == t.q_scale() and m.q_zero_point() == t.q_zero_point()
    assert str(m.dtype).split(".")[1] == str(t.dtype).split(".")[1] == qd


@pytest.mark.parametrize("qd", QD)
@pytest.mark.parametrize("axis", [0, 1])
def test_quantize_per_channel_matches(qd, axis):
    x = np.random.default_rng(1).normal(0, 2, (5, 801)).astype(np.float32)
    k = np.random.default_rng(2).integers(-100, 100, (5, 400))
    sc = np.array([0.1, 0.0375, 0.02, 0.3, 0.013])
    x[:, :400] = ((k + 0.5) * sc[:, None]).astype(np.float32)
    x = x if axis == 0 else np.ascontiguousarray(x.T)
    zp = np.array([3, 5, 0, 7, 100])
    t, m = _both(lambda lib: lib.quantize_per_channel(lib.tensor(x), lib.tensor(sc), lib.tensor(zp), axis,
                                                  getattr(lib, qd)))  # fmt: skip
    np.testing.assert_array_equal(_np(m.int_repr()), _np(t.int_repr()))
    np.testing.assert_array_equal(_np(m.dequantize()), _np(t.dequantize()))
    np.testing.assert_array_equal(_np(m.q_per_channel_scales()), _np(t.q_per_channel_scales()))
    assert m.q_per_channel_scales().dtype is mg.float64
    assert m.q_per_channel_zero_points().dtype is mg.int64
    assert m.q_per_channel_axis() == t.q_per_channel_axis() == axis
    assert repr(m.qscheme()) == "manygrad.per_channel_affine"


def test_special_values_tensor_qparams_and_lists():
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -0.0], np.float32)
    t, m = _both(lambda lib: lib.quantize_per_tensor(lib.tensor(x), 0.1, 0, lib.qint8))
    np.testing.assert_array_equal(_np(m.int_repr()), _np(t.int_repr()))
    t, m = _both(lambda lib: lib.quantize_per_tensor(lib.tensor([1.0, 2.0]), lib.tensor(0.1),
                                                 lib.tensor(3), lib.quint8))  # fmt: skip
    assert m.q_scale() == t.q_scale() == float(np.float32(0.1))
    t, m = _both(lambda lib: lib.quantize_per_tensor([lib.tensor([1.0]), lib.tensor([2.0])],
                                                 lib.tensor([0.1, 0.2]), lib.tensor([1, 2]), lib.quint8))  # fmt: skip
    assert [q.int_repr().tolist() for q in m] == [q.int_repr().tolist() for q in t]
    assert [q.tolist() for q in mg.dequantize(m)] == [q.tolist() for q in torch.dequantize(t)]
    t, m = _both(lambda lib: lib.quantize_per_tensor(lib.arange(5.0), 1.0, 0, lib.quint4x2))
    assert m.int_repr().tolist() == t.int_repr().tolist()  # two codes a byte


@pytest.mark.parametrize("qd,reduce", [("quint8", True), ("quint8", False), ("qint8", False)])
@pytest.mark.parametrize("data", [[-1.0, 0.5, 2.0], [0.3, 0.7], [-2.0, -1.0], [0.0, 0.0],
                                  [1e-7, 2e-7], [-3e-5, 5e-6]])  # fmt: skip
def test_quantize_per_tensor_dynamic_matches(qd, reduce, data):
    t, m = _both(
        lambda lib: lib.quantize_per_tensor_dynamic(lib.tensor(data), getattr(lib, qd), reduce)
    )
    assert (m.q_scale(), m.q_zero_point()) == (t.q_scale(), t.q_zero_point())
    assert m.int_repr().tolist() == t.int_repr().tolist()


def test_repr_matches_pytorch():
    import manygrad.compat as compat

    x = np.array([[-1.0, 0.05, 0.15], [0.25, 0.35, 1.0]], np.float32)
    cases = [lambda lib: lib.quantize_per_tensor(lib.tensor(x), 0.1, 0, lib.qint8),
             lambda lib: lib.quantize_per_tensor(lib.tensor(2.5), 0.1, 3, lib.quint8),
             lambda lib: lib.quantize_per_tensor(lib.tensor(x), lib.tensor(0.1), 3, lib.quint8),
             lambda lib: lib.quantize_per_channel(lib.tensor(x), lib.tensor([0.1, 0.2]),
                                              lib.tensor([0, 1]), 0, lib.quint8)]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [repr(case(torch)) for case in cases]
    compat.install()  # NOTE: dtypes print as torch.* there
    try:
        assert [repr(case(mg)) for case in cases] == expected
    finally:
        compat.uninstall()


def test_movement_relu_and_views_match():
    x = np.random.default_rng(3).normal(0, 1, (2, 3, 4, 4)).astype(np.float32)
    t, m = _both(lambda lib: lib.quantize_per_tensor(lib.tensor(x), 0.05, 3, lib.quint8))
    ops = [lambda q: q.view(2, -1), lambda q: q.reshape(6, 16), lambda q: q[0, 1:],
           lambda q: q.permute(0, 2, 3, 1), lambda q: q.transpose(1, 2).contiguous(),
           lambda q: q.flatten(1), lambda q: q.clone(), lambda q: q.detach(),
           lambda q: q.relu(), lambda q: q.select(1, 2), lambda q: q.unsqueeze(0).squeeze(0),
           lambda q: q.flip(0), lambda q: q.narrow(2, 1, 2)]  # fmt: skip
    for op in ops:
        a, b = op(t), op(m)
        assert b.is_quantized and b.q_scale() == a.q_scale() and b.q_zero_point() == 3
        np.testing.assert_array_equal(_np(b.int_repr()), _np(a.int_repr()))
    for name, fn in (("relu", "relu"), ("max_pool2d", "max_pool2d")):
        a = getattr(torch.nn.functional, fn)(t, *(() if name == "relu" else (2,)))
        b = getattr(mg.nn.functional, fn)(m, *(() if name == "relu" else (2,)))
        np.testing.assert_array_equal(_np(b.int_repr()), _np(a.int_repr()))
    np.testing.assert_array_equal(
        _np(mg.flatten(m, 1).int_repr()), _np(torch.flatten(t, 1).int_repr())
    )
    assert [u.int_repr().tolist() for u in m[0, 0]] == [u.int_repr().tolist() for u in t[0, 0]]
    assert m.equal(m.clone()) and not m.equal(
        mg.quantize_per_tensor(mg.tensor(x), 0.05, 4, mg.quint8)
    )
    v = m.view(-1)  # a view shares the codes, as in PyTorch
    assert np.shares_memory(v._data, m._data)


def test_refused_ops_and_bad_inputs():
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    t, m = _both(lambda lib: lib.quantize_per_tensor(lib.tensor(x), 0.1, 0, lib.qint8))
    for op in (lambda q: q + 1, lambda q: q * 2, lambda q: q.sum(), lambda q: q.exp(),
               lambda q: q.float(), lambda q: q.to(q.dtype if False else mg.float32),
               lambda q: q.requires_grad_()):  # fmt: skip
        with pytest.raises(RuntimeError):
            op(m)
    with pytest.raises(NotImplementedError, match="dequantize"):
        mg.exp(m)
    with pytest.raises(NotImplementedError, match=r"add: .*dequantize"):
        m + 1
    bad = [(lambda lib: lib.quantize_per_tensor(lib.tensor(x).double(), 0.1, 0, lib.qint8), "Float"),
           (lambda lib: lib.quantize_per_tensor(lib.tensor([1, 2]), 0.1, 0, lib.qint8), "Float"),
           (lambda lib: lib.quantize_per_tensor(lib.tensor(x), 0.1, 0, lib.float32), "quantized dtype"),
           (lambda lib: lib.quantize_per_tensor(lib.tensor(x), 0.1, 300, lib.qint8), "zero_point 300"),
           (lambda lib: lib.quantize_per_tensor(lib.tensor(x), 0.1, -1, lib.quint8), "zero_point -1"),
           (lambda lib: lib.quantize_per_channel(lib.tensor(x.reshape(1, 3)), lib.tensor([0.1]),
                                             lib.tensor([0]), 2, lib.qint8), "axis"),
           (lambda lib: lib.quantize_per_channel(lib.tensor(x.reshape(1, 3)), lib.tensor([0.1, 0.2]),
                                             lib.tensor([0, 0]), 0, lib.qint8), "scales"),
           (lambda lib: lib.tensor(x).q_scale(), "quantize"),
           (lambda lib: lib.tensor(x).int_repr(), "quantize")]  # fmt: skip
    for fn, msg in bad:
        with pytest.raises((RuntimeError, NotImplementedError)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn(torch)
        with pytest.raises((RuntimeError, NotImplementedError, TypeError, ValueError), match=msg):
            fn(mg)
    with pytest.raises(RuntimeError, match="q_per_channel_scales"):
        m.q_per_channel_scales()
    assert mg.tensor(x).dequantize().tolist() == torch.tensor(x).dequantize().tolist()


# ----------------------------------------------------------------------------- observers
def _observer_cases():
    return [
        ("MinMaxObserver", {}), ("MinMaxObserver", {"reduce_range": True}),
        ("MinMaxObserver", {"dtype": "qint8", "qscheme": "per_tensor_symmetric"}),
        ("MinMaxObserver", {"dtype": "quint8", "qscheme": "per_tensor_symmetric"}),
        ("MinMaxObserver", {"quant_min": 0, "quant_max": 127}),
        ("MovingAverageMinMaxObserver", {"averaging_constant": 0.3}),
        ("PerChannelMinMaxObserver", {"ch_axis": 1}),
        ("PerChannelMinMaxObserver", {"dtype": "qint8", "qscheme": "per_channel_symmetric"}),
        ("MovingAveragePerChannelMinMaxObserver", {"averaging_constant": 0.5}),
    ]  # fmt: skip


@pytest.mark.parametrize("name,kw", _observer_cases())
def test_observers_match(name, kw):
    rng = np.random.default_rng(4)
    batches = [rng.normal(0.3 * i, 1 + i, (6, 5)).astype(np.float32) for i in range(3)]

    def run(lib, q):
        k = {a: (getattr(lib, v) if isinstance(v, str) else v) for a, v in kw.items()}
        obs = getattr(q, name)(**k)
        for b in batches:
            assert obs(lib.tensor(b)) is not None
        return obs.calculate_qparams(), (obs.quant_min, obs.quant_max)

    (ts, tz), trange = run(torch, tq)
    (ms, mz), mrange = run(mg, mq)
    assert trange == mrange
    np.testing.assert_array_equal(_np(ms), _np(ts))
    np.testing.assert_array_equal(_np(mz), _np(tz))
    assert str(mz.dtype).split(".")[1] == str(tz.dtype).split(".")[1]


def test_observer_errors_and_defaults():
    with pytest.raises(NotImplementedError, match="PerChannelMinMaxObserver"):
        mq.HistogramObserver(qscheme=mg.per_channel_affine)
    with pytest.raises(NotImplementedError, match="PerChannelMinMaxObserver"):
        mq.MinMaxObserver(qscheme=mg.per_channel_affine)
    with pytest.raises(ValueError, match="include 0"):
        mq.MinMaxObserver(quant_min=1, quant_max=10)
    with pytest.warns(UserWarning, match="must run observer"):
        s, z = mq.MinMaxObserver().calculate_qparams()
    assert s.tolist() == [1.0] and z.tolist() == [0]
    for f in ("default_observer", "default_weight_observer", "default_per_channel_weight_observer"):
        a, b = getattr(tq, f)(), getattr(mq, f)()
        assert (a.quant_min, a.quant_max, a.qscheme.__repr__()[6:]) == (
            b.quant_min, b.quant_max, b.qscheme.__repr__()[9:])  # fmt: skip
    with pytest.raises(ValueError, match="instance"):
        mq.QConfig(activation=mq.MinMaxObserver(), weight=mq.default_weight_observer)


@pytest.mark.parametrize("factory", ["default_fake_quant", "default_weight_fake_quant",
                                     "default_per_channel_weight_fake_quant"])  # fmt: skip
def test_fake_quantize_forward_and_grad(factory):
    rng = np.random.default_rng(5)
    xs = [rng.normal(0, 1 + i, (4, 6)).astype(np.float32) for i in range(3)]
    outs = {}
    for lib, q in ((torch, tq), (mg, mq)):
        fq = getattr(q, factory)()
        for x in xs:
            xt = lib.tensor(x, requires_grad=True)
            y = fq(xt)
        (y * lib.arange(24.0).reshape(4, 6)).sum().backward()
        outs[lib.__name__] = (_np(y), _np(xt.grad), _np(fq.scale), _np(fq.zero_point))
    for a, b in zip(outs["torch"], outs["manygrad"]):
        np.testing.assert_array_equal(b, a)


# ----------------------------------------------------------------------------- modules
def _linear_pair(inf=64, outf=32, seed=6):
    rng = np.random.default_rng(seed)
    w = rng.uniform(-0.3, 0.3, (outf, inf)).astype(np.float32)
    b = rng.uniform(-0.3, 0.3, outf).astype(np.float32)
    out = []
    for lib in (torch, mg):
        lin = lib.nn.Linear(inf, outf)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(w))
            lin.bias.copy_(lib.tensor(b))
        out.append(lin)
    return out


@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_dynamic_linear_matches_exactly(per_channel):
    t, m = _linear_pair()
    tm, mm = torch.nn.Sequential(t, torch.nn.ReLU()), mnn.Sequential(m, mnn.ReLU())
    spec_t = {torch.nn.Linear: tq.per_channel_dynamic_qconfig} if per_channel else {torch.nn.Linear}
    spec_m = {mnn.Linear: mq.per_channel_dynamic_qconfig} if per_channel else {mnn.Linear}
    qt = tq.quantize_dynamic(tm, spec_t, dtype=torch.qint8)
    qm = mq.quantize_dynamic(mm, spec_m, dtype=mg.qint8)
    assert isinstance(qm[0], mnnq.dynamic.Linear) and isinstance(mm[0], mnn.Linear)
    assert repr(qm[0]).replace("manygrad", "torch") == repr(qt[0])
    for i, scale in enumerate((1.0, 5.0, 0.01)):
        x = np.random.default_rng(10 + i).normal(0, scale, (3, 7, 64)).astype(np.float32)
        # NOTE: measured bit-exact: the same codes, accumulators and one fused rounding
        np.testing.assert_array_equal(_np(qm(mg.tensor(x))), _np(qt(torch.tensor(x))))


def _calibrated(lib, q, model, per_channel, data):
    model.eval()
    model.qconfig = q.QConfig(
        activation=q.MinMaxObserver.with_args(reduce_range=True),
        weight=q.default_per_channel_weight_observer if per_channel else q.default_weight_observer,
    )
    q.prepare(model, inplace=True)
    model(lib.tensor(data))
    return q.convert(model)


@pytest.mark.parametrize("per_channel", [False, True])
def test_static_linear_matches(per_channel):
    t, m = _linear_pair(seed=7)
    rng = np.random.default_rng(8)
    calib, x = rng.normal(0, 2, (64, 64)).astype(np.float32), rng.normal(0, 2, (32, 64))
    qt = _calibrated(torch, tq, torch.nn.Sequential(tq.QuantStub(), t, tq.DeQuantStub()),
                     per_channel, calib)  # fmt: skip
    qm = _calibrated(mg, mq, mnn.Sequential(mq.QuantStub(), m, mq.DeQuantStub()),
                     per_channel, calib)  # fmt: skip
    assert (qm[1].scale, qm[1].zero_point) == (qt[1].scale, qt[1].zero_point)
    np.testing.assert_array_equal(_np(qm[1].weight().int_repr()), _np(qt[1].weight().int_repr()))
    xq_t = qt[0](torch.tensor(x.astype(np.float32)))
    xq_m = qm[0](mg.tensor(x.astype(np.float32)))
    np.testing.assert_array_equal(_np(xq_m.int_repr()), _np(xq_t.int_repr()))
    # NOTE: measured: every output code equal (fbgemm's float-bias requantization)
    np.testing.assert_array_equal(_np(qm[1](xq_m).int_repr()), _np(qt[1](xq_t).int_repr()))


class _ConvNet:
    @staticmethod
    def build(lib, q, seed=9):
        rng = np.random.default_rng(seed)

        class Net(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.quant, self.dequant = q.QuantStub(), q.DeQuantStub()
                self.conv = lib.nn.Conv2d(3, 8, 3, padding=1, stride=1)
                self.bn, self.relu = lib.nn.BatchNorm2d(8), lib.nn.ReLU()
                self.conv2 = lib.nn.Conv2d(8, 4, 3, stride=2, groups=2, bias=False)

            def forward(self, x):
                x = self.relu(self.bn(self.conv(self.quant(x))))
                return self.dequant(self.conv2(x))

        net = Net()
        with lib.no_grad():
            for p in net.parameters():
                p.copy_(lib.tensor(rng.uniform(-0.4, 0.4, tuple(p.shape)).astype(np.float32)))
            net.bn.running_mean.copy_(lib.tensor(rng.normal(0, 0.1, 8).astype(np.float32)))
            net.bn.running_var.copy_(lib.tensor(rng.uniform(0.5, 1.5, 8).astype(np.float32)))
        return net.eval()


@pytest.mark.parametrize("per_channel", [False, True])
def test_fused_static_conv_net_matches(per_channel):
    rng = np.random.default_rng(11)
    calib, x = (rng.normal(0, 1, (8, 3, 9, 9)).astype(np.float32) for _ in range(2))
    nets = []
    for lib, q in ((torch, tq), (mg, mq)):
        net = q.fuse_modules(_ConvNet.build(lib, q), ["conv", "bn", "relu"])
        nets.append(_calibrated(lib, q, net, per_channel, calib))
    qt, qm = nets
    assert type(qm.conv).__name__ == "ConvReLU2d" and type(qm.bn).__name__ == "Identity"
    assert "QuantizedConvReLU2d(3, 8, kernel_size=(3, 3)" in repr(qm)
    yt, ym = qt(torch.tensor(x)), qm(mg.tensor(x))
    # NOTE: measured: the float32 conv of calibration can move an observer's max by 1 ulp,
    # so the scales agree to 1e-6 relative and outputs to one quantization step at most
    st, sm = qt.conv.scale, qm.conv.scale
    assert abs(sm - st) <= 1e-6 * st and qm.conv.zero_point == qt.conv.zero_point
    step = qt.conv2.scale
    assert np.abs(_np(ym) - _np(yt)).max() <= step * 1.01
    assert np.mean(np.abs(_np(ym) - _np(yt)) > 1e-5) < 0.02


def test_prepare_qat_convert_runs_like_pytorch():
    rng = np.random.default_rng(12)
    xs = [rng.normal(0, 1, (4, 16)).astype(np.float32) for _ in range(3)]
    res = []
    for lib, q in ((torch, tq), (mg, mq)):
        t, _ = _linear_pair(16, 8, seed=13) if lib is torch else (None, _linear_pair(16, 8, 13)[1])
        lin = t if lib is torch else _
        model = lib.nn.Sequential(q.QuantStub(), lin, lib.nn.ReLU(), q.DeQuantStub())
        q.fuse_modules_qat(model, ["1", "2"], inplace=True)
        model.train()
        model.qconfig = q.get_default_qat_qconfig("fbgemm")  # NOTE: the fused fake quantizers
        q.prepare_qat(model, inplace=True)
        assert type(model[1]).__name__ == "LinearReLU" and hasattr(model[1], "weight_fake_quant")
        outs = [_np(model(lib.tensor(x))) for x in xs]
        model.eval()
        qmodel = q.convert(model)
        outs.append(_np(qmodel(lib.tensor(xs[0]))))
        res.append(outs)
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_workflow_errors():
    m = mnn.Sequential(mnn.Conv2d(1, 1, 1), mnn.BatchNorm2d(1))
    with pytest.raises(Exception, match="[Ee]val"):
        mq.fuse_modules(m, ["0", "1"])  # batch norm fusion needs eval mode
    with pytest.raises(AssertionError, match="did not find fuser method"):
        mq.fuse_modules(mnn.Sequential(mnn.Linear(1, 1), mnn.Sigmoid()), ["0", "1"])
    with pytest.raises(RuntimeError, match="float_qparams_weight_only_qconfig"):
        mq.quantize_dynamic(mnn.Sequential(mnn.EmbeddingBag(2, 2)), {mnn.EmbeddingBag})
    with pytest.raises(NotImplementedError, match="qint8"):
        mq.quantize_dynamic(mnn.Linear(2, 2), dtype=mg.quint4x2)
    bn = mnn.Sequential(mq.QuantStub(), mnn.PReLU(), mq.DeQuantStub()).eval()
    bn.qconfig = mq.default_qconfig
    mq.prepare(bn, inplace=True)
    bn(mg.randn(2, 2, 3, 3))
    assert type(mq.convert(bn)[1]).__name__ == "PReLU"  # the quantized one
    lin = mnnq.Linear(4, 2)
    with pytest.raises(RuntimeError, match="QuantStub"):
        lin(mg.randn(3, 4))
    with pytest.raises(RuntimeError, match="training mode"):
        mq.prepare_qat(mnn.Linear(2, 2).eval())
    with pytest.warns(UserWarning, match="qconfig"):
        mq.prepare(mnn.Sequential(mnn.Linear(2, 2)))


def test_torch_module_paths_resolve():
    import manygrad.compat as compat

    compat.install()
    try:
        import importlib

        for name, attr in (("torch.ao.quantization", "prepare"), ("torch.quantization", "convert"),
                           ("torch.ao.nn.quantized", "Linear"), ("torch.nn.quantized", "Conv2d"),
                           ("torch.ao.nn.quantized.dynamic", "Linear"),
                           ("torch.nn.quantized.dynamic", "Linear"),
                           ("torch.ao.nn.intrinsic", "ConvReLU2d"),
                           ("torch.ao.nn.intrinsic.quantized", "LinearReLU"),
                           ("torch.ao.nn.qat", "Linear"), ("torch.nn.intrinsic", "LinearReLU")):  # fmt: skip
            assert getattr(importlib.import_module(name), attr) is not None
        mod = importlib.import_module("torch")
        assert mod.qint8 is mg.qint8 and repr(mod.per_tensor_affine) == "torch.per_tensor_affine"
        assert repr(mod.quint8) == "torch.quint8" and not mod.qint8.is_floating_point
    finally:
        compat.uninstall()


def test_deepcopy_and_dtypes():
    q = mg.quantize_per_tensor(mg.tensor([1.0, 2.0]), 0.5, 1, mg.quint8)
    c = copy.deepcopy(mnn.Sequential(mnnq.Quantize(0.5, 1, mg.quint8)))
    assert c[0](mg.tensor([1.0, 2.0])).equal(q)
    assert mg.qint8.itemsize == torch.qint8.itemsize == 1 and mg.qint32.itemsize == 4
    assert mg.quint8.is_floating_point is False and mg.dtypes.from_any("torch.qint8") is mg.qint8
