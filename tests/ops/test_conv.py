"""Convolution and pooling ops against PyTorch (forward, gradients, finite differences)."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import ShapeError
from opcheck import check_op

torch = pytest.importorskip("torch", reason="PyTorch (CPU build) is the test oracle")

# name, input specs, kwargs: one row per case
CONV = [
    ("conv2d", [(2, 3, 7, 6), (4, 3, 3, 3), (4,)], dict(padding=1)),
    ("conv2d", [(2, 3, 7, 6), (4, 3, 3, 3)], dict()),
    ("conv2d", [(2, 3, 9, 8), (4, 3, 3, 2), (4,)], dict(stride=2, padding=(1, 2))),
    ("conv2d", [(1, 2, 9, 10), (3, 2, 3, 3), None], dict(dilation=(2, 3), padding=2)),
    ("conv2d", [(2, 4, 6, 7), (6, 2, 3, 3), (6,)], dict(groups=2, padding=1)),
    ("conv2d", [(2, 4, 6, 7), (8, 1, 3, 3), (8,)], dict(groups=4, padding=1)),  # multiplier 2
    ("conv2d", [(2, 4, 6, 7), (4, 1, 3, 3), (4,)], dict(groups=4, padding=1)),  # depthwise
    ("conv2d", [(2, 4, 7, 7), (4, 1, 3, 2), None], dict(groups=4, padding=(2, 1), dilation=2)),
    ("conv2d", [(2, 4, 7, 8), (4, 1, 3, 3), (4,)], dict(groups=4, stride=2, padding=1)),
    ("conv2d", [(2, 3, 7, 6), (5, 3, 1, 1), (5,)], dict()),
    pytest.param(
        "conv2d",
        [(2, 3, 7, 6), (4, 3, 2, 4), (4,)],
        dict(padding="same"),
        marks=pytest.mark.filterwarnings("ignore:Using padding='same'"),  # PyTorch's note
    ),
    ("conv2d", [(2, 3, 7, 6), (4, 3, 3, 3), (4,)], dict(padding="same", dilation=2)),
    ("conv2d", [(2, 3, 7, 6), (4, 3, 3, 2), None], dict(padding="valid", stride=(1, 2))),
    ("conv2d", [(3, 7, 6), (4, 3, 3, 3), (4,)], dict(padding=1)),  # unbatched
    ("conv2d", [(1, 2, 20, 20), (3, 2, 3, 3), (3,)], dict(padding=1)),  # grid path
    ("conv2d", [(1, 2, 20, 19), (3, 2, 5, 3), None], dict(padding=(2, 1), dilation=(1, 2))),
    ("conv2d", [(2, 3, 5, 5), (4, 3, 5, 5), (4,)], dict(stride=3, padding=2)),
    # more than 96 rows per column: channels-first products (grid path when stride is 1)
    ("conv2d", [(2, 12, 9, 8), (5, 12, 3, 3), (5,)], dict(padding=1)),
    ("conv2d", [(2, 12, 9, 8), (5, 12, 3, 3), None], dict(stride=2, padding=(0, 1))),
    ("conv2d", [(2, 24, 6, 7), (4, 12, 3, 3), (4,)], dict(groups=2, dilation=(1, 2), padding=2)),
    # one group and more than 96 rows: channels-last columns (_conv_kernels)
    ("conv2d", [(32, 4, 3), (2, 32, 3, 3), (2,)], dict(stride=(2, 1), dilation=(1, 2), padding=2)),
    pytest.param(
        "conv2d",
        [(1, 32, 3, 4), (2, 32, 2, 3), None],
        dict(padding="same"),
        marks=pytest.mark.filterwarnings("ignore:Using padding='same'"),  # asymmetric pads
    ),
    ("conv1d", [(1, 40, 5), (2, 40, 3), (2,)], dict(padding=1, stride=2)),
    (
        "conv_transpose2d",
        [(2, 6, 4, 5), (6, 12, 3, 3), (12,)],
        dict(stride=2, padding=1, output_padding=1),
    ),
    ("conv1d", [(2, 3, 11), (4, 3, 3), (4,)], dict(padding=1)),
    ("conv1d", [(2, 4, 12), (6, 2, 4), None], dict(stride=3, groups=2, dilation=2)),
    ("conv1d", [(3, 30), (2, 3, 5), (2,)], dict(padding="same")),
    ("conv_transpose2d", [(2, 3, 4, 5), (3, 4, 3, 3), (4,)], dict()),
    (
        "conv_transpose2d",
        [(2, 3, 4, 5), (3, 4, 3, 3), (4,)],
        dict(stride=2, padding=1, output_padding=1),
    ),
    (
        "conv_transpose2d",
        [(2, 4, 4, 5), (4, 3, 3, 2), None],
        dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2), groups=2),
    ),
    (
        "conv_transpose2d",
        [(1, 2, 4, 5), (2, 3, 3, 3), (3,)],
        dict(dilation=2, output_padding=1),
    ),
    ("conv_transpose2d", [(2, 4, 5), (2, 3, 4, 4), (3,)], dict(stride=2, padding=1)),
    ("conv_transpose1d", [(2, 4, 7), (4, 3, 3), (3,)], dict(stride=2, output_padding=1)),
]

POOL = [
    ("max_pool2d", [(2, 3, 8, 8)], dict(kernel_size=2)),
    ("max_pool2d", [(2, 3, 7, 9)], dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", [(2, 3, 7, 9)], dict(kernel_size=(2, 3), stride=(2, 1), ceil_mode=True)),
    ("max_pool2d", [(1, 2, 9, 9)], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d", [(1, 2, 9, 10)], dict(kernel_size=2, dilation=2, padding=1)),
    ("max_pool2d", [(3, 7, 7)], dict(kernel_size=3, stride=1)),
    ("max_pool1d", [(2, 3, 11)], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", [(2, 3, 8, 8)], dict(kernel_size=2)),
    ("avg_pool2d", [(2, 3, 7, 9)], dict(kernel_size=3, stride=2, padding=1)),
    (
        "avg_pool2d",
        [(2, 3, 7, 9)],
        dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    ),
    ("avg_pool2d", [(1, 2, 8, 9)], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (
        "avg_pool2d",
        [(1, 2, 8, 9)],
        dict(kernel_size=(2, 3), stride=2, padding=(1, 1), ceil_mode=True, count_include_pad=False),
    ),
    ("avg_pool2d", [(1, 2, 6, 6)], dict(kernel_size=3, divisor_override=4)),
    ("avg_pool1d", [(2, 3, 11)], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("adaptive_avg_pool2d", [(2, 3, 7, 9)], dict(output_size=(3, 4))),
    ("adaptive_avg_pool2d", [(2, 3, 7, 9)], dict(output_size=1)),
    ("adaptive_avg_pool2d", [(2, 3, 5, 6)], dict(output_size=(7, None))),
    ("adaptive_avg_pool2d", [(3, 8, 8)], dict(output_size=(2, 2))),
    ("adaptive_avg_pool1d", [(2, 3, 10)], dict(output_size=4)),
]


@pytest.mark.parametrize("name,specs,kwargs", CONV, ids=lambda v: str(v)[:40])
def test_conv(name, specs, kwargs):
    check_op(name, specs, **kwargs)


@pytest.mark.parametrize("name,specs,kwargs", POOL, ids=lambda v: str(v)[:40])
def test_pool(name, specs, kwargs):
    check_op(name, specs, **kwargs)


def test_conv_empty_batch():
    check_op("conv2d", [(0, 3, 5, 5), (4, 3, 3, 3), (4,)], padding=1, fd=False)
    check_op("conv2d", [(0, 32, 3, 3), (2, 32, 3, 3), (2,)], padding=1, fd=False)  # NHWC
    check_op("max_pool2d", [(0, 3, 4, 4)], kernel_size=2, fd=False)


def test_max_pool_ties_and_indices(device):
    # all-equal windows (as after a ReLU): the gradient goes to the first position only
    x = mg.zeros(1, 1, 4, 4, device=device, requires_grad=True)
    y, idx = mg.max_pool2d(x, 2, return_indices=True)
    y.sum().backward()
    tx = torch.zeros(1, 1, 4, 4, requires_grad=True)
    ty, tidx = torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
    ty.sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), tx.grad.numpy())
    np.testing.assert_array_equal(idx.cpu().numpy(), tidx.numpy())


def test_max_pool_indices_with_padding(device):
    a = np.random.default_rng(0).standard_normal((2, 3, 7, 9))
    kw = dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True, return_indices=True)
    _, idx = mg.max_pool2d(mg.tensor(a, device=device), **kw)
    _, tidx = torch.nn.functional.max_pool2d(torch.tensor(a), **kw)
    np.testing.assert_array_equal(idx.cpu().numpy(), tidx.numpy())


def test_conv_float32_and_no_host_syncs(device):
    x = mg.randn(2, 3, 8, 8, device=device, requires_grad=True)
    w = mg.randn(4, 3, 3, 3, device=device, requires_grad=True)
    mg.backend.fake_stats.reset()
    y = mg.max_pool2d(mg.conv2d(x, w, padding=1), 2)
    y = mg.adaptive_avg_pool2d(mg.avg_pool2d(y, 2, ceil_mode=True), 1)
    y.backward(mg.ones_like(y))
    assert y.dtype == mg.float32 and x.grad.dtype == mg.float32
    assert mg.backend.fake_stats.syncs == 0


ERRORS = [
    (
        lambda: mg.conv2d(mg.zeros(1, 3, 5, 5), mg.zeros(4, 2, 3, 3)),
        r"conv2d.*3 channels.*\(4, 2, 3, 3\)",
    ),
    (lambda: mg.conv2d(mg.zeros(5, 5), mg.zeros(4, 3, 3, 3)), r"conv2d: expected input.*\(5, 5\)"),
    (
        lambda: mg.conv2d(mg.zeros(1, 4, 5, 5), mg.zeros(6, 2, 3, 3), groups=3),
        r"conv2d.*\(1, 4, 5, 5\).*groups=3",
    ),
    (
        lambda: mg.conv2d(mg.zeros(1, 3, 5, 5), mg.zeros(4, 3, 3)),
        r"conv2d: expected weight.*\(4, 3, 3\)",
    ),
    (lambda: mg.conv2d(mg.zeros(1, 3, 2, 2), mg.zeros(4, 3, 3, 3)), "conv2d: kernel"),
    (lambda: mg.conv2d(mg.zeros(1, 3, 5, 5), mg.zeros(4, 3, 3, 3), mg.zeros(3)), r"bias.*\(4,\)"),
    (lambda: mg.conv1d(mg.zeros(1, 3, 5, 5), mg.zeros(4, 3, 3)), r"conv1d: expected input"),
    (
        lambda: mg.conv_transpose2d(mg.zeros(1, 3, 5, 5), mg.zeros(4, 2, 3, 3)),
        r"conv_transpose2d.*3 channels.*\(4, 2, 3, 3\)",
    ),
    (lambda: mg.max_pool2d(mg.zeros(1, 3, 5, 5), 2, padding=2), "max_pool2d: padding"),
    (lambda: mg.avg_pool2d(mg.zeros(5), 2), r"avg_pool2d: expected input.*\(5,\)"),
]


@pytest.mark.parametrize("fn,match", ERRORS)
def test_errors(fn, match):
    with pytest.raises((ValueError, ShapeError), match=match):
        fn()


def test_same_padding_rejects_stride():
    with pytest.raises(ValueError, match="conv2d: padding='same'"):
        mg.conv2d(mg.zeros(1, 3, 5, 5), mg.zeros(4, 3, 3, 3), padding="same", stride=2)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_conv_partial_grads(device, op):
    # first-layer case: only the weight and bias need gradients; then no graph at all
    rng = np.random.default_rng(1)
    a, w, b = (
        rng.standard_normal((2, 3, 6, 6)),
        rng.standard_normal((3, 3, 3, 3)),
        rng.standard_normal(3),
    )
    mw, mb = (mg.tensor(v, device=device, requires_grad=True) for v in (w, b))
    tw, tb = (torch.tensor(v, requires_grad=True) for v in (w, b))
    kw = dict(stride=2, padding=1)
    getattr(mg, op)(mg.tensor(a, device=device), mw, mb, **kw).sum().backward()
    getattr(torch.nn.functional, op)(torch.tensor(a), tw, tb, **kw).sum().backward()
    np.testing.assert_allclose(mw.grad.cpu().numpy(), tw.grad.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(mb.grad.cpu().numpy(), tb.grad.numpy(), rtol=1e-6, atol=1e-8)
    with mg.no_grad():
        y = getattr(mg, op)(mg.tensor(a, device=device), mw, mb, **kw)
    assert y.grad_fn is None and not y.requires_grad


GEOM_ARGS = ((1, 1), (1, 1, 1, 1), (1, 1))  # stride, padding, dilation


def test_conv_channels_last_path_taken():
    geom = mg.ops.conv._Geom
    args = GEOM_ARGS
    assert geom((2, 32, 9, 8), (5, 32, 3, 3), *args, 1, nhwc=True).nhwc
    assert not geom((2, 64, 9, 8), (4, 32, 3, 3), *args, 2, nhwc=True).nhwc  # groups
    assert not geom((2, 3, 9, 8), (5, 3, 3, 3), *args, 1, nhwc=True).nhwc  # few rows: per image
    assert not geom((2, 16, 9, 8), (5, 16, 3, 3), *args, 1, nhwc=True).nhwc  # few channels
    assert not geom((2, 128, 9, 8), (5, 128, 1, 1), *args, 1, nhwc=True).nhwc  # 1x1
    assert not geom((2, 32, 9, 8), (5, 32, 3, 3), *args, 1).nhwc  # conv_transpose


@pytest.mark.parametrize("block,threads", [(1, 1), (2, 1), (1, 2), (2, 3)])
def test_conv_channels_last_blocks(monkeypatch, block, threads):
    # on the CPU, blocks of images (5 images leave a partial block), run by one thread or
    # shared by several; on the (fake) GPU one block holds the whole batch
    kernels = mg.ops._conv_kernels
    monkeypatch.setattr(kernels, "BLOCK_ELEMS", block * 3 * 4 * 288)
    monkeypatch.setattr(kernels, "MIN_BLOCK_ROWS", 0)
    monkeypatch.setattr(kernels, "workers", lambda g, step: threads)
    geom = mg.ops.conv._Geom((5, 32, 3, 4), (2, 32, 3, 3), *GEOM_ARGS, 1, nhwc=True)
    assert kernels.block_images(mg.zeros(1).numpy(), geom) == block
    assert kernels.block_images(mg.zeros(1, device="fakegpu")._data, geom) == 5
    before = mg.get_num_threads()
    check_op("conv2d", [(5, 32, 3, 4), (2, 32, 3, 3), (2,)], padding=1, dtypes=("float64",))
    assert mg.get_num_threads() == before  # the BLAS threads are given back


def test_conv_channels_last_block_rows():
    # small images with many channels: blocks of at least MIN_BLOCK_ROWS rows
    kernels = mg.ops._conv_kernels
    cpu = mg.zeros(1).numpy()
    small = mg.ops.conv._Geom((64, 256, 4, 4), (256, 256, 3, 3), *GEOM_ARGS, 1, nhwc=True)
    assert kernels.block_images(cpu, small) * 16 >= kernels.MIN_BLOCK_ROWS
    big = mg.ops.conv._Geom((64, 32, 28, 28), (64, 32, 3, 3), *GEOM_ARGS, 1, nhwc=True)
    assert kernels.block_images(cpu, big) == kernels.BLOCK_ELEMS // (28 * 28 * 288)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("needs", ["input", "weight"])
def test_conv_channels_last_partial_grads(device, needs, threads, monkeypatch):
    monkeypatch.setattr(mg.ops._conv_kernels, "BLOCK_ELEMS", 1)  # one image per block
    monkeypatch.setattr(mg.ops._conv_kernels, "MIN_BLOCK_ROWS", 0)
    monkeypatch.setattr(mg.ops._conv_kernels, "workers", lambda g, step: threads)
    rng = np.random.default_rng(2)
    a, w, b = (rng.standard_normal(s) for s in ((3, 32, 5, 6), (4, 32, 3, 3), (4,)))
    m_in = [mg.tensor(v, device=device) for v in (a, w, b)]
    t_in = [torch.tensor(v) for v in (a, w, b)]
    k = 0 if needs == "input" else 1
    for t in (m_in[k], t_in[k], m_in[2], t_in[2]):
        t.requires_grad_(True)
    up = rng.standard_normal((3, 4, 3, 6))
    mg.conv2d(*m_in, stride=(2, 1), padding=1).backward(mg.tensor(up, device=device))
    torch.nn.functional.conv2d(*t_in, stride=(2, 1), padding=1).backward(torch.tensor(up))
    for m, t in ((m_in[k], t_in[k]), (m_in[2], t_in[2])):
        np.testing.assert_allclose(m.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-8)
    assert m_in[1 - k].grad is None


@pytest.mark.parametrize("c,threads", [(12, 1), (32, 1), (32, 2)])
def test_conv_autocast_bfloat16(c, threads, monkeypatch):
    # 12 channels: channels-first columns; 32: channels-last, per image, on 1 or 2 threads
    monkeypatch.setattr(mg.ops._conv_kernels, "BLOCK_ELEMS", 1)
    monkeypatch.setattr(mg.ops._conv_kernels, "MIN_BLOCK_ROWS", 0)
    monkeypatch.setattr(mg.ops._conv_kernels, "workers", lambda g, step: threads)
    x, w, b = mg.randn(2, c, 6, 6), mg.randn(5, c, 3, 3, requires_grad=True), mg.randn(5)
    ref = mg.conv2d(x, w, b, padding=1)
    with mg.autocast("cpu", dtype=mg.bfloat16):
        y = mg.conv2d(x, w, b, padding=1)
        p = mg.adaptive_avg_pool2d(y, (2, 4))
    assert y.dtype == mg.bfloat16 and p.dtype == mg.bfloat16
    np.testing.assert_allclose(
        y.float().detach().numpy(), ref.detach().numpy(), rtol=0.05, atol=0.3
    )
    y.float().sum().backward()
    assert w.grad.dtype == mg.float32


# ---------------------------------------------------------------- Winograd F(2x2, 3x3)


def _wino_applies(xshape, wshape, device="cpu", dtype="float32", **kw):
    kw = dict(dict(stride=(1, 1), pads=(1, 1, 1, 1), dilation=(1, 1), groups=1), **kw)
    g = mg.ops.conv._Geom(xshape, wshape, kw["stride"], kw["pads"], kw["dilation"],
                          kw["groups"], nhwc=True)  # fmt: skip
    return mg.ops._winograd.applies(mg.zeros(1, dtype=getattr(mg, dtype), device=device)._data, g)


def test_winograd_path_taken(monkeypatch):
    monkeypatch.setattr(mg.ops._winograd, "MIN_TILES", 512)
    big, w = (64, 32, 14, 14), (64, 32, 3, 3)
    assert _wino_applies(big, w)
    assert _wino_applies(big, w, dtype="float64")
    assert not _wino_applies(big, w, dtype="bfloat16")
    assert not _wino_applies(big, w, dtype="float16")
    assert not _wino_applies(big, w, device="fakegpu")  # GPUs keep one product per batch
    assert not _wino_applies(big, w, stride=(2, 2))
    assert not _wino_applies(big, w, dilation=(1, 2))
    assert not _wino_applies(big, (64, 32, 5, 5))
    assert not _wino_applies(big, (64, 16, 3, 3), groups=2)
    assert not _wino_applies((64, 16, 14, 14), (64, 16, 3, 3))  # few channels: im2col
    assert not _wino_applies((8, 32, 14, 14), w)  # 392 output tiles < MIN_TILES
    monkeypatch.setattr(mg.ops._winograd, "ENABLED", False)
    assert not _wino_applies(big, w)


WINO = [  # input, weight, padding: even and odd sizes, padding 0..2 and unequal
    ((5, 32, 6, 7), (4, 32, 3, 3), 1),
    ((3, 33, 9, 4), (6, 33, 3, 3), 0),
    ((2, 32, 5, 5), (3, 32, 3, 3), 2),
    ((3, 40, 4, 6), (2, 40, 3, 3), (2, 0)),
    ((4, 32, 1, 1), (5, 32, 3, 3), 1),
]


@pytest.mark.parametrize("xs,ws,pad", WINO)
def test_winograd_against_torch(monkeypatch, xs, ws, pad):
    monkeypatch.setattr(mg.ops._winograd, "MIN_TILES", 0)
    monkeypatch.setattr(mg.ops._winograd, "BLOCK_ELEMS", 1)  # one image per block
    g = mg.ops.conv._Geom(xs, ws, (1, 1), (0,) * 4, (1, 1), 1, nhwc=True)
    assert mg.ops._winograd.applies(np.zeros(1), g)
    check_op("conv2d", [xs, ws, (ws[0],)], padding=pad, devices=("cpu",))
    check_op("conv2d", [xs, ws, None], padding=pad, devices=("cpu",), dtypes=("float32",))


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("images,threads", [(1, 1), (2, 1), (2, 2), (3, 3), (100, 1)])
def test_winograd_blocks_and_threads(monkeypatch, images, threads, keep):
    # blocks of 1..3 images (5 images leave a partial block; 100 holds them all), run by one
    # thread or shared by several; the input's transform kept by the forward or made again
    wg = mg.ops._winograd
    monkeypatch.setattr(wg, "MIN_TILES", 0)
    monkeypatch.setattr(wg, "KEEP_BYTES", 1 << 30 if keep else 0)
    monkeypatch.setattr(wg, "BLOCK_ELEMS", images * 16 * 3 * 4 * 32)
    monkeypatch.setattr(mg.ops._conv_kernels, "workers", lambda g, step: threads)
    before = mg.get_num_threads()
    check_op("conv2d", [(5, 32, 6, 8), (3, 32, 3, 3), (3,)], padding=1, devices=("cpu",))
    assert mg.get_num_threads() == before


@pytest.mark.parametrize("needs", ["input", "weight"])
def test_winograd_partial_grads(monkeypatch, needs):
    monkeypatch.setattr(mg.ops._winograd, "MIN_TILES", 0)
    rng = np.random.default_rng(3)
    a, w = rng.standard_normal((3, 32, 7, 6)), rng.standard_normal((4, 32, 3, 3))
    m_in, t_in = [mg.tensor(a), mg.tensor(w)], [torch.tensor(a), torch.tensor(w)]
    k = 0 if needs == "input" else 1
    m_in[k].requires_grad_(True)
    t_in[k].requires_grad_(True)
    up = rng.standard_normal((3, 4, 7, 6))
    mg.conv2d(*m_in, padding=1).backward(mg.tensor(up))
    torch.nn.functional.conv2d(*t_in, padding=1).backward(torch.tensor(up))
    np.testing.assert_allclose(m_in[k].grad.numpy(), t_in[k].grad.numpy(), rtol=1e-9, atol=1e-9)
    assert m_in[1 - k].grad is None


def test_winograd_matches_im2col(monkeypatch):
    # the two CPU paths agree at a size where Winograd is the default
    wg = mg.ops._winograd
    x, w, b = mg.randn(16, 32, 14, 14), mg.randn(8, 32, 3, 3) / 10, mg.randn(8)
    outs = []
    for on in (True, False):
        monkeypatch.setattr(wg, "ENABLED", on)
        g = mg.ops.conv._Geom(tuple(x.shape), tuple(w.shape), (1, 1), (1,) * 4, (1, 1), 1,
                              nhwc=True)  # fmt: skip
        assert wg.applies(x._data, g) == on
        outs.append(mg.conv2d(x, w, b, padding=1).numpy())
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("keep", [True, False])
def test_winograd_input_changed_after_forward(monkeypatch, keep):
    # the backward must not see an in-place change the caller makes to the input
    monkeypatch.setattr(mg.ops._winograd, "MIN_TILES", 0)
    monkeypatch.setattr(mg.ops._winograd, "KEEP_BYTES", 1 << 30 if keep else 0)
    rng = np.random.default_rng(4)
    a, w = rng.standard_normal((2, 32, 6, 5)), rng.standard_normal((3, 32, 3, 3))
    x, mw = mg.tensor(a), mg.tensor(w, requires_grad=True)
    y = mg.conv2d(x, mw, padding=1)
    x.numpy()[...] += 1.0  # the caller reuses its buffer
    y.sum().backward()
    tw = torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(a), tw, padding=1).sum().backward()
    np.testing.assert_allclose(mw.grad.numpy(), tw.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_run_blocks_gives_blas_threads_back_to_overlapping_callers(monkeypatch):
    # two callers inside run_blocks at once (from two Python threads): the BLAS keeps one
    # thread until the last leaves, then gets its count back
    kernels = mg.ops._conv_kernels
    count = [4]
    monkeypatch.setattr(kernels.threads, "get_blas_threads", lambda: count[0])
    monkeypatch.setattr(kernels.threads, "set_blas_threads", lambda n: count.__setitem__(0, n))
    kernels._single_blas(True)
    kernels._single_blas(True)  # the second caller sees 1 thread
    kernels._single_blas(False)
    assert count[0] == 1  # the first caller is still running blocks
    kernels._single_blas(False)
    assert count[0] == 4
