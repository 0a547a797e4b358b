"""Quantization, round 3: PyTorch's quantized kernels behind the plain ops (sigmoid, tanh,
hardsigmoid, clamp, hardtanh, relu6 on quantized tensors), float16 and LSTM/GRU dynamic
quantization, and further quantized modules, compared with PyTorch on the same inputs."""

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


def _from_codes(codes, scale, zp, qd):
    """The same quantized tensor in both libraries, from integer codes."""
    lo = -128 if qd == "qint8" else 0
    x = ((codes.astype(np.int64) - zp) * scale).astype(F)
    t = torch._make_per_tensor_quantized_tensor(torch.tensor(codes), scale, zp)
    m = mg.quantize_per_tensor(mg.tensor(x), scale, zp, getattr(mg, qd))
    np.testing.assert_array_equal(_codes(m), _codes(t))
    assert lo <= codes.min()
    return t, m


def _all_codes(qd, reps=1, seed=0):
    """Every code of ``qd``, shuffled, ``reps`` times (lengths past and within PyTorch's
    64-code vector blocks follow from the slicing in the tests)."""
    lo, hi = (-128, 127) if qd == "qint8" else (0, 255)
    rng = np.random.default_rng(seed)
    return rng.permutation(np.tile(np.arange(lo, hi + 1), reps)).astype(
        np.int8 if qd == "qint8" else np.uint8
    )


def _same(t, m, what=""):
    assert m.dtype is getattr(mg, str(t.dtype).split(".")[1]), what
    assert (m.q_scale(), m.q_zero_point()) == (t.q_scale(), t.q_zero_point()), what
    np.testing.assert_array_equal(_codes(m), _codes(t), err_msg=what)


# ------------------------------------------------------------------ ops on quantized tensors
_UNARY = {
    "torch.sigmoid": lambda lib, q: lib.sigmoid(q),
    "F.sigmoid": lambda lib, q: lib.nn.functional.sigmoid(q),
    "Tensor.sigmoid": lambda lib, q: q.sigmoid(),
    "nn.Sigmoid": lambda lib, q: lib.nn.Sigmoid()(q),
    "torch.tanh": lambda lib, q: lib.tanh(q),
    "Tensor.tanh": lambda lib, q: q.tanh(),
    "nn.Tanh": lambda lib, q: lib.nn.Tanh()(q),
    "F.hardsigmoid": lambda lib, q: lib.nn.functional.hardsigmoid(q),
    "clamp": lambda lib, q: lib.clamp(q, -1.0, 2.0),
    "clamp int bounds": lambda lib, q: lib.clamp(q, -1, 2),
    "clamp min": lambda lib, q: lib.clamp(q, min=-0.73),
    "clamp max": lambda lib, q: lib.clamp(q, max=0.61),
    "Tensor.clamp": lambda lib, q: q.clamp(-0.5, 0.5),
    "clip": lambda lib, q: lib.clip(q, -0.3, 1.7),
    "F.hardtanh": lambda lib, q: lib.nn.functional.hardtanh(q),
    "F.hardtanh bounds": lambda lib, q: lib.nn.functional.hardtanh(q, -1.55, 0.77),
    "nn.Hardtanh": lambda lib, q: lib.nn.Hardtanh(-2.0, 2.0)(q),
    "F.relu6": lambda lib, q: lib.nn.functional.relu6(q),
    "nn.ReLU6": lambda lib, q: lib.nn.ReLU6()(q),
    "F.leaky_relu": lambda lib, q: lib.nn.functional.leaky_relu(q, 0.1),
    "F.gelu": lambda lib, q: lib.nn.functional.gelu(q),
    "F.gelu tanh": lambda lib, q: lib.nn.functional.gelu(q, approximate="tanh"),
    "nn.GELU": lambda lib, q: lib.nn.GELU()(q),
}


@pytest.mark.parametrize("qd", ["quint8", "qint8"])
@pytest.mark.parametrize("name", list(_UNARY))
def test_ops_on_quantized_tensors_match_pytorch_bit_for_bit(qd, name):
    fn = _UNARY[name]
    rng = np.random.default_rng(1)
    codes = _all_codes(qd, 2)
    for scale, zp in [(0.05, 100 if qd == "quint8" else 3), (0.0371, 17 if qd == "quint8" else -90),
                      (float(rng.uniform(0.005, 0.2)), int(rng.integers(0, 128)))]:  # fmt: skip
        # NOTE: 512 codes run PyTorch's vector loop, 63 and 5 its scalar tail, 600 both
        for n in (512, 63, 600, 5):
            t, m = _from_codes(np.resize(codes, n), scale, zp, qd)
            _same(fn(torch, t), fn(mg, m), f"{name} {scale} {zp} n={n}")


