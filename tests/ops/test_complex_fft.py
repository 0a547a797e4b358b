"""Complex tensors and ``mg.fft`` against PyTorch: values, and gradients of a real loss in
PyTorch's convention (dL/dx + i dL/dy), on every device."""

import numpy as np
import pytest
import torch

import manygrad as mg
from devicematrix import DEVICES

R = np.random.default_rng(0)
pytestmark = pytest.mark.filterwarnings("ignore:A window was not provided")


def _data(shape, cplx):
    a = R.standard_normal(shape)
    return a + 1j * R.standard_normal(shape) if cplx else a


def _np(t):
    t = t.detach()
    return t.cpu().numpy() if isinstance(t, mg.Tensor) else t.resolve_conj().numpy()


def _loss(y, w, lib):
    """A real loss that weighs every output (|y|^2 for complex outputs)."""
    w = lib.tensor(w) if lib is torch else mg.tensor(w, device=y.device)
    return ((y.abs() ** 2) * w).sum() if y.is_complex() else (y * w).sum()


def _check(fn_m, fn_t, arrays, device, tol=1e-9):
    ms = [mg.tensor(a, device=device, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ym, yt = fn_m(*ms), fn_t(*ts)
    assert ym.dtype.name == str(yt.dtype).replace("torch.", "")
    np.testing.assert_allclose(_np(ym), _np(yt), rtol=tol, atol=tol)
    w = R.standard_normal(tuple(yt.shape))
    _loss(ym, w, mg).backward()
    _loss(yt, w, torch).backward()
    for m, t in zip(ms, ts):
        assert (m.grad is None) == (t.grad is None)
        if t.grad is not None:
            np.testing.assert_allclose(_np(m.grad), _np(t.grad), rtol=1e-7, atol=1e-8)


FFTS = [
    ("fft", {}, True), ("fft", {"n": 5}, False), ("fft", {"n": 11, "norm": "ortho"}, True),
    ("ifft", {"norm": "forward", "dim": 0}, True), ("rfft", {}, False), ("rfft", {"n": 6}, False),
    ("rfft", {"n": 11, "norm": "ortho"}, False), ("irfft", {}, True), ("irfft", {"n": 9}, True),
    ("irfft", {"n": 4}, True), ("hfft", {}, True), ("hfft", {"n": 7, "norm": "ortho"}, True),
    ("ihfft", {}, False), ("fft2", {}, True), ("ifft2", {"s": (2, 9)}, True),
    ("rfft2", {"s": (3, 6)}, False), ("irfft2", {"s": (4, 7)}, True),
    ("fftn", {"dim": (0,)}, False), ("ifftn", {"s": (2, 9)}, True), ("rfftn", {"norm": "forward"}, False),
    ("irfftn", {}, True), ("irfftn", {"s": (5, 6), "norm": "ortho"}, True),
    ("ifft", {}, False), ("ifft", {"n": 7, "norm": "ortho"}, False),
    ("ifft", {"n": 4, "norm": "forward", "dim": 0}, False), ("ifftn", {"dim": (1,)}, False),
]  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,kw,cplx", FFTS, ids=[f"{n}-{i}" for i, (n, *_r) in enumerate(FFTS)])
def test_fft_matches_torch(device, name, kw, cplx):
    _check(lambda x: getattr(mg.fft, name)(x, **kw), lambda x: getattr(torch.fft, name)(x, **kw),
           [_data((3, 8), cplx)], device)  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
def test_ifft_of_a_real_signal_has_torchs_signed_zeros(device):
    # NOTE: the zero imaginary part of the DC bin is -0.0 in PyTorch (0.5000-0.0000j first)
    for vals in ([0.0, 0.25, 0.5, 0.75, 1.0], [0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0]):
        for norm in (None, "ortho", "forward"):
            got = _np(mg.fft.ifft(mg.tensor(vals, device=device), norm=norm))
            want = _np(torch.fft.ifft(torch.tensor(vals), norm=norm))
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
            assert np.signbit(got.imag[0]) and np.signbit(want.imag[0]), (vals, norm)


@pytest.mark.parametrize("device", DEVICES)
def test_fft_float32_gives_complex64(device):
    x = mg.randn(4, 6, device=device)
    assert mg.fft.rfft(x).dtype is mg.complex64
    assert mg.fft.irfft(mg.fft.rfft(x), n=6).dtype is mg.float32
    np.testing.assert_allclose(_np(mg.fft.irfft(mg.fft.rfft(x), n=6)), _np(x), atol=1e-5)
    with pytest.raises(TypeError, match="real input"):
        mg.fft.rfft(mg.fft.fft(x))
    with pytest.raises(ValueError, match="norm"):
        mg.fft.fft(x, norm="both")


@pytest.mark.parametrize("device", DEVICES)
def test_frequencies_and_shifts(device):
    for n, d in [(5, 1.0), (8, 0.25)]:
        np.testing.assert_allclose(_np(mg.fft.fftfreq(n, d, device=device)),
                                   _np(torch.fft.fftfreq(n, d)), rtol=1e-6)  # fmt: skip
        np.testing.assert_allclose(_np(mg.fft.rfftfreq(n, d, device=device)),
                                   _np(torch.fft.rfftfreq(n, d)), rtol=1e-6)  # fmt: skip
    a = R.standard_normal((4, 5))
    for dim in (None, 0, (1,)):
        np.testing.assert_array_equal(_np(mg.fft.fftshift(mg.tensor(a, device=device), dim)),
                                      _np(torch.fft.fftshift(torch.tensor(a), dim)))  # fmt: skip
        np.testing.assert_array_equal(_np(mg.fft.ifftshift(mg.tensor(a, device=device), dim)),
                                      _np(torch.fft.ifftshift(torch.tensor(a), dim)))  # fmt: skip


COMPLEX_OPS = [
    ("mul", lambda lib, a, b: a * b), ("div", lambda lib, a, b: a / (b + 3)),
    ("add_sub", lambda lib, a, b: a + b - 2 * a), ("abs", lambda lib, a, b: (a * b).abs()),
    ("exp", lambda lib, a, b: (a * 0.3).exp()), ("pow", lambda lib, a, b: a**2 + a**0.5 * b**3),
    ("pow_tensor", lambda lib, a, b: (a * 0.2) ** (b * 0.3) + 2 ** (a * 0.1)),
    ("log_sqrt", lambda lib, a, b: a.log() * b.sqrt() + a.rsqrt() - a.log1p() + b.expm1()),
    ("trig", lambda lib, a, b: a.sin() * b.cos() + (a * 0.5).tanh() + b.square() / a.reciprocal()), ("conj", lambda lib, a, b: a.conj() * b),
    ("real_imag", lambda lib, a, b: a.real * 2 + a.imag * b.real),
    ("angle", lambda lib, a, b: a.angle() + b.angle()), ("sum", lambda lib, a, b: (a * b).sum(0)),
    ("mean", lambda lib, a, b: (a - b).mean(1)), ("matmul", lambda lib, a, b: a @ b.T),
    ("view_as_real", lambda lib, a, b: lib.view_as_real(a * b)),
    ("indexing", lambda lib, a, b: lib.cat([a[:, 1:], b[:, :1]], 1).reshape(-1)[::2]),
]  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,fn", COMPLEX_OPS, ids=[c[0] for c in COMPLEX_OPS])
def test_complex_ops_match_torch(device, name, fn):
    _check(lambda a, b: fn(mg, a, b), lambda a, b: fn(torch, a, b),
           [_data((3, 4), True), _data((3, 4), True)], device)  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
def test_real_and_complex_mix(device):
    _check(lambda x, z: x * z + x.exp(), lambda x, z: x * z + x.exp(),
           [_data((5,), False), _data((5,), True)], device)  # fmt: skip
    _check(lambda r, i: mg.complex(r, i) * 2, lambda r, i: torch.complex(r, i) * 2,
           [_data((4,), False), _data((4,), False)], device)  # fmt: skip
    _check(lambda r, t: mg.polar(r.abs(), t), lambda r, t: torch.polar(r.abs(), t),
           [_data((4,), False), _data((4,), False)], device)  # fmt: skip
    _check(lambda x: mg.view_as_complex(x), lambda x: torch.view_as_complex(x),
           [_data((3, 2), False)], device)  # fmt: skip


def test_dtypes_and_promotion():
    assert mg.tensor([1 + 2j]).dtype is mg.complex64
    assert (mg.ones(2, dtype=mg.float64) * mg.ones(2, dtype=mg.complex64)).dtype is mg.complex128
    assert (mg.ones(2) * 1j).dtype is mg.complex64
    assert (mg.arange(3) * 1j).dtype is mg.complex64
    assert mg.cfloat is mg.complex64 and mg.cdouble is mg.complex128
    z = mg.randn(20000, dtype=mg.complex64)
    assert z.is_complex() and not z.is_floating_point()
    v = z.cpu().numpy()
    assert abs(v.real.var() - 0.5) < 0.03 and abs(v.imag.var() - 0.5) < 0.03
    assert repr(mg.tensor([1 + 1j])) == "tensor([1.+1.j])"


@pytest.mark.parametrize("device", DEVICES)
def test_ops_without_complex_support_say_so(device):
    z = mg.tensor(_data((3,), True), device=device)
    with pytest.raises(mg.ManygradError, match="sigmoid: complex tensors are not supported"):
        z.sigmoid()
    with pytest.raises(mg.ManygradError, match="lt: complex tensors are not supported"):
        _ = z < z
    with pytest.raises(mg.ManygradError, match="expected a complex tensor"):
        mg.view_as_real(mg.ones(2, device=device))
    with pytest.raises(RuntimeError, match="non-complex"):
        _ = mg.ones(2, device=device).imag


_SHORT_WINDOW = {"n_fft": 32, "hop_length": 5, "win_length": 19, "window": True, "center": False}
STFTS = [
    {"n_fft": 64},
    {"n_fft": 64, "hop_length": 16, "win_length": 48, "window": True, "normalized": True},
    {"n_fft": 32, "center": False},
    {"n_fft": 32, "pad_mode": "constant", "onesided": False, "window": True},
    {**_SHORT_WINDOW, "align_to_window": True},
    {**_SHORT_WINDOW, "align_to_window": False},
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", STFTS, ids=[str(i) for i in range(len(STFTS))])
def test_stft_and_istft_match_torch(device, kw):
    kw = dict(kw)
    win = kw.pop("window", False)
    wl = kw.get("win_length", kw["n_fft"])
    wm = mg.hann_window(wl, dtype=mg.float64, device=device) if win else None
    wt = torch.hann_window(wl, dtype=torch.float64) if win else None
    sig = _data((2, 300), False)
    _check(lambda x: mg.stft(x, window=wm, return_complex=True, **kw),
           lambda x: torch.stft(x, window=wt, return_complex=True, **kw), [sig], device)  # fmt: skip
    if "align_to_window" in kw:  # istft has no such switch
        return
    ikw = {k: v for k, v in kw.items() if k != "pad_mode"}
    n = 300 if kw.get("center", True) else None
    spec = torch.stft(torch.tensor(sig), window=wt, return_complex=True, **kw).numpy()
    _check(lambda s: mg.istft(s, window=wm, length=n, **ikw),
           lambda s: torch.istft(s, window=wt, length=n, **ikw), [spec], device)  # fmt: skip
    if n:  # the round trip gives the signal back
        back = mg.istft(mg.tensor(spec, device=device), window=wm, length=n, **ikw)
        np.testing.assert_allclose(_np(back), sig, atol=1e-9)


def test_stft_errors():
    with pytest.raises(RuntimeError, match="return_complex"):
        mg.stft(mg.randn(100), 16)
    with pytest.raises(mg.ManygradError, match="window"):
        mg.stft(mg.randn(100), 16, window=mg.ones(8), return_complex=True)
    with pytest.raises(RuntimeError, match="NOLA"):
        mg.istft(mg.stft(mg.randn(100), 16, hop_length=16, window=mg.hann_window(16),
                         return_complex=True), 16, hop_length=16, window=mg.hann_window(16))  # fmt: skip
    assert mg.randn(100).stft(16, return_complex=True).shape == (9, 26)
    with pytest.raises(RuntimeError, match="align_to_window should only be set when center"):
        mg.stft(mg.randn(100), 16, return_complex=True, align_to_window=True)
    aligned = mg.randn(100).stft(16, 4, 10, mg.ones(10), center=False, return_complex=True,
                                 align_to_window=True)  # fmt: skip
    assert aligned.shape == (9, 1 + (100 - 10) // 4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("opt", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_optimizers_and_clipping_on_complex_parameters(device, opt):
    """Complex parameters update as pairs of reals; norms use the moduli, as in PyTorch."""
    w0, x = _data((3, 4), True), _data((5, 3), False)
    wm = mg.nn.Parameter(mg.tensor(w0, device=device))
    wt = torch.nn.Parameter(torch.tensor(w0))
    om = getattr(mg.optim, opt)([wm], lr=0.01, weight_decay=0.01)
    ot = getattr(torch.optim, opt)([wt], lr=0.01, weight_decay=0.01)
    xm, xt = mg.tensor(x, device=device), torch.tensor(x)
    for _ in range(3):
        norms = []
        for w, o, lib, xx in [(wm, om, mg, xm), (wt, ot, torch, xt)]:
            o.zero_grad()
            ((xx.to(w.dtype) @ w).abs() ** 2).sum().backward()
            norms.append(_np(lib.nn.utils.clip_grad_norm_([w], 5.0)))
            o.step()
        np.testing.assert_allclose(norms[0], norms[1], rtol=1e-6)
    np.testing.assert_allclose(_np(wm), _np(wt), rtol=1e-7, atol=1e-9)


def test_complex64_state_dicts_round_trip_through_safetensors(tmp_path):
    from safetensors.numpy import load_file

    w = mg.randn(3, 2, dtype=mg.complex64)
    path = str(tmp_path / "w.safetensors")
    mg.save({"w": w}, path)
    back = mg.load(path)["w"]
    assert back.dtype is mg.complex64 and bool((back == w).all())
    np.testing.assert_array_equal(load_file(path)["w"], w.numpy())
    with pytest.raises(mg.ManygradError, match="complex128"):
        mg.save({"w": w.to(mg.complex128)}, path)


def test_second_derivatives_through_complex_ops_are_refused_by_name():
    z = mg.tensor(_data((3,), True), requires_grad=True)
    (g,) = mg.autograd.grad(z.sin().abs().sum(), z, create_graph=True)
    with pytest.raises(mg.ManygradError, match="SinBackward0 is not differentiable twice"):
        g.abs().sum().backward()
