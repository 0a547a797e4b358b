"""nn.init's deprecated names and nn.utils.clip_grad_norm (PyTorch's FutureWarning, then the
in-place function), and nn.utils.fusion (BatchNorm folded into conv / linear) against
PyTorch's fused weights, on every device."""

import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad.nn.utils import fusion

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(0)

# deprecated name, in-place name, arguments after the tensor, shape
ALIASES = [
    ("uniform", "uniform_", (-0.5, 0.5), (4, 5)),
    ("normal", "normal_", (0.0, 2.0), (4, 5)),
    ("constant", "constant_", (0.25,), (4, 5)),
    ("eye", "eye_", (), (4, 5)),
    ("dirac", "dirac_", (), (4, 4, 3)),
    ("xavier_uniform", "xavier_uniform_", (2.0,), (4, 5)),
    ("xavier_normal", "xavier_normal_", (), (4, 5)),
    ("kaiming_uniform", "kaiming_uniform_", (0.1,), (4, 5, 3)),
    ("kaiming_normal", "kaiming_normal_", (), (4, 5)),
    ("orthogonal", "orthogonal_", (), (4, 6)),
    ("sparse", "sparse_", (0.5,), (6, 4)),
]  # fmt: skip


def _warning_of(fn, *args):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = fn(*args)
    assert len(got) == 1, [str(w.message) for w in got]
    return out, got[0]


@pytest.mark.parametrize("old,new,args,shape", ALIASES, ids=[a[0] for a in ALIASES])
def test_deprecated_init_names_warn_as_torch_and_fill_in_place(old, new, args, shape, device):
    _, want = _warning_of(getattr(torch.nn.init, old), torch.empty(shape), *args)
    t = mg.empty(*shape, device=device)
    out, got = _warning_of(getattr(mg.nn.init, old), t, *args)
    assert got.category is want.category is FutureWarning
    assert str(got.message) == str(want.message)
    assert got.filename == __file__  # stacklevel=2: the warning points at the caller
    assert out is t and getattr(mg.nn.init, old).__name__ == getattr(torch.nn.init, old).__name__
    mg.manual_seed(3)
    with pytest.warns(FutureWarning):
        getattr(mg.nn.init, old)(t, *args)
    mg.manual_seed(3)
    ref = getattr(mg.nn.init, new)(mg.empty(*shape, device=device), *args)
    np.testing.assert_array_equal(t.cpu().numpy(), ref.cpu().numpy())  # the same draw
    assert set(torch.nn.init.__all__) <= set(mg.nn.init.__all__)


def test_clip_grad_norm_warns_as_torch_and_clips(device):
    g = RNG.standard_normal((3, 4))
    tp = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    mp = mg.zeros(3, 4, dtype=mg.float64, device=device).requires_grad_()
    tp.grad, mp.grad = torch.tensor(g), mg.tensor(g, device=device)
    want_norm, want = _warning_of(torch.nn.utils.clip_grad_norm, [tp], 1.0)
    got_norm, got = _warning_of(mg.nn.utils.clip_grad_norm, [mp], 1.0)
    assert got.category is want.category is FutureWarning
    assert str(got.message) == str(want.message) and got.filename == __file__
    np.testing.assert_allclose(float(got_norm), float(want_norm), rtol=1e-12)
    np.testing.assert_allclose(mp.grad.cpu().numpy(), tp.grad.numpy(), rtol=1e-12)


def _copy_into(mm, tm):
    mm.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})


def _bn_pair(cls, n, affine=True):
    tb = getattr(torch.nn, cls)(n, affine=affine).double()
    with torch.no_grad():
        tb.running_mean.copy_(torch.tensor(RNG.standard_normal(n)))
        tb.running_var.copy_(torch.tensor(RNG.uniform(0.5, 2.0, n)))
        if affine:
            tb.weight.copy_(torch.tensor(RNG.uniform(0.5, 2.0, n)))
            tb.bias.copy_(torch.tensor(RNG.standard_normal(n)))
    mb = getattr(mg.nn, cls)(n, affine=affine).to(mg.float64)
    _copy_into(mb, tb)
    return tb.eval(), mb.eval()


CONVS = [
    ("Conv1d", "BatchNorm1d", dict(kernel_size=3), (2, 4, 9), False),
    ("Conv2d", "BatchNorm2d", dict(kernel_size=3, groups=2), (2, 4, 6, 6), False),
    ("Conv3d", "BatchNorm3d", dict(kernel_size=2, bias=False), (1, 4, 4, 4, 4), False),
    ("ConvTranspose1d", "BatchNorm1d", dict(kernel_size=3, stride=2), (2, 4, 5), True),
    ("ConvTranspose2d", "BatchNorm2d", dict(kernel_size=3, dilation=2), (2, 4, 5, 5), True),
    ("ConvTranspose2d", "BatchNorm2d", dict(kernel_size=2, bias=False), (2, 4, 5, 5), True),
]  # fmt: skip


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("conv,bn,kw,shape,transpose", CONVS, ids=[c[0] for c in CONVS])
def test_fused_conv_equals_conv_then_bn_and_torchs_weights(conv, bn, kw, shape, transpose,
                                                          affine, device):  # fmt: skip
    torch.manual_seed(0)
    tc = getattr(torch.nn, conv)(4, 6, **kw).double().eval()
    mc = getattr(mg.nn, conv)(4, 6, **kw).to(mg.float64).eval()
    _copy_into(mc, tc)
    tb, mb = _bn_pair(bn, 6, affine)
    tf = torch.nn.utils.fusion.fuse_conv_bn_eval(tc, tb, transpose=transpose)
    mf = fusion.fuse_conv_bn_eval(mc.to(device), mb.to(device), transpose=transpose)
    assert type(mf) is type(mc) and mf is not mc
    for name in ("weight", "bias"):
        got, want = getattr(mf, name), getattr(tf, name)
        assert isinstance(got, mg.nn.Parameter) and got.requires_grad == want.requires_grad
        assert got.dtype == mg.float64 and got.device == mg.device(device)
        np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(),
                                   rtol=1e-12, atol=1e-14)  # fmt: skip
    x = RNG.standard_normal(shape)
    fused = mf(mg.tensor(x, device=device)).detach().cpu().numpy()
    ref = mb(mc(mg.tensor(x, device=device))).detach().cpu().numpy()
    np.testing.assert_allclose(fused, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused, tf(torch.tensor(x)).detach().numpy(), rtol=1e-10,
                               atol=1e-12)  # fmt: skip