def test_fixed_output_qparams_and_shapes():
    x = np.random.default_rng(2).normal(0, 2, (3, 5, 7)).astype(F)
    for qd, sig, tanh in [
        ("quint8", (2**-8, 0), (2**-7, 128)),
        ("qint8", (2**-8, -128), (2**-7, 0)),
    ]:
        t = torch.quantize_per_tensor(torch.tensor(x), 0.03, 0, getattr(torch, qd))
        m = mg.quantize_per_tensor(mg.tensor(x), 0.03, 0, getattr(mg, qd))
        s, h = mg.sigmoid(m), mg.tanh(m)
        assert (s.q_scale(), s.q_zero_point()) == sig and (h.q_scale(), h.q_zero_point()) == tanh
        assert tuple(s.shape) == (3, 5, 7) and s.dtype is getattr(mg, qd)
        _same(torch.sigmoid(t), s)
        _same(torch.tanh(t), h)
        _same(torch.sigmoid(t[1:, 2]), mg.sigmoid(m[1:, 2]))  # a view
    t = torch.quantize_per_tensor(torch.tensor(x), 0.05, 3, torch.qint32)
    m = mg.quantize_per_tensor(mg.tensor(x), 0.05, 3, mg.qint32)
    for fn in (torch.sigmoid, torch.tanh):
        a, b = fn(t), getattr(mg, fn.__name__)(m)
        assert (b.q_scale(), b.q_zero_point()) == (a.q_scale(), a.q_zero_point())
        # NOTE: qint32 codes of 1/2**32 steps: float32 exp / tanh ulps show in the codes
        np.testing.assert_allclose(_codes(b), _codes(a), atol=2**9)


def test_in_place_forms_match():
    codes = _all_codes("quint8")
    cases = [lambda lib, q: lib.nn.functional.relu6(q, inplace=True),
             lambda lib, q: lib.nn.functional.hardtanh(q, -0.4, 0.9, inplace=True),
             lambda lib, q: lib.nn.functional.leaky_relu(q, 0.2, inplace=True),
             lambda lib, q: lib.nn.functional.hardsigmoid(q, inplace=True),
             lambda lib, q: lib.nn.ReLU6(inplace=True)(q), lambda lib, q: q.relu_(),
             lambda lib, q: lib.relu_(q)]  # fmt: skip
    for i, fn in enumerate(cases):
        t, m = _from_codes(codes, 0.04, 120, "quint8")
        a, b = fn(torch, t), fn(mg, m)
        assert b is m, i
        _same(a, b, str(i))
        _same(t, m, str(i))  # NOTE: the input itself changed, qparams included


def test_ops_pytorch_refuses_on_quantized_tensors_are_refused():
    t, m = _from_codes(_all_codes("quint8"), 0.05, 100, "quint8")
    refused = [(lambda lib, q: lib.nn.functional.hardswish(q), "functional.hardswish"),
               (lambda lib, q: lib.nn.functional.elu(q), "functional.elu"),
               (lambda lib, q: q.clamp_(-1.0, 1.0), "clamp"),
               (lambda lib, q: q.sigmoid_(), "sigmoid"), (lambda lib, q: lib.exp(q), "dequantize")]  # fmt: skip
    for fn, msg in refused:
        with pytest.raises((RuntimeError, NotImplementedError)):
            fn(torch, t.clone())
        with pytest.raises(NotImplementedError, match=msg):
            fn(mg, m.clone())
    pc = mg.quantize_per_channel(mg.randn(2, 3), mg.tensor([0.1, 0.2]), mg.tensor([0, 1]), 0,
                                 mg.quint8)  # fmt: skip
    for fn in (mg.sigmoid, mg.tanh, lambda q: mg.clamp(q, -1.0, 1.0)):
        with pytest.raises(NotImplementedError, match="per_channel"):
            fn(pc)


def test_float_tensors_unchanged_by_the_quantized_paths():
    x = mg.tensor([-3, 0, 2, 9])
    assert mg.clamp(x, -1, 4).tolist() == [-1, 0, 2, 4]  # integers keep integer bounds
    assert mg.nn.functional.hardtanh(x).tolist() == [-1, 0, 1, 1]
    assert mg.sigmoid(x).dtype is mg.float32


