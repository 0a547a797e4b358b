"""What a capture on the fake GPU refuses, records and undoes."""

import numpy as np
import pytest

import manygrad as mg
from manygrad import backend, fakegpu
from manygrad.cuda import _fake_graph, graphs
from manygrad.errors import CaptureError

DEV = "fakegpu"


@pytest.mark.parametrize(
    "read, name",
    [
        (lambda t: t.sum().item(), r"\.item\(\)"),
        (lambda t: float(t.sum()), r"\.item\(\)|float\(\)"),
        (lambda t: bool(t.sum() > 0), r"\.item\(\)|bool\(\)"),
        (lambda t: t.tolist(), r"\.get\(\)|\.tolist\(\)"),
        (lambda t: print(t), r"\.get\(\)|repr"),
        (lambda t: t.cpu(), r"\.get\(\)"),
        (lambda t: t + mg.tensor([1.0, 2.0]).to(DEV), "host-to-device"),
        (lambda t: t._data[t._data > 0], "boolean-mask"),
        (lambda t: backend.fake_xp.nonzero(t._data), "nonzero"),
        (lambda t: mg.cuda.synchronize(), "synchronize"),
    ],
)
def test_host_reads_and_uploads_are_refused(read, name):
    t = mg.tensor([1.0, -2.0], device=DEV)
    g = mg.cuda.CUDAGraph()
    with pytest.raises(CaptureError, match=name) as e:
        with mg.cuda.graph(g):
            read(t * 2)
    assert "outside the captured region" in str(e.value) or "synchronize" in name
    assert graphs.current_capture() is None and fakegpu._CAP is None  # the capture is dropped
    g2 = mg.cuda.CUDAGraph()  # and a new one works
    with mg.cuda.graph(g2):
        u = t * 3
    g2.replay()
    np.testing.assert_array_equal(u.cpu().numpy(), [3.0, -6.0])


def test_cublas_style_matmul_is_refused():
    a = mg.randn(3, 4, device=DEV)
    b = mg.randn(4, 2, device=DEV)
    g = mg.cuda.CUDAGraph()
    with pytest.raises(CaptureError, match="cuBLAS"):
        with mg.cuda.graph(g):
            a._data @ b._data  # a raw CuPy-style product, not manygrad's GEMM path
    # manygrad's own ops go through the capture-safe path ...
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        c = a @ b
    g.replay()
    np.testing.assert_allclose(c.cpu().numpy(), a.cpu().numpy() @ b.cpu().numpy(), 1e-6)
    # ... unless the fake GPU emulates CuPy without one
    old = _fake_graph.capture_safe_gemm
    _fake_graph.capture_safe_gemm = False
    try:
        with pytest.raises(CaptureError, match=r"matmul\(\) on cuBLAS"):
            with mg.cuda.graph(mg.cuda.CUDAGraph()):
                a @ b
    finally:
        _fake_graph.capture_safe_gemm = old


def test_replay_reads_current_buffers_and_writes_the_same_outputs():
    x = mg.zeros(4, device=DEV)
    acc = mg.zeros(4, device=DEV)
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        y = (x * 2).exp()
        acc._data += y._data
    assert np.isnan(y.cpu().numpy()).all()
    np.testing.assert_array_equal(acc.cpu().numpy(), 0)  # the capture's write was undone
    for k in range(3):
        x.copy_(mg.full((4,), float(k)).to(DEV))
        g.replay()
        np.testing.assert_allclose(y.cpu().numpy(), np.exp(2.0 * k), 1e-6)
    np.testing.assert_allclose(acc.cpu().numpy(), 1 + np.exp(2.0) + np.exp(4.0), 1e-5)
    assert graphs.current_capture() is None


def test_python_scalars_are_baked_but_device_scalars_follow():
    """Why capturable optimizers exist: a kernel's Python scalar is fixed at capture."""
    x = mg.ones(2, device=DEV)
    lr = 0.5
    lr_dev = backend.fake_xp.full((), 0.5, np.float32)
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        baked = x._data * lr
        follows = x._data * lr_dev
    lr = 0.1  # noqa: F841 - the graph never sees it
    lr_dev.fill(0.1)
    g.replay()
    np.testing.assert_allclose(baked.get(), 0.5)
    np.testing.assert_allclose(follows.get(), 0.1)


def test_grad_scaler_skips_inf_steps_on_the_device_in_a_graph():
    mg.manual_seed(0)
    model = mg.nn.Linear(3, 1).to(DEV)
    opt = mg.optim.Adam(model.parameters(), lr=0.1, capturable=True)
    scaler = mg.amp.GradScaler(DEV, init_scale=4.0, growth_interval=100)
    x = mg.ones(2, 3, device=DEV)

    def step():
        opt.zero_grad(set_to_none=True)
        scaler.scale(model(x).sum()).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(2):
        step()
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        step()
    w0 = model.weight.detach().cpu().numpy()
    backend.fake_stats.reset()
    g.replay()  # finite gradients: a step
    assert backend.fake_stats.syncs == 0  # no host read in the step
    w1 = model.weight.detach().cpu().numpy()
    assert np.abs(w1 - w0).max() > 1e-3
    x.copy_(mg.full((2, 3), float("inf")).to(DEV))
    g.replay()  # inf gradients: skipped, scale halved
    np.testing.assert_array_equal(model.weight.detach().cpu().numpy(), w1)
    assert scaler.get_scale() == 2.0
    x.copy_(mg.ones(2, 3).to(DEV))
    g.replay()
    assert np.abs(model.weight.detach().cpu().numpy() - w1).max() > 1e-3


def test_grad_scaler_eager_capturable_matches_host_skip():
    """The on-device skip gives what the host-read skip gives."""
    res = []
    for capturable in (False, True):
        mg.manual_seed(0)
        model = mg.nn.Linear(3, 2).to(DEV)
        opt = mg.optim.AdamW(model.parameters(), lr=0.1, capturable=capturable)
        scaler = mg.amp.GradScaler(DEV, init_scale=8.0, growth_interval=2)
        for k in range(5):
            val = float("nan") if k in (0, 2) else 1.0 + k
            opt.zero_grad(set_to_none=True)
            scaler.scale(model(mg.full((2, 3), val).to(DEV)).sum()).backward()
            scaler.step(opt)
            scaler.update()
        res.append((model.weight.detach().cpu().numpy(), scaler.get_scale()))
    np.testing.assert_allclose(res[0][0], res[1][0], atol=1e-6)
    assert res[0][1] == res[1][1]