def test_fuse_conv_bn_weights_keeps_each_dtype_as_torch():
    rm, rv = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)
    w, b = RNG.standard_normal((3, 2, 2)), RNG.standard_normal(3)
    args_t = (torch.tensor(w, dtype=torch.float32), torch.tensor(b), torch.tensor(rm),
              torch.tensor(rv), 1e-5, None, None)  # fmt: skip
    args_m = (mg.tensor(w, dtype=mg.float32), mg.tensor(b), mg.tensor(rm), mg.tensor(rv), 1e-5,
              None, None)  # fmt: skip
    tw, tb = torch.nn.utils.fusion.fuse_conv_bn_weights(*args_t)
    mw, mb = fusion.fuse_conv_bn_weights(*args_m)
    assert (str(mw.dtype), str(mb.dtype)) == ("manygrad.float32", "manygrad.float64")
    assert (tw.dtype, tb.dtype) == (torch.float32, torch.float64)
    np.testing.assert_allclose(mw.detach().numpy(), tw.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(mb.detach().numpy(), tb.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("features", [4, 1])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_equals_linear_then_bn_and_torchs(features, bias, device):
    torch.manual_seed(0)
    tl = torch.nn.Linear(5, 4, bias=bias).double().eval()
    ml = mg.nn.Linear(5, 4, bias=bias).to(mg.float64).eval()
    _copy_into(ml, tl)
    tb, mb = _bn_pair("BatchNorm1d", features)
    tf = torch.nn.utils.fusion.fuse_linear_bn_eval(tl, tb)
    mf = fusion.fuse_linear_bn_eval(ml.to(device), mb.to(device))
    for name in ("weight", "bias"):
        got, want = getattr(mf, name), getattr(tf, name)
        assert got.requires_grad == want.requires_grad
        np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(),
                                   rtol=1e-12, atol=1e-14)  # fmt: skip
    if not bias and features == 1:
        return  # NOTE: the fused bias has shape (1,), which mg's F.linear does not broadcast
    x = RNG.standard_normal((3, 5))
    got = mf(mg.tensor(x, device=device)).detach().cpu().numpy()
    np.testing.assert_allclose(got, tf(torch.tensor(x)).detach().numpy(), rtol=1e-10)
    if features == 4:
        ref = mb(ml(mg.tensor(x, device=device))).detach().cpu().numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def _both(fn_t, fn_m):
    with pytest.raises(AssertionError) as want:
        fn_t()
    with pytest.raises(AssertionError) as got:  # NOTE: also a ValueError (manygrad's own)
        fn_m()
    assert isinstance(got.value, ValueError)
    return str(want.value), str(got.value)


def test_fusion_errors_as_torch():
    tc, mc = torch.nn.Conv2d(2, 3, 1), mg.nn.Conv2d(2, 3, 1)
    tb, mb = torch.nn.BatchNorm2d(3), mg.nn.BatchNorm2d(3)
    tu = torch.nn.utils.fusion
    want, got = _both(lambda: tu.fuse_conv_bn_eval(tc, tb.eval()),
                      lambda: fusion.fuse_conv_bn_eval(mc, mb.eval()))  # fmt: skip
    assert got.startswith(want) and "call .eval()" in got  # "Fusion only for eval!"
    want, got = _both(lambda: tu.fuse_linear_bn_eval(torch.nn.Linear(2, 3).eval(), tb.train()),
                      lambda: fusion.fuse_linear_bn_eval(mg.nn.Linear(2, 3).eval(), mb.train()))  # fmt: skip
    assert got.startswith(want)
    tn = torch.nn.BatchNorm2d(3, track_running_stats=False).eval()
    mn = mg.nn.BatchNorm2d(3, track_running_stats=False).eval()
    want, got = _both(lambda: tu.fuse_conv_bn_eval(tc.eval(), tn),
                      lambda: fusion.fuse_conv_bn_eval(mc.eval(), mn))  # fmt: skip
    assert got.startswith(want)
    want, got = _both(
        lambda: tu.fuse_linear_bn_eval(torch.nn.Linear(2, 4).eval(), tb.eval()),
        lambda: fusion.fuse_linear_bn_eval(mg.nn.Linear(2, 4).eval(), mb.eval()),
    )
    assert got == want