def test_nnq_functional_hardsigmoid_and_elu_match():
    codes = _all_codes("quint8", 3)
    t, m = _from_codes(codes, 0.045, 131, "quint8")
    _same(tnnq.functional.hardsigmoid(t), mnnq.functional.hardsigmoid(m))
    _same(tnnq.functional.elu(t, 0.03, 70, 0.8), mnnq.functional.elu(m, 0.03, 70, 0.8))
    _same(tnnq.ELU(0.02, 90)(t), mnnq.ELU(0.02, 90)(m))


# ------------------------------------------------------------------ float16 dynamic Linear
def _seeded(lib, module, seed=0):
    rng = np.random.default_rng(seed)
    with lib.no_grad():
        for p in module.parameters():
            p.copy_(lib.tensor(rng.uniform(-0.5, 0.5, tuple(p.shape)).astype(F)))
    return module


def _mlp(lib):
    return _seeded(lib, lib.nn.Sequential(lib.nn.Linear(40, 30), lib.nn.ReLU(),
                                          lib.nn.Linear(30, 7, bias=False)))  # fmt: skip


def test_float16_dynamic_linear_matches():
    tmod = tq.quantize_dynamic(_mlp(torch), {torch.nn.Linear}, dtype=torch.float16)
    mmod = mq.quantize_dynamic(_mlp(mg), {mg.nn.Linear}, dtype=mg.float16)
    assert repr(mmod) == repr(tmod).replace("torch.", "manygrad.")
    np.testing.assert_array_equal(_np(mmod[0].weight()), _np(tmod[0].weight()))
    assert mmod[0].weight().dtype is mg.float32 and mmod[2].bias() is None
    x = np.random.default_rng(3).normal(0, 1, (2, 5, 40)).astype(F)
    yt, ym = _np(tmod(torch.tensor(x))), _np(mmod(mg.tensor(x)))
    # NOTE: fbgemm's float16 GEMM sums in float32 in its own order: an ulp or so apart
    np.testing.assert_allclose(ym, yt, rtol=1e-5, atol=1e-6)
    # the weight really is float16: the float model differs by more than that
    yf = _np(_mlp(torch)(torch.tensor(x)))
    assert np.abs(yf - yt).max() > 1e-4
    ts, ms = tmod.state_dict(), mmod.state_dict()
    assert list(ms) == list(ts)
    assert ms["0._packed_params.dtype"] is mg.float16
    np.testing.assert_array_equal(_np(ms["0._packed_params._packed_params"][0]),
                                  _np(ts["0._packed_params._packed_params"][0]))  # fmt: skip
    fresh = mq.quantize_dynamic(_seeded(mg, _mlp(mg), 9), {mg.nn.Linear}, dtype=mg.float16)
    fresh.load_state_dict(ms)
    np.testing.assert_array_equal(_np(fresh(mg.tensor(x))), ym)


def test_float16_weights_saturate_and_errors():
    lin = mg.nn.Linear(3, 2)
    with mg.no_grad():
        lin.weight[0, 0] = 1e6
    with pytest.warns(UserWarning, match="float16 range"):
        q = mq.quantize_dynamic(mg.nn.Sequential(lin), {mg.nn.Linear}, dtype=mg.float16)
    assert float(q[0].weight()[0, 0]) == 65504.0
    with pytest.raises(NotImplementedError, match="torch.qint8, torch.float16"):
        mq.quantize_dynamic(mg.nn.Sequential(mg.nn.Linear(3, 2)), dtype=mg.quint4x2)
    with pytest.raises(NotImplementedError, match="float16"):
        mnnq.dynamic.Linear(3, 2, dtype=mg.quint8)


# ------------------------------------------------------------------ dynamic LSTM / GRU / cells
_RNNS = [("LSTM", {}), ("LSTM", {"num_layers": 2, "bidirectional": True}),
         ("GRU", {"batch_first": True}), ("GRU", {"num_layers": 2, "bidirectional": True}),
         ("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", {}),
         ("RNNCell", {"nonlinearity": "relu"})]  # fmt: skip


def _flat(out):
    if not isinstance(out, tuple):
        return [out]
    return [o for item in out for o in (item if isinstance(item, tuple) else (item,))]


