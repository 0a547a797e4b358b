"""Quantization, round 2: HistogramObserver, quantized state dicts and files, and the
quantized ops of converted models (QFunctional, activations, batch norm, Conv1d, pooling),
compared with PyTorch on the same inputs."""

import os

import numpy as np
import pytest
import torch

import manygrad as mg
import manygrad.ao.quantization as mq
from manygrad.ao.nn import quantized as mnnq

tq = torch.ao.quantization
tnnq = torch.ao.nn.quantized
pytestmark = pytest.mark.filterwarnings("ignore")
F = np.float32


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.detach().cpu().numpy()


def _codes(q):
    return _np(q.int_repr()).astype(np.int64)


# ----------------------------------------------------------------------------- histogram
def _sequences():
    rng = np.random.default_rng(0)
    return {
        "one batch": [rng.normal(0, 1, (64, 32))],
        "growing": [rng.normal(0.2 * i, 1 + i, (16, 50)) for i in range(5)],
        "shrinking": [rng.normal(0, 5 - i, (16, 50)) for i in range(5)],
        "relu outputs": [np.maximum(rng.normal(0, 1 + i, (8, 3, 10, 10)), 0) for i in range(4)],
        "outliers": [np.concatenate([rng.normal(0, 1, 1000), [50.0 * (i + 1)]]) for i in range(3)],
        "constant first": [np.full(10, 0.5), rng.normal(0, 1, 100), rng.uniform(-3, 3, 100)],
        "laplace": [rng.laplace(0, 0.1 * (i + 1), 3000) for i in range(6)],
        "integers": [rng.integers(-5, 6, 400).astype(float) for _ in range(3)],
    }


_CONFIGS = [{}, {"reduce_range": True}, {"dtype": "qint8", "qscheme": "per_tensor_symmetric"},
            {"dtype": "quint8", "qscheme": "per_tensor_symmetric", "reduce_range": True},
            {"bins": 256}]  # fmt: skip


def _observe(lib, q, kw, batches):
    k = {a: (getattr(lib, v) if a in ("dtype", "qscheme") else v) for a, v in kw.items()}
    obs = q.HistogramObserver(**k)
    for b in batches:
        assert obs(lib.tensor(b.astype(F))) is not None
    s, z = obs.calculate_qparams()
    return obs, _np(s), _np(z)


@pytest.mark.parametrize("seq", list(_sequences()))
@pytest.mark.parametrize("kw", _CONFIGS, ids=lambda k: ",".join(map(str, k.values())) or "default")
def test_histogram_observer_matches_pytorch_exactly(seq, kw):
    batches = _sequences()[seq]
    t, ts, tz = _observe(torch, tq, kw, batches)
    m, ms, mz = _observe(mg, mq, kw, batches)
    # NOTE: measured bit-exact: histc, the upsampled merge and the L2 search in PyTorch's order
    np.testing.assert_array_equal(_np(m.histogram), _np(t.histogram))
    assert (float(m.min_val), float(m.max_val)) == (float(t.min_val), float(t.max_val))
    np.testing.assert_array_equal(ms, ts)
    np.testing.assert_array_equal(mz, tz)
    assert mz.dtype == tz.dtype


def test_histogram_observer_edges_and_errors():
    with pytest.raises(NotImplementedError, match="PerChannelMinMaxObserver"):
        mq.HistogramObserver(qscheme=mg.per_channel_affine)
    with pytest.raises(NotImplementedError, match="PlaceholderObserver"):
        mq.HistogramObserver(is_dynamic=True)
    with pytest.warns(UserWarning, match="must run observer"):
        s, z = mq.HistogramObserver().calculate_qparams()
    assert s.tolist() == [1.0] and z.tolist() == [0]
    x = np.array([1.0, np.inf, -2.0, 3.0], F)
    res = []
    for lib, q in ((torch, tq), (mg, mq)):
        obs = q.HistogramObserver()
        with pytest.warns(UserWarning, match="inf detected"):
            obs(lib.tensor(x))
        obs(lib.tensor([np.inf], dtype=lib.float32))  # all inf: ignored
        res.append([float(v) for v in obs.calculate_qparams()] + [float(obs.max_val)])
    assert res[0] == res[1]
    sd = mq.HistogramObserver().state_dict()
    assert list(sd) == list(tq.HistogramObserver().state_dict())


