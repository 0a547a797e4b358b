"""Quantized tensors through pooling, mean, resizing, threshold and the functional forms of
``torch.ao.nn.quantized.functional`` (conv1d/2d/3d, linear, celu, ...): codes and qparams
compared with PyTorch's on the same inputs (its default x86 engine; the products also with
qnnpack, whose int32 sums are exact as manygrad's). An odd zero point catches rounding of
codes minus the zero point where PyTorch rounds the raw codes."""

import numpy as np
import pytest
import torch
import torch.ao.nn.quantized.functional as tqF

import manygrad as mg
import manygrad.ao.nn.quantized.functional as mqF

pytestmark = pytest.mark.filterwarnings("ignore")


def _q(lib, x, scale=0.05, zp=61):
    return lib.quantize_per_tensor(lib.tensor(x), scale, zp, lib.quint8)


def _w(lib, w, per_channel=False):
    if per_channel:
        sc = (np.abs(w).reshape(w.shape[0], -1).max(1) / 127).astype(np.float64)
        return lib.quantize_per_channel(lib.tensor(w), lib.tensor(sc),
                                        lib.tensor(np.zeros(w.shape[0], np.int64)), 0, lib.qint8)  # fmt: skip
    return lib.quantize_per_tensor(lib.tensor(w), float(np.abs(w).max() / 127), 0, lib.qint8)


def _out(o):
    return o.int_repr().numpy(), o.q_scale(), o.q_zero_point()