@pytest.mark.parametrize("dtype", ["qint8", "float16"])
@pytest.mark.parametrize(
    "kind,kw", _RNNS, ids=[f"{k}{len(kw)}{i}" for i, (k, kw) in enumerate(_RNNS)]
)
def test_dynamic_rnns_match(kind, kw, dtype):
    mods = {}
    for lib, q in ((torch, tq), (mg, mq)):
        net = _seeded(lib, lib.nn.Sequential(getattr(lib.nn, kind)(6, 5, **kw)), 4)
        mods[lib] = q.quantize_dynamic(net, dtype=getattr(lib, dtype))
    tm, mm = mods[torch], mods[mg]
    assert repr(mm) == repr(tm) and list(mm.state_dict()) == list(tm.state_dict())
    rng = np.random.default_rng(5)
    cell = "Cell" in kind
    x = rng.normal(0, 1, (4, 6) if cell else (7, 3, 6)).astype(F)
    ins = [(x,)]
    nstate = (kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1),)
    h0 = rng.normal(0, 0.5, (4, 5) if cell else (*nstate, 7 if kw.get("batch_first") else 3, 5))
    h0 = h0.astype(F)
    ins.append((x, (h0, h0 * 0.5) if kind.startswith("LSTM") else h0))
    for args in ins:
        ta = [torch.tensor(a) if not isinstance(a, tuple) else tuple(map(torch.tensor, a))
              for a in args]  # fmt: skip
        ma = [mg.tensor(a) if not isinstance(a, tuple) else tuple(map(mg.tensor, a))
              for a in args]  # fmt: skip
        outs = list(zip(_flat(tm[0](*ta)), _flat(mm[0](*ma))))
        assert len(outs) == (3 if kind == "LSTM" else 2 if kind in ("GRU", "LSTMCell") else 1)
        for a, b in outs:
            assert tuple(b.shape) == tuple(a.shape)
            # NOTE: measured: at most 1.2e-7 apart (float32 sigmoid / tanh ulps); a wrong
            # quantization of any linear map moves outputs by ~1e-3
            np.testing.assert_allclose(_np(b), _np(a), atol=1e-6, rtol=0)


def test_dynamic_rnn_state_dict_roundtrip_and_errors():
    a = mq.quantize_dynamic(_seeded(mg, mg.nn.Sequential(mg.nn.LSTM(4, 3, num_layers=2)), 1))
    b = mq.quantize_dynamic(_seeded(mg, mg.nn.Sequential(mg.nn.LSTM(4, 3, num_layers=2)), 2))
    x = mg.randn(5, 2, 4)
    assert not mg.equal(a(x)[0], b(x)[0])
    b.load_state_dict(a.state_dict())
    assert mg.equal(a(x)[0], b(x)[0])
    w = a[0]._weight_bias()
    assert set(w) == {f"{k}_l{i}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                      for i in (0, 1)} and w["weight_ih_l0"].dtype is mg.qint8  # fmt: skip
    c = mq.quantize_dynamic(_seeded(mg, mg.nn.Sequential(mg.nn.GRUCell(4, 3)), 1))
    c2 = mq.quantize_dynamic(_seeded(mg, mg.nn.Sequential(mg.nn.GRUCell(4, 3)), 2))
    c2.load_state_dict(c.state_dict())
    assert mg.equal(c(x[0]), c2(x[0]))
    with pytest.raises(ValueError, match="input of shape"):
        a(mg.randn(5, 2, 3))
    with pytest.raises(RuntimeError, match="hidden size"):
        a[0](x, (mg.zeros(2, 3, 3), mg.zeros(2, 3, 3)))
    with pytest.raises(RuntimeError, match="3 dimensions"):
        a(mg.randn(5, 4))  # unbatched: PyTorch refuses too
    with pytest.raises(ValueError, match="batch dim"):
        c(mg.randn(4))
    with pytest.raises(TypeError, match="float input"):
        a(mg.quantize_per_tensor(x, 0.1, 0, mg.quint8))
    with pytest.raises(NotImplementedError, match="biases"):
        mq.quantize_dynamic(mg.nn.Sequential(mg.nn.GRU(4, 3, bias=False)))
    with pytest.raises(RuntimeError, match="float_qparams_weight_only_qconfig"):
        mq.quantize_dynamic(mg.nn.Sequential(mg.nn.Embedding(4, 3)), {mg.nn.Embedding})


# ------------------------------------------------------------------ Embedding / EmbeddingBag
def _embeddings(lib, q, static: bool):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.bag = lib.nn.Embedding(50, 33), lib.nn.EmbeddingBag(50, 33)

    net = _seeded(lib, Net(), 6)
    if not static:
        return q.quantize_dynamic(net, dtype=lib.quint8)
    net.emb.qconfig = net.bag.qconfig = q.float_qparams_weight_only_qconfig
    return q.convert(q.prepare(net))


@pytest.mark.parametrize("static", [False, True])
def test_quantized_embeddings_match_bit_for_bit(static):
    t, m = _embeddings(torch, tq, static), _embeddings(mg, mq, static)
    assert repr(m).replace("manygrad.", "torch.") == repr(t)
    assert list(m.state_dict()) == list(t.state_dict())
    tw, mw = t.emb.weight(), m.emb.weight()
    assert mw.qscheme() is mg.per_channel_affine_float_qparams
    np.testing.assert_array_equal(_codes(mw), _codes(tw))
    np.testing.assert_array_equal(_np(mw.q_per_channel_zero_points()),
                                  _np(tw.q_per_channel_zero_points()))  # fmt: skip
    np.testing.assert_array_equal(_np(mw.dequantize()), _np(tw.dequantize()))
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 50, (6, 4))
    # NOTE: fbgemm's rows: fma(scale, q, bias), bags accumulate fma(scale, q, acc + bias)
    for a, b in [(t.emb(torch.tensor(idx)), m.emb(mg.tensor(idx))),
                 (t.bag(torch.tensor(idx)), m.bag(mg.tensor(idx)))]:  # fmt: skip
        assert tuple(b.shape) == tuple(a.shape)
        np.testing.assert_array_equal(_np(b), _np(a))
    flat, offs = idx.reshape(-1), np.array([0, 0, 5, 9, 20])
    psw = rng.uniform(-1, 2, flat.size).astype(F)
    for last in (False, True):
        t.bag.include_last_offset = m.bag.include_last_offset = last
        o = np.append(offs, 24) if last else offs
        for w in (None, psw):
            ta = t.bag(torch.tensor(flat), torch.tensor(o),
                       per_sample_weights=None if w is None else torch.tensor(w))  # fmt: skip
            ma = m.bag(mg.tensor(flat), mg.tensor(o),
                       per_sample_weights=None if w is None else mg.tensor(w))  # fmt: skip
            np.testing.assert_array_equal(_np(ma), _np(ta))


