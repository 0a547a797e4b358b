"""CUDA graphs on the fake GPU: PyTorch's whole-network capture recipe, with manygrad
imported as torch, must give the eager steps' losses and weights."""

import numpy as np
import pytest

import manygrad as torch
from manygrad.cuda import graphs
from manygrad.errors import CaptureError

DEV = "fakegpu"
N, D_IN, H, D_OUT = 16, 8, 12, 4


def _opt(name, params, lr):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "sgd-capturable":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, capturable=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, capturable=True, amsgrad=True, weight_decay=0.1)
    return torch.optim.AdamW(params, lr=lr, capturable=True, weight_decay=0.1)


def _batches(n):
    rng = np.random.default_rng(1)
    return [
        (
            torch.tensor(rng.standard_normal((N, D_IN)).astype(np.float32)).to(DEV),
            torch.tensor(rng.standard_normal((N, D_OUT)).astype(np.float32)).to(DEV),
        )
        for _ in range(n)
    ]


def _setup(opt_name, step_lr, dropout=0.0):
    torch.manual_seed(0)
    layers = [torch.nn.Linear(D_IN, H), torch.nn.GELU(), torch.nn.Dropout(dropout)]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(H, D_OUT)).to(DEV)
    opt = _opt(opt_name, model.parameters(), 0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5) if step_lr else None
    return model, opt, sched


def _weights(model):
    return [p.detach().cpu().numpy() for p in model.parameters()]


def eager(opt_name, step_lr, steps, dropout=0.0):
    model, opt, sched = _setup(opt_name, step_lr, dropout)
    loss_fn = torch.nn.MSELoss()
    losses = []
    for x, y in _batches(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        losses.append(float(loss))
    return losses, _weights(model)


def graphed(opt_name, step_lr, steps, warmup=3, dropout=0.0):
    """PyTorch's documented recipe (docs/source/notes/cuda.rst, whole-network capture)."""
    model, opt, sched = _setup(opt_name, step_lr, dropout)
    loss_fn = torch.nn.MSELoss()
    data = _batches(steps)
    static_input = torch.zeros(N, D_IN, device=DEV)  # NOTE: zeros: no draws from the RNG
    static_target = torch.zeros(N, D_OUT, device=DEV)
    losses = []
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for x, y in data[:warmup]:
            static_input.copy_(x)
            static_target.copy_(y)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(static_input), static_target)
            loss.backward()
            opt.step()
            if sched:
                sched.step()
            losses.append(float(loss))
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(g):
        static_y_pred = model(static_input)
        static_loss = loss_fn(static_y_pred, static_target)
        static_loss.backward()
        opt.step()
    for x, y in data[warmup:]:
        static_input.copy_(x)
        static_target.copy_(y)
        g.replay()
        if sched:
            sched.step()
        losses.append(float(static_loss))
    return losses, _weights(model), g


@pytest.mark.parametrize("opt_name", ["sgd", "sgd-capturable", "adam", "adamw"])
@pytest.mark.parametrize("step_lr", [False, True])
def test_replays_equal_eager_steps(opt_name, step_lr):
    steps = 9
    graphs.stats.reset()
    le, we = eager(opt_name, step_lr, steps)
    lg, wg, g = graphed(opt_name, step_lr, steps)
    assert graphs.stats.captures == 1 and graphs.stats.replays == steps - 3
    assert g.num_nodes > 20  # forward, backward and the optimizer's kernels
    np.testing.assert_allclose(lg, le, atol=1e-5, rtol=0)
    for a, b in zip(wg, we):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert le[-1] != le[3]  # the weights did move


def test_step_lr_reaches_replays():
    """With the scheduler, replays differ from the same replays without it."""
    with_lr = graphed("adamw", True, 9)[1]
    without = graphed("adamw", False, 9)[1]
    assert max(np.abs(a - b).max() for a, b in zip(with_lr, without)) > 1e-4


def test_dropout_masks_advance_on_replay():
    le, we = eager("sgd", False, 7, dropout=0.3)
    lg, wg, _ = graphed("sgd", False, 7, dropout=0.3)
    np.testing.assert_allclose(lg, le, atol=1e-5, rtol=0)


def test_capture_runs_nothing():
    """Capture does not execute: weights keep their values, new outputs hold NaN."""
    model, opt, _ = _setup("sgd", False)
    x = torch.randn(N, D_IN, device=DEV)
    opt.zero_grad(set_to_none=True)
    model(x).sum().backward()
    opt.step()
    before = _weights(model)
    g = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(g):
        out = model(x)
        out.sum().backward()
        opt.step()
    for a, b in zip(_weights(model), before):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(out.detach().cpu().numpy()).all()
    g.replay()
    assert np.isfinite(out.detach().cpu().numpy()).all()
    assert any(np.abs(a - b).max() > 0 for a, b in zip(_weights(model), before))


