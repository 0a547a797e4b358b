"""torchvision's int8 MobileNet V3 (``quantize=True``), made from a quantization-aware
training checkpoint as torchvision makes it, compared with PyTorch's."""

import numpy as np
import pytest
import torch

import manygrad as mg

tq = torch.ao.quantization
pytestmark = pytest.mark.filterwarnings("ignore")


def _np(t):
    t = t.dequantize() if getattr(t, "is_quantized", False) else t
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.detach().cpu().numpy()


def test_mobilenet_v3_large_quantized_from_qat_checkpoint(tv, qnnpack):
    """torchvision's int8 MobileNet V3 path: a QAT checkpoint (made here by torchvision with
    trained batch-norm statistics) loads strictly into manygrad's quantize=True builder and
    the converted model gives PyTorch's codes."""
    from manygrad.vision.models.quantization import mobilenetv3 as m3

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    batch = lambda: rng.uniform(0, 1, (2, 3, 48, 48)).astype(np.float32)  # noqa: E731
    tm = tv.models.quantization.mobilenet_v3_large(num_classes=10)
    for mod in tm.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = None  # NOTE: cumulative statistics, so activations keep their scale
    with torch.no_grad():
        for _ in range(2):
            tm(torch.tensor(batch()))
        tm.classifier[3].weight.mul_(30.0)
    tm.fuse_model(is_qat=True)
    tm.qconfig = tq.get_default_qat_qconfig("qnnpack")
    tq.prepare_qat(tm, inplace=True)
    tm.eval()
    with torch.no_grad():
        tm(torch.tensor(batch()))
    sd = {k: mg.tensor(v.numpy()) for k, v in tm.state_dict().items()}

    class Entry:
        meta = {"categories": [str(i) for i in range(10)], "backend": "qnnpack"}

        def get_state_dict(self, progress=True, check_hash=True):
            return sd

    conf = m3._mobilenet_v3_conf("mobilenet_v3_large")
    mm = m3._mobilenet_v3_model(*conf, Entry(), False, True)
    assert not mm.training
    tq.convert(tm, inplace=True)
    # every converted layer: the same output qparams, int8 weights and float bias
    mods = dict(mm.named_modules())
    n_qparams = n_weights = 0
    for name, a in tm.named_modules():
        b = mods[name]
        assert type(a).__name__ == type(b).__name__ or "Quantized" + type(b).__name__ == type(
            a).__name__ or type(a).__name__ == b._get_name(), name  # fmt: skip
        if hasattr(a, "scale") and not isinstance(a.scale, torch.nn.Module):
            assert float(a.scale) == float(b.scale) and int(a.zero_point) == int(b.zero_point), name
            n_qparams += 1
        if a._get_name().startswith(("QuantizedConv", "QuantizedLinear")):
            wa, wb = a.weight(), b.weight()
            np.testing.assert_array_equal(_np(wb.int_repr()), _np(wa.int_repr()))
            assert wa.q_scale() == wb.q_scale()
            np.testing.assert_allclose(_np(b.bias()), _np(a.bias()), rtol=1e-6, atol=1e-7)
            n_weights += 1
    assert n_qparams > 100 and n_weights > 60
    x = batch()
    # NOTE: qnnpack adds the bias in int32 (rounded), manygrad in float as fbgemm: rare
    # one-step flips, which the deep network then spreads
    a = _np(tm.features[:2](tm.quant(torch.tensor(x))))
    b = _np(mm.features[:2](mm.quant(mg.tensor(x))))
    step = float(tm.features[1].skip_add.scale)
    assert np.abs(a).max() > 1 and np.abs(a - b).max() <= 2 * step * 1.01
    assert np.mean(np.abs(a - b) > 1e-6) < 0.01
    yt, ym = _np(tm.eval()(torch.tensor(x))), _np(mm(mg.tensor(x)))
    assert np.abs(yt).max() > 1 and np.corrcoef(yt.ravel(), ym.ravel())[0, 1] > 0.95
