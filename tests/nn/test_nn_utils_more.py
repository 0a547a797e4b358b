"""nn.utils.fusion (BatchNorm folded into conv/linear), nn.utils.stateless, skip_init,
nn.modules.utils and random.fork_rng against PyTorch."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.nn.utils import fusion

torch = pytest.importorskip("torch")


def _bn_with_stats(lib, n, seed):
    rng = np.random.default_rng(seed)
    bn = lib.nn.BatchNorm2d(n) if lib is torch else mg.nn.BatchNorm2d(n)
    vals = {"weight": rng.uniform(0.5, 2, n), "bias": rng.standard_normal(n),
            "running_mean": rng.standard_normal(n), "running_var": rng.uniform(0.5, 2, n)}  # fmt: skip
    bn.load_state_dict({**bn.state_dict(), **{k: lib.tensor(v.astype(np.float32))
                                              for k, v in vals.items()}})  # fmt: skip
    return bn.eval()


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_fuse_conv_bn_equals_conv_then_bn_and_pytorchs(transpose, bias, device):
    tcls = torch.nn.ConvTranspose2d if transpose else torch.nn.Conv2d
    mcls = mg.nn.ConvTranspose2d if transpose else mg.nn.Conv2d
    torch.manual_seed(0)
    tc = tcls(3, 4, 3, bias=bias).eval()
    mc = mcls(3, 4, 3, bias=bias).eval()
    mc.load_state_dict({k: mg.tensor(v.numpy()) for k, v in tc.state_dict().items()})
    tb, mb = _bn_with_stats(torch, 4, 1), _bn_with_stats(mg, 4, 1)
    tf = torch.nn.utils.fusion.fuse_conv_bn_eval(tc, tb, transpose=transpose)
    mf = fusion.fuse_conv_bn_eval(mc, mb, transpose=transpose).to(device)
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 6)).astype(np.float32)
    want = tf(torch.tensor(x)).detach().numpy()
    got = mf(mg.tensor(x, device=device)).cpu().detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    ref = mb.to(device)(mc.to(device)(mg.tensor(x, device=device))).cpu().detach().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert isinstance(mf.weight, mg.nn.Parameter) and isinstance(mf.bias, mg.nn.Parameter)


def test_fuse_linear_bn():
    torch.manual_seed(0)
    tl, ml = torch.nn.Linear(5, 4).eval(), mg.nn.Linear(5, 4).eval()
    ml.load_state_dict({k: mg.tensor(v.numpy()) for k, v in tl.state_dict().items()})
    tb = torch.nn.BatchNorm1d(4).eval()
    mb = mg.nn.BatchNorm1d(4).eval()
    rng = np.random.default_rng(0)
    for m in (tb, mb):
        lib = torch if m is tb else mg
        m.running_mean.copy_(lib.tensor(rng.standard_normal(4).astype(np.float32)))
        m.running_var.copy_(lib.tensor(rng.uniform(0.5, 2, 4).astype(np.float32)))
    mb.running_mean.copy_(mg.tensor(tb.running_mean.numpy()))
    mb.running_var.copy_(mg.tensor(tb.running_var.numpy()))
    x = rng.standard_normal((3, 5)).astype(np.float32)
    want = torch.nn.utils.fusion.fuse_linear_bn_eval(tl, tb)(torch.tensor(x)).detach().numpy()
    got = fusion.fuse_linear_bn_eval(ml, mb)(mg.tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="eval"):
        fusion.fuse_linear_bn_eval(ml.train(), mb)


def test_stateless_skip_init_and_tuple_helpers():
    from manygrad.nn.modules.utils import _ntuple, _pair, _reverse_repeat_tuple, _triple

    lin = mg.nn.Linear(2, 2)
    w = mg.zeros(2, 2)
    out = mg.nn.utils.stateless.functional_call(lin, {"weight": w}, (mg.ones(1, 2),))
    np.testing.assert_array_equal(out.detach().numpy(), lin.bias.detach().numpy()[None])
    m = mg.nn.utils.skip_init(mg.nn.Linear, 3, 4)
    assert tuple(m.weight.shape) == (4, 3)
    from torch.nn.modules import utils as tu

    for v in (3, (3, 5), [1, 2]):
        assert _pair(v) == tu._pair(v) and _triple(3) == tu._triple(3)
    assert _ntuple(4)(2) == tu._ntuple(4)(2)
    assert _reverse_repeat_tuple((1, 2, 3), 2) == tu._reverse_repeat_tuple((1, 2, 3), 2)


def test_fork_rng_restores_every_generator():
    mg.manual_seed(0)
    a, b = mg.randn(3), mg.randn(3, device="fakegpu")
    mg.manual_seed(0)
    with mg.random.fork_rng():
        mg.randn(5)
        mg.rand(4, device="fakegpu")
    np.testing.assert_array_equal(mg.randn(3).numpy(), a.numpy())
    np.testing.assert_array_equal(mg.randn(3, device="fakegpu").cpu().numpy(), b.cpu().numpy())
    mg.manual_seed(0)
    with mg.random.fork_rng(enabled=False):
        mg.randn(5)
    assert not np.array_equal(mg.randn(3).numpy(), a.numpy())