def _linear_model(lib, q, seed=3):
    rng = np.random.default_rng(seed)
    m = lib.nn.Sequential(q.QuantStub(), lib.nn.Linear(16, 8), lib.nn.ReLU(), lib.nn.Linear(8, 4),
                          q.DeQuantStub())  # fmt: skip
    with lib.no_grad():
        for p in m.parameters():
            p.copy_(lib.tensor(rng.uniform(-0.5, 0.5, tuple(p.shape)).astype(F)))
    return m.eval()


@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack"])
def test_default_qconfig_workflow_matches(backend):
    rng = np.random.default_rng(4)
    calib = [rng.normal(0, 1 + i, (32, 16)).astype(F) for i in range(3)]
    x = rng.normal(0, 2, (10, 16)).astype(F)
    outs = []
    engine = torch.backends.quantized.engine
    for lib, q in ((torch, tq), (mg, mq)):
        if lib is torch and backend == "qnnpack":
            # NOTE: on the x86 engine, qnnpack's config (no reduce_range) lets fbgemm's int16
            # pair sums saturate; PyTorch runs it on the qnnpack engine, whose sums are exact
            torch.backends.quantized.engine = backend
        m = _linear_model(lib, q)
        m.qconfig = q.get_default_qconfig(backend)
        q.prepare(m, inplace=True)
        assert type(m[1].activation_post_process).__name__ == "HistogramObserver"
        for c in calib:
            m(lib.tensor(c))
        q.convert(m, inplace=True)
        outs.append((m, _np(m(lib.tensor(x)))))
        torch.backends.quantized.engine = engine
    (tm, yt), (mm, ym) = outs
    for i in (0, 1, 3):
        got, want = (float(mm[i].scale), int(mm[i].zero_point)), (
            float(tm[i].scale), int(tm[i].zero_point))  # fmt: skip
        assert got == want
    np.testing.assert_array_equal(ym, yt)


def test_default_qat_qconfig_versions_build():
    for backend in ("x86", "qnnpack"):
        qc = mq.get_default_qat_qconfig(backend)
        fq = qc.activation()
        assert fq(mg.randn(4, 4)).shape == (4, 4)


# ----------------------------------------------------------------------------- state dicts
def _converted(lib, q, dynamic=False, seed=3):
    m = _linear_model(lib, q, seed)
    if dynamic:
        return q.quantize_dynamic(m, {lib.nn.Linear}, dtype=lib.qint8)
    m.qconfig = q.get_default_qconfig("x86")
    q.prepare(m, inplace=True)
    m(lib.tensor(np.random.default_rng(5).normal(0, 1, (64, 16)).astype(F)))
    return q.convert(m)


def _describe(v):
    if isinstance(v, tuple):
        return tuple(_describe(e) for e in v)
    if hasattr(v, "shape"):
        return (str(v.dtype).split(".")[1], tuple(v.shape), bool(v.is_quantized))
    return str(v).split(".")[1]


@pytest.mark.parametrize("dynamic", [False, True])
def test_state_dict_keys_and_values_match_pytorch(dynamic):
    tsd, msd = _converted(torch, tq, dynamic).state_dict(), _converted(mg, mq, dynamic).state_dict()
    assert list(msd) == list(tsd)
    for k in tsd:
        assert _describe(msd[k]) == _describe(tsd[k]), k
    w = "1._packed_params._packed_params"
    np.testing.assert_array_equal(_codes(msd[w][0]), _codes(tsd[w][0]))
    assert dict(msd._metadata)["1"] == dict(tsd._metadata)["1"]