def test_quantized_embedding_state_files_and_errors(tmp_path):
    m = _embeddings(mg, mq, False)
    fresh = _embeddings(mg, mq, True)
    with mg.no_grad():
        fresh.emb.set_weight(mg.quantize_per_channel(mg.ones(50, 33), mg.ones(50), mg.zeros(50),
                                                     0, mg.quint8))  # fmt: skip
    mg.save(m.state_dict(), tmp_path / "q.pt")
    fresh.load_state_dict(mg.load(tmp_path / "q.pt"))
    idx = mg.tensor([[1, 2, 49]])
    assert mg.equal(fresh.emb(idx), m.emb(idx)) and mg.equal(fresh.bag(idx), m.bag(idx))
    # files PyTorch wrote: it pickles float-qparams weights as per_channel_affine
    t = _embeddings(torch, tq, False)
    torch.save(t.state_dict(), tmp_path / "t.pt")
    loaded = mg.load(tmp_path / "t.pt")
    w = loaded["emb._packed_params._packed_weight"]
    assert w.qscheme() is mg.per_channel_affine_float_qparams and w.equal(m.emb.weight())
    with pytest.raises(IndexError, match="out of range"):
        m.emb(mg.tensor([50]))
    with pytest.raises(TypeError, match="integer"):
        m.emb(mg.tensor([1.0]))
    with pytest.raises(ValueError, match="offsets"):
        m.bag(mg.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="float qparams"):
        m.emb.set_weight(mg.quantize_per_tensor(mg.ones(50, 33), 0.1, 0, mg.quint8))
    with pytest.raises(RuntimeError, match="float_qparams_weight_only_qconfig"):
        e = mg.nn.Embedding(3, 2)
        e.qconfig = mq.default_qconfig
        mnnq.Embedding.from_float(e)
    with pytest.raises(Exception, match="qint32"):
        mg.quantize_per_channel(mg.ones(2, 2), mg.ones(2), mg.zeros(2), 0, mg.qint32)
    x = np.random.default_rng(8).normal(0, 1, (3, 4)).astype(F)
    args = ([0.1, 0.2, 0.05], [1.5, -3.25, 0.0])
    for qd in ("qint8", "quint8"):  # float zero points make float-qparams tensors, as PyTorch
        a = torch.quantize_per_channel(torch.tensor(x), *map(torch.tensor, args), 0,
                                       getattr(torch, qd))  # fmt: skip
        b = mg.quantize_per_channel(mg.tensor(x), *map(mg.tensor, args), 0, getattr(mg, qd))
        assert b.qscheme() is mg.per_channel_affine_float_qparams
        np.testing.assert_array_equal(_codes(b), _codes(a))
        np.testing.assert_array_equal(_np(b.dequantize()), _np(a.dequantize()))


