"""interpolate's linear and cubic modes on CPUs: one node of BLAS products by the
interpolation matrices (``ops/_resample_blocks.py``). Values and gradients equal PyTorch's
for sizes past the dense limit (banded blocks), odd and per-dim scale factors, up- and
downsampling, 1x1 images, 16-bit floats, strided and channels-last inputs, inf and NaN;
the gathers that GPUs and ONNX traces take give the same values."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.ops import _resample_blocks, sampling
from opcheck import check_op

torch = pytest.importorskip("torch")
F, TF = mg.nn.functional, torch.nn.functional

CASES = [
    ((2, 3, 20, 24), dict(scale_factor=2, mode="bilinear")),
    ((2, 3, 20, 24), dict(scale_factor=2, mode="bilinear", align_corners=True)),
    ((1, 2, 19, 7), dict(size=(33, 5), mode="bilinear", align_corners=True)),
    ((1, 2, 40, 22), dict(scale_factor=0.37, mode="bilinear")),
    ((1, 2, 18, 20), dict(scale_factor=(1.7, 0.6), mode="bilinear")),
    ((1, 2, 18, 9), dict(scale_factor=2.3, mode="bilinear", recompute_scale_factor=True)),
    ((2, 2, 1, 1), dict(size=(5, 3), mode="bilinear")),
    ((1, 2, 6, 5), dict(size=(1, 1), mode="bilinear", align_corners=True)),
    ((1, 2, 17, 18), dict(size=(17, 18), mode="bilinear")),
    ((1, 2, 18, 21), dict(scale_factor=2, mode="bicubic")),
    ((1, 2, 9, 40), dict(size=(7, 30), mode="bicubic", align_corners=True)),
    ((2, 3, 40), dict(scale_factor=2.5, mode="linear")),
    ((2, 3, 40), dict(size=1, mode="linear")),
    ((1, 2, 4, 18, 5), dict(scale_factor=(2, 1.5, 0.5), mode="trilinear")),
    ((1, 1, 3, 20, 4), dict(size=(5, 7, 9), mode="trilinear", align_corners=True)),
]  # fmt: skip


@pytest.mark.parametrize("shape,kw", CASES, ids=[f"{kw['mode']}-{i}" for i, (_, kw) in
                                                 enumerate(CASES)])  # fmt: skip
def test_matches_pytorch(shape, kw):
    check_op("interpolate", [shape], **kw)


def _pair(a, dtype, layout):
    """The same values as a torch and a manygrad tensor, both requiring grad."""
    t = torch.tensor(a).to(getattr(torch, dtype))
    m = mg.tensor(a).to(getattr(mg, dtype))
    if layout == "channels_last":
        t = t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        m = m.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    elif layout == "transposed":
        t, m = t.mT.contiguous().mT, m.mT.contiguous().mT
    assert layout == "contiguous" or not m.is_contiguous()
    return t.requires_grad_(), m.requires_grad_()


def _close(m, t, tol, what):
    """Equal up to ``tol`` times the largest finite magnitude; NaN and inf where PyTorch
    has them."""
    mv, tv = m.detach().to(mg.float64).numpy(), t.detach().double().numpy()
    assert mv.shape == tv.shape, what
    fin = np.isfinite(tv)
    np.testing.assert_array_equal(mv[~fin], tv[~fin], err_msg=what)  # NOTE: NaN equals NaN
    scale = max(np.abs(tv[fin]).max(initial=0.0), 1.0)
    np.testing.assert_allclose(mv[fin], tv[fin], rtol=0, atol=tol * scale, err_msg=what)


TOL = {"float64": 1e-12, "float32": 1e-5, "float16": 4e-3, "bfloat16": 2e-2}
TIGHT = [
    ("bilinear", (2, 3, 37, 41), dict(scale_factor=2)),
    ("bilinear", (2, 3, 37, 41), dict(size=(20, 90), align_corners=True)),
    ("bilinear", (1, 4, 30, 33), dict(scale_factor=0.37)),
    ("bilinear", (1, 4, 30, 33), dict(scale_factor=1.7, recompute_scale_factor=True)),
    ("bicubic", (2, 3, 21, 19), dict(scale_factor=2, align_corners=True)),
    ("bicubic", (2, 3, 21, 19), dict(size=(9, 50))),
    ("linear", (2, 3, 70), dict(scale_factor=2)),
    ("trilinear", (1, 2, 5, 19, 6), dict(scale_factor=(2, 0.5, 1.5))),
]  # fmt: skip


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("mode,shape,kw", TIGHT)
def test_tight_against_pytorch(mode, shape, kw, dtype):
    rng = np.random.default_rng(0)
    layouts = ["contiguous", "transposed"] + (["channels_last"] if len(shape) == 4 else [])
    for layout in layouts:
        for ac in (False, True) if "align_corners" not in kw else (kw["align_corners"],):
            k = dict(kw, mode=mode, align_corners=ac)
            t, m = _pair(rng.standard_normal(shape), dtype, layout)
            yt, ym = TF.interpolate(t, **k), F.interpolate(m, **k)
            where = f"{mode} {shape} {k} {dtype} {layout}"
            _close(ym, yt.detach(), TOL[dtype], f"{where}: forward")
            assert ym.dtype == getattr(mg, dtype), where
            g = rng.standard_normal(tuple(yt.shape))
            yt.backward(torch.tensor(g).to(yt.dtype))
            ym.backward(mg.tensor(g).to(ym.dtype))
            _close(m.grad, t.grad, TOL[dtype], f"{where}: gradient")


@pytest.mark.parametrize(
    "mode,shape,kw",
    [("bilinear", (1, 2, 6, 7), dict(scale_factor=2)),
     ("bilinear", (1, 2, 30, 31), dict(scale_factor=0.5)),
     ("bilinear", (1, 2, 20, 21), dict(size=(23, 24), align_corners=True)),
     ("bicubic", (1, 2, 6, 7), dict(scale_factor=2)),
     ("linear", (1, 2, 25), dict(scale_factor=1.5)),
     ("trilinear", (1, 1, 4, 5, 6), dict(scale_factor=2))],
)  # fmt: skip
def test_inf_and_nan_stay_local_as_in_pytorch(mode, shape, kw):
    """A product with the matrix would spread an inf's 0 * inf = NaN over a whole block;
    PyTorch's kernels read the taps only, and so do inputs and gradients holding them."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shape)
    a.flat[3], a.flat[a.size // 2], a.flat[-1] = np.inf, np.nan, -np.inf
    for x in (a, rng.standard_normal(shape)):  # non-finite input; finite input
        t, m = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
        yt, ym = TF.interpolate(t, mode=mode, **kw), F.interpolate(m, mode=mode, **kw)
        _close(ym, yt.detach(), 1e-12, "forward")
        g = rng.standard_normal(tuple(yt.shape))
        g.flat[1], g.flat[-2] = np.inf, np.nan
        yt.backward(torch.tensor(g))
        ym.backward(mg.tensor(g))
        _close(m.grad, t.grad, 1e-12, "gradient")


def test_blocks_equal_the_gathers(monkeypatch):
    """The BLAS products (CPUs) against the gathers and scatter-adds (GPUs, ONNX traces),
    with the batch cut in many chunks."""
    rng = np.random.default_rng(2)
    cases = [((3, 5, 40, 19), dict(scale_factor=1.6, mode="bilinear")),
             ((3, 5, 22, 19), dict(size=(9, 45), mode="bicubic", align_corners=True)),
             ((2, 3, 6, 20, 7), dict(scale_factor=(0.5, 2, 1), mode="trilinear"))]  # fmt: skip
    monkeypatch.setattr(_resample_blocks, "_CHUNK", 4096)
    for shape, kw in cases:
        a, g = rng.standard_normal(shape).astype(np.float32), None
        results = []
        for blocks in (True, False):
            monkeypatch.setattr(sampling, "_blocks_path", lambda x, b=blocks: b)
            x = mg.tensor(a, requires_grad=True)
            y = F.interpolate(x, **kw)
            assert (y.grad_fn.name() == "AddBackward0") != blocks
            g = rng.standard_normal(tuple(y.shape)).astype(np.float32) if g is None else g
            y.backward(mg.tensor(g))
            results.append((y.detach().numpy(), x.grad.numpy()))
        for u, v in zip(*results):
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5 * np.abs(v).max())