def test_load_state_dict_save_and_load_roundtrip(tmp_path):
    src, dst = _converted(mg, mq), _converted(mg, mq, seed=9)
    dst[3].set_weight_bias(dst[3].weight(), None)
    x = mg.tensor(np.random.default_rng(6).normal(0, 1, (5, 16)).astype(F))
    assert not np.array_equal(_np(dst(x)), _np(src(x)))
    path = os.path.join(tmp_path, "q.pt")
    mg.save(src.state_dict(), path)
    back = mg.load(path)
    assert back["1._packed_params._packed_params"][0].is_quantized
    assert back["1._packed_params.dtype"] is mg.qint8
    result = dst.load_state_dict(back)
    assert not result.missing_keys and not result.unexpected_keys
    np.testing.assert_array_equal(_np(dst(x)), _np(src(x)))
    assert dst[1].scale == src[1].scale and dst[3].bias() is not None
    # the older layout (weight / bias beside scale) loads too
    sd = src.state_dict()
    w, b = sd.pop("3._packed_params._packed_params")
    del sd["3._packed_params.dtype"]
    sd["3.weight"], sd["3.bias"] = w, b
    dst.load_state_dict(sd)
    assert dst[3].weight().equal(w)


def test_quantized_tensors_in_files(tmp_path):
    x = np.random.default_rng(7).normal(0, 1, (3, 4)).astype(F)
    pt = mg.quantize_per_tensor(mg.tensor(x), 0.02, 7, mg.quint8)
    pc = mg.quantize_per_channel(mg.tensor(x), mg.tensor([0.1, 0.2, 0.3]), mg.tensor([0, 1, -2]),
                                 0, mg.qint8)  # fmt: skip
    path = os.path.join(tmp_path, "t.pt")
    mg.save({"pt": pt, "pc": pc, "nested": [pt]}, path)
    back = mg.load(path)
    assert back["pt"].equal(pt) and back["pc"].equal(pc) and back["nested"][0].equal(pt)
    mg.save({"pt": pt}, path)  # a flat dict of quantized tensors keeps its qparams too
    assert mg.load(path)["pt"].q_zero_point() == 7
    # files PyTorch wrote: torch._utils._rebuild_qtensor
    tpath = os.path.join(tmp_path, "torch.pt")
    torch.save({"pt": torch.quantize_per_tensor(torch.tensor(x), 0.02, 7, torch.quint8),
                "pc": torch.quantize_per_channel(torch.tensor(x), torch.tensor([0.1, 0.2, 0.3]),
                                                 torch.tensor([0, 1, -2]), 0, torch.qint8)},
               tpath)  # fmt: skip
    tb = mg.load(tpath)
    assert tb["pt"].equal(pt) and tb["pc"].equal(pc)
    tm = _converted(torch, tq)
    torch.save(tm.state_dict(), tpath)
    mm = _converted(mg, mq, seed=9)
    mm.load_state_dict(mg.load(tpath))
    xx = np.random.default_rng(8).normal(0, 1, (6, 16)).astype(F)
    np.testing.assert_array_equal(_np(mm(mg.tensor(xx))), _np(tm(torch.tensor(xx))))
    # a whole quantized model, pickled
    mg.save(mm, path)
    whole = mg.load(path, weights_only=False)
    assert whole[1].weight().equal(mm[1].weight()) and whole[1].scale == mm[1].scale


def test_state_dict_errors_name_the_key():
    q = _converted(mg, mq)
    float_sd = _linear_model(mg, mq).state_dict()
    with pytest.raises(RuntimeError, match=r"1\.scale"):  # missing keys are listed
        q.load_state_dict(float_sd)
    sd = q.state_dict()
    sd["1._packed_params._packed_params"] = (mg.randn(8, 16), None)
    with pytest.raises(RuntimeError, match="quantized weight"):
        q.load_state_dict(sd)
    sd["1._packed_params._packed_params"] = (mg.quantize_per_tensor(mg.randn(3, 3), 0.1, 0,
                                                                    mg.qint8), None)  # fmt: skip
    with pytest.raises(RuntimeError, match="size mismatch"):
        q.load_state_dict(sd)


# ----------------------------------------------------------------------------- quantized ops
def _pair(shape, scale, zp, seed):
    x = np.random.default_rng(seed).normal(0, 3, shape).astype(F)
    return (torch.quantize_per_tensor(torch.tensor(x), scale, zp, torch.quint8),
            mg.quantize_per_tensor(mg.tensor(x), scale, zp, mg.quint8))  # fmt: skip