# ------------------------------------------------------------------ LayerNorm / GroupNorm / InstanceNorm
def _norms(lib):
    rng = np.random.default_rng(10)
    p = lambda *s: lib.nn.Parameter(lib.tensor(rng.uniform(0.5, 1.5, s).astype(F)))  # noqa: E731
    nnq = tnnq if lib is torch else mnnq
    return [(nnq.LayerNorm([37], p(37), p(37), 0.03, 120), (4, 37)),
            (nnq.LayerNorm([5, 7], p(5, 7), p(5, 7), 0.02, 90, eps=1e-3), (2, 3, 5, 7)),
            (nnq.LayerNorm([64], None, None, 0.04, 128, elementwise_affine=False), (3, 64)),
            (nnq.GroupNorm(2, 6, p(6), p(6), 0.03, 100), (3, 6, 5, 7)),
            (nnq.GroupNorm(3, 6, p(6), p(6), 0.05, 110), (2, 6, 8, 8)),
            (nnq.InstanceNorm1d(4, p(4), p(4), 0.03, 120, affine=True), (2, 4, 70)),
            (nnq.InstanceNorm2d(4, None, None, 0.03, 120), (2, 4, 5, 9)),
            (nnq.InstanceNorm3d(3, p(3), p(3), 0.03, 120, affine=True), (2, 3, 2, 4, 5))]  # fmt: skip


def test_quantized_norms_match_bit_for_bit():
    rng = np.random.default_rng(11)
    for (tmod, shape), (mmod, _) in zip(_norms(torch), _norms(mg)):
        x = rng.normal(0.3, 2, shape).astype(F)
        for qd, zp in (("quint8", 64), ("qint8", -10)):
            t = torch.quantize_per_tensor(torch.tensor(x), 0.05, zp, getattr(torch, qd))
            m = mg.quantize_per_tensor(mg.tensor(x), 0.05, zp, getattr(mg, qd))
            # NOTE: statistics from integer sums, 32-code vector blocks and a scalar rest
            _same(tmod(t), mmod(m), f"{tmod._get_name()} {shape} {qd}")
        assert repr(mmod) == repr(tmod) and list(mmod.state_dict()) == list(tmod.state_dict())


def _norm_net(lib, q):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = q.QuantStub(), q.DeQuantStub()
            self.conv = lib.nn.Conv2d(3, 4, 3)
            self.gn, self.inorm = lib.nn.GroupNorm(2, 4), lib.nn.InstanceNorm2d(4, affine=True)
            self.ln = lib.nn.LayerNorm([4, 5, 5])

        def forward(self, x):
            return self.dequant(self.ln(self.inorm(self.gn(self.conv(self.quant(x))))))

    net = _seeded(lib, Net(), 12).eval()
    net.qconfig = q.default_qconfig
    q.prepare(net, inplace=True)
    rng = np.random.default_rng(13)
    for _ in range(2):
        net(lib.tensor(rng.normal(0, 1, (2, 3, 7, 7)).astype(F)))
    return q.convert(net)


def test_norm_modules_convert_like_pytorch():
    t, m = _norm_net(torch, tq), _norm_net(mg, mq)
    assert [c._get_name() for c in m.children()] == [c._get_name() for c in t.children()]
    assert list(m.state_dict()) == list(t.state_dict())
    for name in ("gn", "inorm", "ln"):
        a, b = getattr(t, name), getattr(m, name)
        # NOTE: float32 convs in calibration can move an observer's range by an ulp
        assert float(b.scale) == pytest.approx(float(a.scale), rel=1e-6)
        assert int(b.zero_point) == int(a.zero_point)
    x = np.random.default_rng(14).normal(0, 1, (2, 3, 7, 7)).astype(F)
    yt, ym = _np(t(torch.tensor(x))), _np(m(mg.tensor(x)))
    assert np.abs(ym - yt).max() <= float(t.ln.scale) * 1.01


# ------------------------------------------------------------------ Conv3d / ConvTranspose
_CONVS = [("Conv3d", (3, 4, 3), {"padding": 1}, (2, 3, 4, 5, 5), "x86"),
          ("Conv3d", (4, 6, (1, 3, 2)), {"stride": (1, 2, 1), "groups": 2, "dilation": (1, 1, 2)},
           (2, 4, 3, 6, 7), "default"),
          ("ConvTranspose2d", (3, 4, 3), {"stride": 2, "padding": 1, "output_padding": 1},
           (2, 3, 5, 5), "default"),
          ("ConvTranspose2d", (4, 6, (2, 3)), {"groups": 2, "dilation": (1, 2), "bias": False},
           (2, 4, 5, 6), "default"),
          ("ConvTranspose1d", (3, 4, 3), {"stride": 2}, (2, 3, 7), "default")]  # fmt: skip