def test_adam_without_capturable_is_refused():
    model = torch.nn.Linear(3, 2).to(DEV)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(2, 3, device=DEV)).sum().backward()
    opt.step()
    g = torch.cuda.CUDAGraph()
    with pytest.raises(CaptureError, match="capturable=True"):
        with torch.cuda.graph(g):
            opt.step()
    assert graphs.current_capture() is None


def test_make_graphed_callables_matches_eager():
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    ref = ref.to(DEV)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    net = net.to(DEV)
    net.load_state_dict(ref.state_dict())
    sample = torch.randn(4, 5, device=DEV, requires_grad=True)
    net = torch.cuda.make_graphed_callables(net, (sample,))
    for _ in range(2):
        x = torch.randn(4, 5, device=DEV, requires_grad=True)
        x2 = x.detach().clone().requires_grad_()
        y, y2 = net(x), ref(x2)
        np.testing.assert_allclose(y.detach().cpu().numpy(), y2.detach().cpu().numpy(), 1e-6)
        (y * y).sum().backward()
        (y2 * y2).sum().backward()
        np.testing.assert_allclose(x.grad.cpu().numpy(), x2.grad.cpu().numpy(), atol=1e-6)
        for p, q in zip(net.parameters(), ref.parameters()):
            np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.cpu().numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="shapes"):
        net(torch.randn(3, 5, device=DEV))


def test_pool_sharing_and_reset():
    a = torch.zeros(3, device=DEV)
    g1, g2 = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
    with torch.cuda.graph(g1):
        b = a + 1
    with torch.cuda.graph(g2, pool=g1.pool()):
        c = b * 2
    assert g2.pool() is g1.pool()
    a.copy_(torch.tensor([1.0, 2.0, 3.0]).to(DEV))
    g1.replay()
    g2.replay()
    np.testing.assert_array_equal(c.cpu().numpy(), [4.0, 6.0, 8.0])
    g1.reset()
    with pytest.raises(CaptureError, match="not captured"):
        g1.replay()
    handle = torch.cuda.graph_pool_handle()
    g3 = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g3, pool=handle):
        _ = a * 3
    assert g3.pool() is handle and handle.arrays


def test_streams_api():
    s = torch.cuda.Stream()
    assert torch.cuda.current_stream() == torch.cuda.default_stream()
    with torch.cuda.stream(s):
        assert torch.cuda.current_stream() is s
    assert torch.cuda.current_stream() is not s
    s.wait_stream(torch.cuda.current_stream())
    e = s.record_event()
    # NOTE: on a real GPU the event completes once the work queued before it has run
    e.synchronize()
    assert e.query() and s.query()
    s.synchronize()
    torch.cuda.synchronize()


def _gpt_run(graph: bool, steps: int = 6):
    torch.manual_seed(0)
    model = torch.models.get("gpt", vocab_size=11, block_size=8).to(DEV)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, capturable=True)
    rng = np.random.default_rng(0)
    data = [
        (
            torch.tensor(rng.integers(0, 11, (4, 8))).to(DEV),
            torch.tensor(rng.integers(0, 11, (4, 8))).to(DEV),
        )
        for _ in range(steps)
    ]
    sx = torch.zeros(4, 8, dtype=torch.int64, device=DEV)
    sy = torch.zeros(4, 8, dtype=torch.int64, device=DEV)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(sx).reshape(-1, 11), sy.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    losses, g = [], None
    for i, (x, y) in enumerate(data):
        if graph and i == 3:
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                static_loss = step()
        sx.copy_(x)
        sy.copy_(y)
        if g is None:
            losses.append(float(step()))
        else:
            g.replay()
            losses.append(float(static_loss))
    return losses, _weights(model)


def test_char_gpt_step_replays_equal_eager():
    """Attention, LayerNorm, embeddings and cross-entropy inside one captured step."""
    le, we = _gpt_run(False)
    lg, wg = _gpt_run(True)
    np.testing.assert_allclose(lg, le, atol=1e-5, rtol=0)
    for a, b in zip(wg, we):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_debug_dump_lists_the_recorded_kernels(tmp_path):
    x = torch.ones(3, device=DEV)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        _ = (x * 2).exp()
    g.debug_dump(str(tmp_path / "g.txt"))
    text = (tmp_path / "g.txt").read_text()
    assert g.num_nodes == 2 and "0:" in text and "1:" in text
