"""``mg.fft.hfft2``, ``hfftn``, ``ihfft2``, ``ihfftn`` against PyTorch: values, dtypes and
gradients (PyTorch's convention for complex inputs), on every device; errors as PyTorch's."""

import numpy as np
import pytest
import torch

import manygrad as mg
from opcheck import check_op

R = np.random.default_rng(0)


def _np(t):
    t = t.detach()
    return t.cpu().numpy() if isinstance(t, mg.Tensor) else t.resolve_conj().numpy()


def _data(shape, cplx):
    a = R.standard_normal(shape)
    return a + 1j * R.standard_normal(shape) if cplx else a


def _check(name, kw, x, device, tol=1e-9):
    """Forward and the gradient of a real loss (|y|² weighted for complex outputs)."""
    xm = mg.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ym, yt = getattr(mg.fft, name)(xm, **kw), getattr(torch.fft, name)(xt, **kw)
    assert str(ym.device).split(":")[0] == device.split(":")[0]
    assert ym.dtype.name == str(yt.dtype).replace("torch.", "")
    assert tuple(ym.shape) == tuple(yt.shape)
    np.testing.assert_allclose(_np(ym), _np(yt), rtol=tol, atol=tol)
    w = R.standard_normal(tuple(yt.shape))
    wm = mg.tensor(w, device=device)
    lm = ((ym.abs() ** 2) * wm).sum() if ym.is_complex() else (ym * wm).sum()
    lt = (
        ((yt.abs() ** 2) * torch.tensor(w)).sum()
        if yt.is_complex()
        else (yt * torch.tensor(w)).sum()
    )
    lm.backward()
    lt.backward()
    np.testing.assert_allclose(_np(xm.grad), _np(xt.grad), rtol=1e-7, atol=1e-8)


CASES = [
    ("hfft2", {}, (3, 4, 5), True),
    ("hfft2", {"s": (6, 7), "norm": "ortho"}, (3, 4, 5), True),
    ("hfft2", {"dim": (0, 2), "norm": "forward"}, (3, 4, 5), True),
    ("hfft2", {}, (4, 5), False),
    ("hfftn", {}, (3, 4, 5), True),
    ("hfftn", {"s": (2, 3, 8)}, (3, 4, 5), True),
    ("hfftn", {"s": (5, -1), "dim": (0, 1), "norm": "ortho"}, (3, 4, 5), True),
    ("hfftn", {"s": (4,)}, (3, 4, 5), True),
    ("hfftn", {"dim": (-1, 0), "norm": "forward"}, (3, 4, 5), True),
    ("hfftn", {"dim": 1}, (3, 4, 5), False),
    ("ihfft2", {}, (3, 4, 5), False),
    ("ihfft2", {"s": (2, 9), "norm": "ortho"}, (3, 4, 5), False),
    ("ihfft2", {"dim": (2, 0), "norm": "forward"}, (3, 4, 5), False),
    ("ihfftn", {}, (3, 4, 6), False),
    ("ihfftn", {"s": (5, 4, 7)}, (3, 4, 6), False),
    ("ihfftn", {"s": (3, -1), "dim": (1, 2), "norm": "ortho"}, (3, 4, 6), False),
    ("ihfftn", {"dim": 0, "norm": "forward"}, (3, 4, 6), False),
]  # fmt: skip


@pytest.mark.parametrize("name,kw,shape,cplx", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])  # fmt: skip
def test_hermitian_transforms_match_torch(device, name, kw, shape, cplx):
    _check(name, kw, _data(shape, cplx), device)


def test_round_trip_gives_the_real_signal_back(device):
    x = mg.tensor(_data((4, 6, 8), False), device=device)
    for norm in (None, "ortho", "forward"):
        back = mg.fft.hfftn(mg.fft.ihfftn(x, norm=norm), s=x.shape, norm=norm)
        np.testing.assert_allclose(_np(back), _np(x), atol=1e-12)
        back = mg.fft.hfft2(mg.fft.ihfft2(x, norm=norm), s=x.shape[-2:], norm=norm)
        np.testing.assert_allclose(_np(back), _np(x), atol=1e-12)


@pytest.mark.parametrize("fn,torch_fn", [
    (lambda x: mg.fft.hfftn(x, s=(4, 6)), lambda x: torch.fft.hfftn(x, s=(4, 6))),
    (lambda x: mg.fft.hfft2(x, norm="ortho"), lambda x: torch.fft.hfft2(x, norm="ortho")),
    (lambda x: mg.view_as_real(mg.fft.ihfftn(x, dim=(0, 1))),
     lambda x: torch.view_as_real(torch.fft.ihfftn(x, dim=(0, 1)).resolve_conj())),
    (lambda x: mg.view_as_real(mg.fft.ihfft2(x, s=(3, 5))),
     lambda x: torch.view_as_real(torch.fft.ihfft2(x, s=(3, 5)).resolve_conj())),
])  # fmt: skip
def test_real_inputs_float32_strided_finite_differences(fn, torch_fn):
    """float64 and float32, contiguous and strided, finite differences, second derivatives."""
    check_op(fn, [(3, 4)], torch_fn=torch_fn)


def test_dtypes(device):
    x = mg.randn(4, 6, device=device)
    assert mg.fft.hfftn(x).dtype is mg.float32
    assert mg.fft.hfft2(x.to(mg.complex128)).dtype is mg.float64
    assert mg.fft.ihfftn(x).dtype is mg.complex64
    assert mg.fft.ihfft2(x.double()).dtype is mg.complex128
    ints = mg.arange(6, device=device).reshape(2, 3)
    assert mg.fft.hfftn(ints).dtype is mg.float32 and mg.fft.ihfftn(ints).dtype is mg.complex64
    want = torch.fft.ihfftn(torch.arange(6).reshape(2, 3))
    np.testing.assert_allclose(_np(mg.fft.ihfftn(ints)), _np(want), rtol=1e-6)


@pytest.mark.parametrize("name", ["hfftn", "ihfftn", "hfft2", "ihfft2"])
def test_errors_as_pytorch(name):
    x = mg.randn(3, 4, 5, dtype=mg.float64)
    fn = getattr(mg.fft, name)
    with pytest.raises(RuntimeError, match="must be unique"):
        fn(x, dim=(0, 0))
    with pytest.raises(IndexError, match="out of range"):
        fn(x, dim=(0, 5))
    with pytest.raises(RuntimeError, match=">= 1"):
        fn(x, s=(0, 3))
    with pytest.raises(RuntimeError, match="2 dims"):
        fn(x, s=(3,), dim=(0, 1))
    if name.endswith("n"):
        with pytest.raises(RuntimeError, match=f"{name} must transform at least one axis"):
            fn(x, dim=())
        with pytest.raises(RuntimeError, match="4 sizes but the input has only 3 dims"):
            fn(x, s=(2, 3, 4, 5))
    if name.startswith("i"):
        with pytest.raises(RuntimeError, match="real input"):
            fn(x.to(mg.complex128))
    with pytest.raises(ValueError, match="norm"):
        fn(x, norm="both")