def _conv_net(lib, q, kind, args, kw, shape, qc):
    conv = getattr(lib.nn, kind)(*args, **kw)
    m = _seeded(lib, lib.nn.Sequential(q.QuantStub(), conv, q.DeQuantStub()), 15).eval()
    m.qconfig = q.get_default_qconfig("x86") if qc == "x86" else q.default_qconfig
    q.prepare(m, inplace=True)
    for i in range(2):
        m(lib.tensor(np.random.default_rng(i + 1).normal(0, 1, shape).astype(F)))
    return q.convert(m)


@pytest.mark.parametrize("case", range(len(_CONVS)))
def test_quantized_conv3d_and_transposed_match(case):
    kind, args, kw, shape, qc = _CONVS[case]
    t, m = (
        _conv_net(torch, tq, kind, args, kw, shape, qc),
        _conv_net(mg, mq, kind, args, kw, shape, qc),
    )
    assert m[1]._get_name() == t[1]._get_name() and list(m[1].state_dict()) == list(
        t[1].state_dict()
    )
    tw, mw = t[1].weight(), m[1].weight()
    assert mw.qscheme().name == str(tw.qscheme()).split(".")[1]
    np.testing.assert_array_equal(_codes(mw), _codes(tw))
    x = np.random.default_rng(9).normal(0, 1, shape).astype(F)
    # NOTE: float32 convs in calibration can move an observer's range by an ulp
    assert float(m[1].scale) == pytest.approx(float(t[1].scale), rel=1e-6)
    yt, ym = _np(t(torch.tensor(x))), _np(m(mg.tensor(x)))
    assert ym.shape == yt.shape and np.abs(ym - yt).max() <= 1e-5
    # the kernel alone, on the same quantized input and qparams: identical codes
    tx = t[0](torch.tensor(x))
    mx = mg.quantize_per_tensor(mg.tensor(x), tx.q_scale(), tx.q_zero_point(), mg.quint8)
    m[1].scale, m[1].zero_point = t[1].scale, t[1].zero_point
    assert repr(m[1]) == repr(t[1])
    _same(t[1](tx), m[1](mx), kind)


def test_quantized_conv_errors():
    ct = mg.nn.Sequential(mq.QuantStub(), mg.nn.ConvTranspose2d(2, 2, 3), mq.DeQuantStub()).eval()
    ct.qconfig = mq.get_default_qconfig("x86")
    mq.prepare(ct, inplace=True)
    ct(mg.randn(1, 2, 4, 4))
    with pytest.raises(RuntimeError, match="Per channel"):
        mq.convert(ct)
    c3 = mnnq.Conv3d(2, 2, 3)
    with pytest.raises(ValueError, match="5 dims"):
        c3(mg.quantize_per_tensor(mg.randn(1, 2, 4, 4), 0.1, 0, mg.quint8))
    with pytest.raises(NotImplementedError, match="padding_mode"):
        mnnq.Conv3d(2, 2, 3, padding_mode="reflect")


# ------------------------------------------------------------------ copies, pickles, module paths
def test_quantized_tensors_and_models_deepcopy_and_pickle(tmp_path):
    import copy
    import pickle

    qs = [mg.quantize_per_tensor(mg.tensor([1.0, -2.0]), 0.5, 1, mg.qint8),
          mg.quantize_per_channel(mg.randn(3, 2), mg.tensor([0.1, 0.2, 0.3]),
                                  mg.tensor([0, 1, 2]), 0, mg.quint8),
          mg.quantize_per_channel(mg.randn(3, 2), mg.tensor([0.1, 0.2, 0.3]),
                                  mg.tensor([0.5, 1.0, 2.5]), 0, mg.quint8)]  # fmt: skip
    for q in qs:
        for c in (copy.deepcopy(q), pickle.loads(pickle.dumps(q))):
            assert c.equal(q) and c.qscheme() is q.qscheme() and c._data is not q._data
    net = mg.nn.Sequential(mg.nn.LSTM(4, 3), mg.nn.GRUCell(4, 3), mg.nn.Linear(3, 2))
    m = mq.quantize_dynamic(_seeded(mg, net, 16))
    x = mg.randn(5, 2, 4)
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert mg.equal(c[0](x)[0], m[0](x)[0]) and mg.equal(c[1](x[0]), m[1](x[0]))
    mg.save(m, tmp_path / "m.pt")
    assert mg.equal(mg.load(tmp_path / "m.pt", weights_only=False)[0](x)[0], m[0](x)[0])