# NOTE: sizes with and without a tail past the kernels' 64-code blocks
@pytest.mark.parametrize("n", [64 * 7, 1000, 37])
def test_qfunctional_ops_match(n):
    (ta, ma), (tb, mb) = _pair((n,), 0.05, 120, 1), _pair((n,), 0.07, 100, 2)
    tf, mf = tnnq.QFunctional(), mnnq.QFunctional()
    for f in (tf, mf):
        f.scale, f.zero_point = 0.1, 128
    cases = [lambda f, a, b: f.add(a, b), lambda f, a, b: f.add_relu(a, b),
             lambda f, a, b: f.mul(a, b), lambda f, a, b: f.cat([a, b], 0),
             lambda f, a, b: f.add_scalar(a, 0.37), lambda f, a, b: f.add_scalar(a, -20.0),
             lambda f, a, b: f.add_scalar(a, 20.0), lambda f, a, b: f.mul_scalar(a, -1.3),
             lambda f, a, b: f.mul_scalar(a, 0.0), lambda f, a, b: f.mul_scalar(a, 2.5)]  # fmt: skip
    for i, case in enumerate(cases):
        t, m = case(tf, ta, tb), case(mf, ma, mb)
        assert (m.q_scale(), m.q_zero_point()) == pytest.approx((t.q_scale(), t.q_zero_point())), i
        d = np.abs(_codes(m) - _codes(t))
        # NOTE: measured on these inputs: equal codes but for half-way cases of add (1 code)
        assert d.max() <= 1 and np.mean(d) < 0.005, i
    assert mf.state_dict().keys() == tf.state_dict().keys()


def test_quantized_activation_modules_match():
    t, m = _pair((4, 6, 7, 9), 0.05, 120, 3)
    pairs = [(tnnq.Hardswish(0.04, 20), mnnq.Hardswish(0.04, 20)),
             (tnnq.LeakyReLU(0.04, 20, 0.1), mnnq.LeakyReLU(0.04, 20, 0.1)),
             (tnnq.Sigmoid(1 / 256, 0), mnnq.Sigmoid(1 / 256, 0)), (tnnq.ReLU6(), mnnq.ReLU6()),
             (tnnq.ELU(0.04, 50), mnnq.ELU(0.04, 50))]  # fmt: skip
    for tmod, mmod in pairs:
        a, b = tmod(t), mmod(m)
        assert (b.q_scale(), b.q_zero_point()) == (a.q_scale(), a.q_zero_point())
        d = np.abs(_codes(b) - _codes(a))
        # NOTE: measured: equal codes (ELU's exp may differ from PyTorch's by an ulp: 1 code)
        assert d.max() <= 1 and np.mean(d) < 0.002, type(mmod).__name__
        assert list(mmod.state_dict()) == list(tmod.state_dict())
    fns = [lambda lib, q: lib.nn.functional.leaky_relu(q, 0.2),
           lambda lib, q: lib.nn.functional.adaptive_avg_pool2d(q, (3, 4)),
           lambda lib, q: lib.cat([q, q[:, :2]], 1)]  # fmt: skip
    fns += [lambda lib, q, kw=kw: (tnnq if lib is torch else mnnq).functional.avg_pool2d(q, **kw)
            for kw in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, ceil_mode=True),
                       dict(kernel_size=3, padding=1, count_include_pad=False),
                       dict(kernel_size=3, padding=1, divisor_override=5))]  # fmt: skip
    for fn in fns:
        np.testing.assert_array_equal(_codes(fn(mg, m)), _codes(fn(torch, t)))


def test_quantized_batchnorm_and_conv1d_match():
    rng = np.random.default_rng(4)
    t, m = _pair((2, 5, 6, 7), 0.05, 120, 5)
    stats = [rng.uniform(0.5, 1.5, 5).astype(F) for _ in range(4)]
    out = []
    for lib, nnq in ((torch, tnnq), (mg, mnnq)):
        bn = nnq.BatchNorm2d(5)
        with lib.no_grad():
            for buf, v in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), stats):
                buf.copy_(lib.tensor(v))
        bn.scale, bn.zero_point = lib.tensor([0.08]), lib.tensor([100])
        out.append(_codes(bn(t if lib is torch else m)))
    np.testing.assert_array_equal(out[1], out[0])
    # NOTE: input codes in 0..127 (reduce_range, as x86 configs): fbgemm's int16 pair sums
    # saturate on full-range codes
    t1, m1 = _pair((2, 4, 11), 0.1, 64, 6)
    w = rng.uniform(-0.5, 0.5, (3, 4, 3)).astype(F)
    res = []
    for lib, nnq, x in ((torch, tnnq, t1), (mg, mnnq, m1)):
        c = nnq.Conv1d(4, 3, 3, stride=2, padding=1)
        qw = lib.quantize_per_tensor(lib.tensor(w), 0.004, 0, lib.qint8)
        c.set_weight_bias(qw, lib.tensor([0.1, -0.2, 0.3]))
        c.scale, c.zero_point = 0.03, 60
        res.append((_codes(c(x)), list(c.state_dict()), repr(c)))
    np.testing.assert_array_equal(res[1][0], res[0][0])
    assert res[1][1] == res[0][1] and res[1][2] == res[0][2]