CASES = {
    "avg_pool1d": (
        lambda lib, qf, x: lib.nn.functional.avg_pool1d(_q(lib, x), 3, 2, 1),
        [(2, 3, 9)],
    ),
    "avg_pool2d": (
        lambda lib, qf, x: lib.nn.functional.avg_pool2d(_q(lib, x), 3, 2, 1),
        [(2, 3, 9, 9)],
    ),
    "avg_pool2d_ceil": (
        lambda lib, qf, x: lib.nn.functional.avg_pool2d(_q(lib, x), 2, 2, 0, True, False),
        [(2, 3, 9, 9)],
    ),  # fmt: skip
    "avg_pool2d_divisor": (
        lambda lib, qf, x: qf.avg_pool2d(_q(lib, x), 3, 2, 1, divisor_override=5),
        [(2, 3, 9, 9)],
    ),  # fmt: skip
    "avg_pool3d_divisor": (
        lambda lib, qf, x: qf.avg_pool3d(_q(lib, x), 2, 1, 1, divisor_override=3),
        [(2, 3, 4, 5, 5)],
    ),  # fmt: skip
    "avg_pool3d": (
        lambda lib, qf, x: lib.nn.functional.avg_pool3d(_q(lib, x), 2),
        [(2, 3, 5, 6, 6)],
    ),
    "avg_pool3d_pad": (
        lambda lib, qf, x: qf.avg_pool3d(_q(lib, x), (2, 3, 2), (1, 2, 2), (1, 0, 1), True, False),
        [(2, 3, 5, 7, 6)],
    ),  # fmt: skip
    "adaptive1d": (
        lambda lib, qf, x: lib.nn.functional.adaptive_avg_pool1d(_q(lib, x), 4),
        [(2, 3, 11)],
    ),
    "adaptive3d": (
        lambda lib, qf, x: qf.adaptive_avg_pool3d(_q(lib, x), (2, 3, 4)),
        [(2, 3, 5, 7, 6)],
    ),
    "mean_hw": (lambda lib, qf, x: _q(lib, x).mean([2, 3]), [(2, 3, 9, 9)]),
    "mean_all": (lambda lib, qf, x: _q(lib, x).mean(), [(2, 3, 9)]),
    "mean_keep": (lambda lib, qf, x: lib.mean(_q(lib, x), -1, True), [(2, 3, 9)]),
    "area": (
        lambda lib, qf, x: lib.nn.functional.interpolate(_q(lib, x), size=(3, 4), mode="area"),
        [(2, 3, 7, 9)],
    ),  # fmt: skip
    "upsample_nearest": (
        lambda lib, qf, x: qf.upsample_nearest(_q(lib, x), size=(7, 9)),
        [(2, 3, 5, 6)],
    ),
    "max_pool1d": (lambda lib, qf, x: qf.max_pool1d(_q(lib, x), 3, 2, 1), [(2, 3, 9)]),
    "threshold": (lambda lib, qf, x: lib.nn.functional.threshold(_q(lib, x), 0.5, -1.0), [(4, 50)]),
    "qF_threshold": (lambda lib, qf, x: qf.threshold(_q(lib, x), 0.3, 1.0), [(4, 200)]),
    "celu": (lambda lib, qf, x: qf.celu(_q(lib, x), 0.03, 100, 1.5), [(4, 200)]),
}
# NOTE: PyTorch's bilinear weights differ from float32's by an ulp now and then, which
# moves an exact tie: one code, rarely
RESIZE = {
    "bilinear": (
        lambda lib, qf, x: qf.interpolate(_q(lib, x), scale_factor=1.7, mode="bilinear"),
        [(2, 3, 5, 6)],
    ),  # fmt: skip
    "bilinear_ac": (
        lambda lib, qf, x: lib.nn.functional.interpolate(
            _q(lib, x), size=(11, 4), mode="bilinear", align_corners=True
        ),
        [(2, 3, 5, 6)],
    ),  # fmt: skip
    "upsample_bilinear": (
        lambda lib, qf, x: qf.upsample_bilinear(_q(lib, x), scale_factor=2),
        [(2, 3, 5, 6)],
    ),  # fmt: skip
}
# NOTE: products: qnnpack adds the bias in int32 (rounded), manygrad in float as fbgemm, so
# rare one-code differences
PRODUCTS = {
    "conv2d_per_channel_groups": (
        lambda lib, qf, x, w, b: qf.conv2d(
            _q(lib, x), _w(lib, w, True), lib.tensor(b), 2, 0, 1, 2, scale=0.2, zero_point=70
        ),
        [(2, 4, 7, 7), (6, 2, 3, 3), (6,)],
    ),  # fmt: skip
    "conv1d": (
        lambda lib, qf, x, w, b: qf.conv1d(
            _q(lib, x), _w(lib, w, True), lib.tensor(b), 1, 2, scale=0.2, zero_point=70
        ),
        [(2, 3, 9), (4, 3, 5), (4,)],
    ),  # fmt: skip
    "conv3d": (
        lambda lib, qf, x, w, b: qf.conv3d(
            _q(lib, x), _w(lib, w, True), lib.tensor(b), 1, 1, scale=0.2, zero_point=70
        ),
        [(1, 2, 4, 5, 5), (3, 2, 3, 3, 3), (3,)],
    ),  # fmt: skip
    "linear": (
        lambda lib, qf, x, w, b: qf.linear(_q(lib, x), _w(lib, w), lib.tensor(b), 0.2, 70),
        [(5, 8), (6, 8), (6,)],
    ),  # fmt: skip
    "linear_input_qparams": (
        lambda lib, qf, x, w: qf.linear(_q(lib, x), _w(lib, w)),
        [(5, 8), (6, 8)],
    ),
    "conv2d": (
        lambda lib, qf, x, w, b: qf.conv2d(
            _q(lib, x), _w(lib, w), lib.tensor(b), 1, 1, scale=0.2, zero_point=70
        ),
        [(2, 3, 7, 7), (4, 3, 3, 3), (4,)],
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_quantized_ops_match(name):
    fn, shapes = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))  # NOTE: a seed per case, stable
    xs = [rng.normal(0, 2, s).astype(np.float32) for s in shapes]
    (ct, st, zt), (cm, sm, zm) = _out(fn(torch, tqF, *xs)), _out(fn(mg, mqF, *xs))
    assert (st, zt) == (sm, zm) and ct.shape == cm.shape
    np.testing.assert_array_equal(cm, ct)


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_quantized_products_within_one_code(name, qnnpack):
    _within_one_code(*PRODUCTS[name], name)


@pytest.mark.parametrize("name", sorted(RESIZE))
def test_quantized_bilinear_within_one_code(name):
    _within_one_code(*RESIZE[name], name)