def test_new_module_paths_resolve_as_torch():
    import importlib

    import manygrad.compat as compat

    compat.install()
    try:
        for name, attrs in (("torch.ao.nn.quantized.dynamic", ("LSTM", "GRU", "LSTMCell",
                                                               "GRUCell", "RNNCell")),
                            ("torch.nn.quantized.dynamic", ("LSTM",)),
                            ("torch.ao.nn.quantized", ("Embedding", "EmbeddingBag", "LayerNorm",
                                                       "GroupNorm", "InstanceNorm2d", "Conv3d",
                                                       "ConvTranspose2d")),
                            ("torch.ao.quantization", ("float16_dynamic_qconfig",
                                                       "float_qparams_weight_only_qconfig"))):  # fmt: skip
            mod = importlib.import_module(name)
            for a in attrs:
                assert getattr(mod, a) is not None, (name, a)
    finally:
        compat.uninstall()


# ------------------------------------------------------------------ PReLU, BatchNorm3d, ConvTranspose3d
def _prelu_net(lib, q, n):
    m = lib.nn.Sequential(q.QuantStub(), lib.nn.Conv2d(3, 4, 1), lib.nn.PReLU(n), q.DeQuantStub())
    m = _seeded(lib, m, 17).eval()
    with lib.no_grad():
        m[2].weight.copy_(lib.tensor(np.linspace(-0.8, 0.6, n).astype(F)))
    m.qconfig = q.default_qconfig
    m[2].qconfig = q.QConfig(activation=q.default_observer,
                             weight=q.MinMaxObserver.with_args(dtype=lib.quint8))  # fmt: skip
    q.prepare(m, inplace=True)
    m(lib.tensor(np.random.default_rng(18).normal(0, 1, (2, 3, 5, 6)).astype(F)))
    return q.convert(m)


@pytest.mark.parametrize("n", [1, 4])
def test_quantized_prelu_matches(n):
    t, m = _prelu_net(torch, tq, n), _prelu_net(mg, mq, n)
    assert m[2]._get_name() == "QuantizedPReLU" and list(m.state_dict()) == list(t.state_dict())
    np.testing.assert_array_equal(_codes(m[2].weight), _codes(t[2].weight))
    rng = np.random.default_rng(19)
    for _ in range(3):  # the kernel on shared inputs: integer products, identical codes
        x = rng.normal(0, 2, (2, 4, 7, 9)).astype(F)
        s, z = float(rng.uniform(0.01, 0.1)), int(rng.integers(0, 256))
        tx = torch.quantize_per_tensor(torch.tensor(x), s, z, torch.quint8)
        mx = mg.quantize_per_tensor(mg.tensor(x), s, z, mg.quint8)
        t[2].scale, t[2].zero_point = m[2].scale, m[2].zero_point = 0.03, 100
        _same(t[2](tx), m[2](mx))


def test_quantized_batchnorm3d_and_conv_transpose3d_match():
    rng = np.random.default_rng(20)
    stats = [rng.uniform(0.5, 1.5, 3).astype(F) for _ in range(4)]
    w = rng.uniform(-0.5, 0.5, (3, 4, 3, 3, 3)).astype(F)
    b = rng.uniform(-0.2, 0.2, 4).astype(F)
    x = rng.normal(0, 2, (2, 3, 4, 5, 6)).astype(F)
    outs = []
    for lib, nnq in ((torch, tnnq), (mg, mnnq)):
        bn = nnq.BatchNorm3d(3)
        with lib.no_grad():
            for buf, v in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), stats):
                buf.copy_(lib.tensor(v))
        bn.scale, bn.zero_point = lib.tensor([0.08]), lib.tensor([100])
        ct = nnq.ConvTranspose3d(3, 4, 3, stride=2, padding=1, output_padding=1)
        ct.set_weight_bias(lib.quantize_per_tensor(lib.tensor(w), 0.004, 0, lib.qint8),
                           lib.tensor(b))  # fmt: skip
        ct.scale, ct.zero_point = 0.03, 60
        q = lib.quantize_per_tensor(lib.tensor(x), 0.05, 64, lib.quint8)
        outs.append(
            (bn(q), ct(q), repr(bn), repr(ct), list(bn.state_dict()), list(ct.state_dict()))
        )
    (tb, tc, *trest), (mb, mc, *mrest) = outs
    _same(tb, mb, "BatchNorm3d")
    _same(tc, mc, "ConvTranspose3d")
    assert trest == mrest