def test_quantized_op_errors():
    f = mnnq.QFunctional()
    with pytest.raises(RuntimeError, match="quantize"):
        f.add(mg.randn(3), mg.randn(3))
    with pytest.raises(RuntimeError, match="underlying"):
        mnnq.FloatFunctional()(mg.randn(3))
    with pytest.raises(RuntimeError, match="prepare"):
        mnnq.QFunctional.from_float(mnnq.FloatFunctional())
    _, m = _pair((3,), 0.1, 0, 7)
    with pytest.raises(NotImplementedError, match="functional.hardswish"):
        mg.nn.functional.hardswish(m)  # PyTorch refuses it too: output qparams are needed
    with pytest.raises(RuntimeError, match="per-tensor"):
        mnnq.functional.hardswish(mg.randn(3), 0.1, 0)


def _residual_net(lib, q, nnq, calib):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = q.QuantStub(), q.DeQuantStub()
            self.conv1, self.bn1 = lib.nn.Conv2d(3, 6, 3, padding=1), lib.nn.BatchNorm2d(6)
            self.relu, self.down = lib.nn.ReLU(), lib.nn.Conv2d(3, 6, 1)
            self.skip, self.cat = nnq.FloatFunctional(), nnq.FloatFunctional()
            self.hs, self.r6, self.bn3 = lib.nn.Hardswish(), lib.nn.ReLU6(), lib.nn.BatchNorm2d(12)
            self.pool, self.fc = lib.nn.AdaptiveAvgPool2d(1), lib.nn.Linear(12, 5)

        def forward(self, x):
            x = self.quant(x)
            y = self.skip.add_relu(self.relu(self.bn1(self.conv1(x))), self.down(x))
            z = self.bn3(self.cat.cat([self.hs(y), self.r6(y)], 1))
            return self.dequant(self.fc(self.pool(z).flatten(1)))

    net, rng = Net(), np.random.default_rng(1)
    with lib.no_grad():
        for p in net.parameters():
            p.copy_(lib.tensor(rng.uniform(-0.4, 0.4, tuple(p.shape)).astype(F)))
    net.eval()
    q.fuse_modules(net, [["conv1", "bn1", "relu"]], inplace=True)
    net.qconfig = q.get_default_qconfig("x86")
    q.prepare(net, inplace=True)
    for c in calib:
        net(lib.tensor(c))
    return q.convert(net)


def test_residual_net_with_float_functional_matches():
    rng = np.random.default_rng(0)
    data = [rng.normal(0, 1, (4, 3, 9, 9)).astype(F) for _ in range(4)]
    tm = _residual_net(torch, tq, tnnq, data[:3])
    mm = _residual_net(mg, mq, mnnq, data[:3])
    assert type(mm.skip).__name__ == "QFunctional" and list(mm.state_dict()) == list(
        tm.state_dict()
    )
    for name in ("skip", "cat", "fc"):
        a, b = getattr(tm, name), getattr(mm, name)
        # NOTE: float32 convs in calibration can move an observer's range by an ulp
        assert b.scale == pytest.approx(a.scale, rel=1e-6) and b.zero_point == a.zero_point
    yt, ym = _np(tm(torch.tensor(data[3]))), _np(mm(mg.tensor(data[3])))
    # NOTE: measured: identical outputs on this net
    assert np.abs(ym - yt).max() <= tm.fc.scale * 1.01