def _within_one_code(fn, shapes, name):
    rng = np.random.default_rng(sum(map(ord, name)))
    xs = [rng.normal(0, 2, s).astype(np.float32) for s in shapes]
    (ct, st, zt), (cm, sm, zm) = _out(fn(torch, tqF, *xs)), _out(fn(mg, mqF, *xs))
    assert (st, zt) == (sm, zm) and ct.shape == cm.shape
    d = np.abs(ct.astype(int) - cm.astype(int))
    assert d.max() <= 1 and np.mean(d > 0) < 0.05


def test_quantized_functional_errors():
    x = _q(mg, np.ones((1, 2, 4, 4), np.float32))
    w = _w(mg, np.ones((2, 2, 1, 1), np.float32))
    with pytest.raises(NotImplementedError, match="zero-padding"):
        mqF.conv2d(x, w, None, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"\(N, C, L\)"):
        mqF.conv1d(x, w, None)
    with pytest.raises(ValueError, match="must be quantized"):
        mqF.interpolate(mg.ones(1, 1, 2, 2), scale_factor=2)
    with pytest.raises(RuntimeError, match="alpha"):
        mqF.celu(x, 0.1, 0, 0.0)


def test_mean_of_a_quantized_conv_output_matches():
    """PyTorch's quantized convolutions give channels-last tensors, whose mean takes the
    dequantized path (rounding ties otherwise than the raw codes' mean)."""
    rng = np.random.default_rng(9)
    x, w, b = (rng.normal(0, 1, s).astype(np.float32) for s in ((2, 8, 4, 4), (64, 8, 3, 3), (64,)))
    outs = []
    for lib, qf in ((torch, tqF), (mg, mqF)):
        y = qf.conv2d(_q(lib, x), _w(lib, w, True), lib.tensor(b), 2, 1, scale=0.11, zero_point=61)
        outs.append(_out(y.mean([2, 3])))
    assert outs[0][1:] == outs[1][1:]
    np.testing.assert_array_equal(outs[1][0], outs[0][0])


@pytest.mark.parametrize("dim", [1, 2, None])
def test_quantized_softmax_module_matches(dim):
    import manygrad.ao.nn.quantized as mnnq

    x = np.random.default_rng(4).normal(0, 2, (4, 6, 9)).astype(np.float32)
    a = torch.ao.nn.quantized.Softmax(dim, 1 / 256, 0)(_q(torch, x))
    b = mnnq.Softmax(dim, 1 / 256, 0)(_q(mg, x))
    assert (a.q_scale(), a.q_zero_point()) == (b.q_scale(), b.q_zero_point())
    np.testing.assert_array_equal(b.int_repr().numpy(), a.int_repr().numpy())
    assert repr(mnnq.Softmax(dim)) == repr(torch.ao.nn.quantized.Softmax(dim))
    assert mnnq.MaxPool2d is mg.nn.MaxPool2d


@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_dynamic_linear_relu_matches(dtype):
    """quantize_dynamic swaps a fused nni.LinearReLU for the dynamic LinearReLU."""
    import manygrad.ao.nn.intrinsic as mnni
    import manygrad.ao.quantization as mq

    x = np.random.default_rng(6).normal(0, 1, (5, 8)).astype(np.float32)
    outs = []
    for lib, q, nni in ((torch, torch.ao.quantization, torch.ao.nn.intrinsic), (mg, mq, mnni)):
        torch.manual_seed(0)
        t = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
        m = t
        if lib is mg:
            m = mg.nn.Sequential(mg.nn.Linear(8, 6), mg.nn.ReLU(), mg.nn.Linear(6, 3))
            m.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
        q.fuse_modules(m.eval(), ["0", "1"], inplace=True)
        qm = q.quantize_dynamic(m, {nni.LinearReLU, lib.nn.Linear}, dtype=getattr(lib, dtype))
        outs.append((qm[0]._get_name(), qm(lib.tensor(x)).detach().numpy()))
    assert outs[0][0] == outs[1][0] == "DynamicQuantizedLinearReLU"
    np.testing.assert_array_equal(outs[1][1], outs[0][1])
