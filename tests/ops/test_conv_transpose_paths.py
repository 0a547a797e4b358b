"""conv_transpose1d/2d's CPU paths against PyTorch: the blocks of per-image products with
col2im / im2col in C (``_convt_blocks``, float32, one group), the stride-1 route through
conv2d with the flipped weight, and the columns path (groups, float64, kernels off)."""

import numpy as np
import pytest

import manygrad as mg
from manygrad import _native
from manygrad.ops import _convt_blocks
from opcheck import check_op

torch = pytest.importorskip("torch", reason="PyTorch (CPU build) is the test oracle")
TF = torch.nn.functional

# (input shape, weight shape, keyword arguments): each runs forward and the three gradients
CASES = [
    ((3, 8, 5, 7), (8, 6, 4, 4), dict(stride=2, padding=1)),  # DCGAN, odd sizes
    ((2, 8, 4, 4), (8, 5, 2, 2), dict(stride=2)),  # U-Net up-convolution (k = s)
    ((2, 5, 5, 6), (5, 4, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    (
        (2, 5, 5, 6),
        (5, 4, 3, 2),
        dict(stride=(3, 2), padding=(2, 1), dilation=(2, 1), output_padding=(1, 0)),
    ),  # fmt: skip
    ((2, 4, 3, 9), (4, 3, 5, 3), dict(stride=(1, 3), padding=(0, 2))),
    ((1, 3, 6, 5), (3, 7, 3, 3), dict(stride=4, padding=2, output_padding=3)),  # gaps
    ((2, 4, 5, 6), (4, 3, 2, 2), dict(stride=3, padding=0)),  # no overlap, gaps
    ((2, 4, 5, 7), (4, 3, 3, 3), dict(stride=1, padding=1)),  # stride 1: conv2d
    ((2, 4, 5, 7), (4, 3, 3, 2), dict(stride=1, padding=(2, 0), dilation=(1, 2))),
    ((2, 4, 5, 7), (4, 3, 3, 3), dict(stride=1, padding=3)),  # padding > k - 1: blocks
    ((2, 4, 5, 7), (4, 3, 3, 3), dict(stride=1, padding=2, dilation=2, output_padding=1)),
    ((2, 6, 5, 7), (6, 2, 3, 3), dict(stride=1, padding=1, groups=3)),
    ((2, 6, 5, 7), (6, 2, 4, 4), dict(stride=2, padding=1, groups=3)),
    ((4, 5, 6), (4, 3, 4, 4), dict(stride=2, padding=1)),  # unbatched
]


def _run(x, w, b, kwargs, grads=(True, True, True), seed=1, transform=None):
    """Forward, and the gradients that ``grads`` asks for, in manygrad and PyTorch."""
    rng = np.random.default_rng(seed)
    outs = []
    for lib in (mg, torch):
        ins = [
            None if a is None else lib.tensor(a, requires_grad=g) for a, g in zip((x, w, b), grads)
        ]
        xi = transform(ins[0]) if transform else ins[0]
        y = lib.nn.functional.conv_transpose2d(xi, ins[1], ins[2], **kwargs)
        if lib is mg:
            up = rng.standard_normal(tuple(y.shape)).astype(x.dtype)
        if any(grads):
            y.backward(lib.tensor(up))
        outs.append([y] + [None if t is None or not t.requires_grad else t.grad for t in ins])
    return outs


def _compare(outs, rtol=1e-4, atol=1e-4):
    for m, t in zip(*outs):
        assert (m is None) == (t is None)
        if m is not None:
            np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


def _arrays(xs, ws, kwargs, dtype=np.float32, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    cout = ws[1] * kwargs.get("groups", 1)
    x, w = (rng.standard_normal(s).astype(dtype) for s in (xs, ws))
    return x, w, (rng.standard_normal(cout).astype(dtype) if bias else None)


@pytest.mark.parametrize("xs,ws,kwargs", CASES, ids=lambda v: str(v)[:40])
def test_paths_like_torch(xs, ws, kwargs):
    _compare(_run(*_arrays(xs, ws, kwargs), kwargs))


@pytest.mark.parametrize("xs,ws,kwargs", CASES[:4], ids=lambda v: str(v)[:40])
def test_blocks_match_the_columns_path(monkeypatch, xs, ws, kwargs):
    # the same values with the C kernels' path switched off (NumPy columns)
    x, w, b = _arrays(xs, ws, kwargs)
    with_blocks = _run(x, w, b, kwargs)[0]
    monkeypatch.setattr(_convt_blocks, "ENABLED", False)
    without = _run(x, w, b, kwargs)[0]
    for m, t in zip(with_blocks, without):
        np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_the_blocks_path_runs_for_float32(monkeypatch):
    # a failing path would not be noticed by the value checks alone: count its calls
    if not _native.takes(np.zeros(1, np.float32)):
        pytest.skip("the CPU kernels are not built here")
    calls = []
    fwd, bwd = _convt_blocks.forward, _convt_blocks.backward
    monkeypatch.setattr(_convt_blocks, "forward", lambda *a: calls.append("f") or fwd(*a))
    monkeypatch.setattr(_convt_blocks, "backward", lambda *a: calls.append("b") or bwd(*a))
    _compare(_run(*_arrays(*CASES[0][:2], CASES[0][2]), CASES[0][2]))
    assert calls == ["f", "b"]
    calls.clear()
    _compare(_run(*_arrays(*CASES[-3][:2], CASES[-3][2]), CASES[-3][2]))  # groups: columns
    assert calls == []


@pytest.mark.parametrize(
    "grads", [(True, False, False), (False, True, False), (False, False, True), (True, True, False)]
)
def test_some_gradients_only(grads):
    xs, ws, kwargs = CASES[0]
    _compare(_run(*_arrays(xs, ws, kwargs), kwargs, grads=grads))


def test_without_bias_and_in_float64():
    xs, ws, kwargs = CASES[2]
    _compare(_run(*_arrays(xs, ws, kwargs, bias=False), kwargs, grads=(True, True, False)))
    _compare(_run(*_arrays(xs, ws, kwargs, dtype=np.float64), kwargs), 1e-10, 1e-10)


@pytest.mark.parametrize("kwargs", [dict(stride=2, padding=1), dict(stride=1, padding=1)])
def test_non_contiguous_input(kwargs):
    # a channels-last view and a strided slice
    x, w, b = _arrays((2, 9, 8, 4), (4, 5, 4, 4), kwargs)
    _compare(_run(x, w, b, kwargs, transform=lambda t: t.permute(0, 3, 1, 2)[:, :, ::2]))


def test_several_threads():
    # blocks of images shared between threads (32 images, several blocks)
    xs, ws, kwargs = (32, 16, 8, 8), (16, 32, 4, 4), dict(stride=2, padding=1)
    before = mg.get_num_threads()
    mg.set_num_threads(2)
    try:
        _compare(_run(*_arrays(xs, ws, kwargs), kwargs))
    finally:
        mg.set_num_threads(before)


def test_kernels_turned_off(monkeypatch):
    monkeypatch.setenv("MANYGRAD_CPU_KERNELS", "0")
    _native._reset_for_tests()
    try:
        assert _native.lib() is None
        for xs, ws, kwargs in (CASES[0], CASES[1], CASES[7]):
            _compare(_run(*_arrays(xs, ws, kwargs), kwargs))
    finally:
        monkeypatch.delenv("MANYGRAD_CPU_KERNELS")
        _native._reset_for_tests()


def test_module_and_conv_transpose1d():
    rng = np.random.default_rng(3)
    m = mg.nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1)
    t = torch.nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(m.weight.detach().numpy()))
        t.bias.copy_(torch.tensor(m.bias.detach().numpy()))
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)
    ym, yt = m(mg.tensor(x)), t(torch.tensor(x))
    ym.sum().backward()
    yt.sum().backward()
    _compare([[ym, m.weight.grad, m.bias.grad], [yt, t.weight.grad, t.bias.grad]])
    for kwargs in (dict(stride=2, padding=1, output_padding=1), dict(stride=1, padding=2)):
        check_op("conv_transpose1d", [(2, 4, 9), (4, 3, 3), (3,)], dtypes=("float32",),
                 fd=False, double=False, **kwargs)  # fmt: skip


@pytest.mark.parametrize("kwargs", [dict(stride=2, padding=1), dict(stride=1, padding=1)])
def test_check_op_both_dtypes_and_double_backward(kwargs):
    check_op("conv_transpose2d", [(2, 4, 5, 6), (4, 3, 4, 4), (3,)], **kwargs)