def test_node_names_and_saved_values_as_pytorch():
    names = {}
    for mode, shape in (("linear", (1, 2, 5)), ("bilinear", (1, 2, 5, 6)),
                        ("bicubic", (1, 2, 5, 6)), ("trilinear", (1, 2, 3, 4, 5))):  # fmt: skip
        a = np.random.default_rng(3).standard_normal(shape)
        t, m = torch.tensor(a, requires_grad=True), mg.tensor(a, requires_grad=True)
        names[mode] = TF.interpolate(t * 1, scale_factor=2, mode=mode).grad_fn.name()
        h = m * 1
        y = F.interpolate(h, scale_factor=2, mode=mode)
        assert y.grad_fn.name() == names[mode]
        h.add_(1)  # NOTE: the node keeps no input (as PyTorch's): backward still runs
        y.backward(mg.ones_like(y))
        assert m.grad is not None


def test_second_derivative_as_pytorch():
    a = np.random.default_rng(4).standard_normal((1, 2, 5, 19))
    res = []
    for lib, fn in ((torch, TF.interpolate), (mg, F.interpolate)):
        x = lib.tensor(a, requires_grad=True)
        y = fn(x, scale_factor=1.5, mode="bicubic", align_corners=True)
        (gx,) = lib.autograd.grad((y * y).sum(), x, create_graph=True)
        (ggx,) = lib.autograd.grad((gx * gx).sum(), x)
        res.append(ggx.detach().numpy())
    np.testing.assert_allclose(res[1], res[0], rtol=1e-10, atol=1e-10)


def test_onnx_export_takes_the_gathers(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = mg.nn.Upsample(scale_factor=2, mode="bilinear")
    x = mg.randn(1, 2, 20, 18)
    path = str(tmp_path / "up.onnx")
    mg.onnx.export(model, (x,), path)
    sess = ort.InferenceSession(path)
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-5, atol=1e-5)
