"""Mixed precision: autocast's dtype switching, and GradScaler against PyTorch's."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.amp as amp
import manygrad.optim as optim
from manygrad import autograd

torch = pytest.importorskip("torch")


def _linear_out(device, **autocast_kwargs):
    x = mg.randn(2, 3, device=device)
    w = mg.randn(4, 3, device=device, requires_grad=True)
    with amp.autocast(**autocast_kwargs):
        return mg.nn.functional.linear(x, w)


# ---------------------------------------------------------------------------- autocast


def test_autocast_linear_float16_and_restores(device):
    dev_type = mg.device(device).type
    y = _linear_out(device, device_type=dev_type, dtype=mg.float16)
    assert y.dtype is mg.float16
    assert autograd.autocast_dtypes == {}
    y2 = mg.nn.functional.linear(mg.randn(2, 3, device=device), mg.randn(4, 3, device=device))
    assert y2.dtype is mg.float32


def test_autocast_gradients_reach_float32_params():
    w = mg.randn(4, 3, requires_grad=True)
    with amp.autocast("cpu", dtype=mg.float16):
        y = mg.nn.functional.linear(mg.randn(2, 3), w)
    y.sum().backward()
    assert w.grad.dtype is mg.float32


def test_autocast_cpu_default_bfloat16():
    assert _linear_out("cpu", device_type="cpu").dtype is mg.bfloat16


def test_autocast_defaults_as_pytorch():
    assert amp.autocast("cpu").fast_dtype is mg.bfloat16
    assert amp.autocast("cuda").fast_dtype is mg.float16
    assert amp.get_autocast_dtype("cpu") is mg.bfloat16
    with amp.autocast("cpu"):
        assert amp.is_autocast_enabled("cpu") and not amp.is_autocast_enabled("cuda")
    assert not amp.is_autocast_enabled("cpu")


def test_autocast_nesting_and_disable():
    with amp.autocast("cpu", dtype=mg.float16):
        with amp.autocast("cpu", enabled=False):
            assert "cpu" not in autograd.autocast_dtypes
            assert mg.nn.functional.linear(mg.randn(2, 3), mg.randn(4, 3)).dtype is mg.float32
        assert autograd.autocast_dtypes["cpu"] is mg.float16
        with amp.autocast("cpu", dtype=mg.bfloat16):
            assert autograd.autocast_dtypes["cpu"] is mg.bfloat16
        assert autograd.autocast_dtypes["cpu"] is mg.float16
    assert autograd.autocast_dtypes == {}


def test_autocast_restores_after_an_exception():
    with pytest.raises(KeyError), amp.autocast("cpu", dtype=mg.float16):
        raise KeyError("boom")
    assert autograd.autocast_dtypes == {}


def test_autocast_as_decorator_reentrant():
    ac = amp.autocast("cpu", dtype=mg.float16)

    @ac
    def f(depth):
        assert autograd.autocast_dtypes["cpu"] is mg.float16
        return f(depth - 1) if depth else mg.matmul(mg.randn(2, 3), mg.randn(3, 2))

    assert f(2).dtype is mg.float16
    assert f.__name__ == "f"
    assert autograd.autocast_dtypes == {}


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(device_type="tpu"), ValueError, "device_type"),
        (dict(device_type="cpu", dtype=mg.float64), TypeError, "float16 or mg.bfloat16"),
    ],
)
def test_autocast_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        amp.autocast(**kwargs)


# ---------------------------------------------------------------------------- GradScaler

# per step: the factor w in loss = sum(p * w); 1e36 overflows float32 once scaled
WS = [1.0, 1.0, 1.0, 1e36, 2.0, 1.0, float("nan"), 1.0, 1.0, 1.0, 1.0, float("inf"), 0.5, 1.0]


def _scaler_run(lib, opt_name, device="cpu"):
    T = torch if lib is torch else mg
    mod = torch.optim if lib is torch else optim
    dev = {} if lib is torch else {"device": device}
    p = T.tensor([1.0, -2.0, 3.0], requires_grad=True, **dev)
    opt = getattr(mod, opt_name)([p], lr=0.1)
    Scaler = torch.amp.GradScaler if lib is torch else amp.GradScaler
    scaler = Scaler("cpu", init_scale=2.0**10, growth_interval=3)
    trace = []
    for w in WS:
        opt.zero_grad()
        loss = (p * T.tensor([w, w, 1.0], **dev)).sum()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        trace.append((scaler.get_scale(), p.detach().cpu().numpy().copy()))
    return trace, scaler


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_grad_scaler_matches_torch(opt_name, device):
    mine, _ = _scaler_run(mg, opt_name, device)
    ref, _ = _scaler_run(torch, opt_name)
    for i, ((s1, p1), (s2, p2)) in enumerate(zip(mine, ref)):
        assert s1 == s2, f"scale differs after step {i}"
        np.testing.assert_allclose(p1, p2, rtol=1e-5, err_msg=f"params after step {i}")
    scales = [s for s, _ in mine]
    assert min(scales) < 2.0**10 < max(scales)  # it both backed off and grew


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_grad_scaler_state_dict_matches_torch():
    _, mine = _scaler_run(mg, "SGD")
    _, ref = _scaler_run(torch, "SGD")
    assert mine.state_dict() == ref.state_dict()
    fresh = amp.GradScaler("cpu")
    fresh.load_state_dict(mine.state_dict())
    assert fresh.state_dict() == mine.state_dict()


def test_grad_scaler_one_host_sync_per_step():
    p = mg.tensor([1.0, 2.0], device="fakegpu", requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    scaler = amp.GradScaler("fakegpu")
    for _ in range(3):
        loss = (p * p).sum()
        scaler.scale(loss).backward()
        stats = mg.backend.fake_stats
        stats.reset()
        scaler.unscale_(opt)
        assert stats.syncs == 0
        scaler.step(opt)
        assert stats.syncs == 1
        scaler.update()
        assert stats.syncs == 1
        opt.zero_grad()


def test_unscale_then_step_does_not_unscale_twice():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    scaler = amp.GradScaler("cpu", init_scale=8.0)
    scaler.scale((p * 3.0).sum()).backward()
    scaler.unscale_(opt)
    np.testing.assert_array_equal(p.grad.numpy(), [3.0, 3.0])
    scaler.step(opt)
    np.testing.assert_array_equal(p.detach().numpy(), [-2.0, -1.0])
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 8.0


def test_skipped_step_leaves_params_and_halves_scale():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p], lr=1.0)
    scaler = amp.GradScaler("cpu", init_scale=4.0)
    scaler.scale((p * mg.tensor([float("inf"), 1.0])).sum()).backward()
    assert scaler.step(opt) is None
    scaler.update()
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 2.0])
    assert scaler.get_scale() == 2.0 and opt.state == {}


def test_update_with_new_scale():
    p = mg.tensor([1.0], requires_grad=True)
    scaler = amp.GradScaler("cpu")
    scaler.scale(p.sum()).backward()
    scaler.update(new_scale=128.0)
    assert scaler.get_scale() == 128.0
    scaler.update(new_scale=mg.tensor(32.0))
    assert scaler.get_scale() == 32.0


def test_errors():
    p = mg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    scaler = amp.GradScaler("cpu")
    scaler.scale(p.sum()).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="closure"):
        scaler.step(opt, closure=lambda: None)
    h = mg.tensor([1.0], dtype=mg.float16, requires_grad=True)
    h.grad = mg.tensor([1.0], dtype=mg.float16)
    scaler2 = amp.GradScaler("cpu")
    scaler2.scale(mg.tensor(1.0))
    with pytest.raises(ValueError, match="float16 gradients"):
        scaler2.unscale_(optim.SGD([h]))


def test_disabled_scaler_is_a_pass_through():
    p = mg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.5)
    scaler = amp.GradScaler("cpu", enabled=False)
    loss = p.sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.step(opt)
    scaler.update()
    assert p.item() == 0.5 and scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    assert not scaler.is_enabled()


@pytest.mark.skipif(mg.cuda.is_available(), reason="checks the no-GPU fallback")
def test_cuda_scaler_without_gpu_disables_itself():
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = amp.GradScaler("cuda")
    assert not scaler.is_enabled()


def test_scale_lists_of_losses():
    scaler = amp.GradScaler("cpu", init_scale=4.0)
    a, b = scaler.scale([mg.tensor(1.0), mg.tensor(2.0)])
    assert (a.item(), b.item()) == (4.0, 8.0)


def test_autocast_op_lists_match_torch_on_the_cpu():
    torch = pytest.importorskip("torch")
    rs = np.random.RandomState(0)
    xa, wa = rs.randn(4, 8).astype(np.float32), rs.randn(8, 8).astype(np.float32)

    def run(lib):
        x, w = lib.tensor(xa), lib.tensor(wa)
        h = x @ w
        with lib.autocast("cpu", dtype=lib.bfloat16):
            h = x @ w
            return {
                "matmul": h, "addmm": lib.addmm(x, x, w),
                "baddbmm": lib.baddbmm(x[None], x[None], w[None]),
                "sdpa": lib.nn.functional.scaled_dot_product_attention(
                    x[None, None], x[None, None], x[None, None]),
                "cross_entropy": lib.nn.functional.cross_entropy(h, lib.tensor([0, 1, 2, 3])),
                "nll_loss": lib.nn.functional.nll_loss(h, lib.tensor([0, 1, 2, 3])),
                "mse_loss": lib.nn.functional.mse_loss(h, h),
                "kl_div": lib.nn.functional.kl_div(h, h, reduction="batchmean"),
                "prod": h.prod(), "cdist": lib.cdist(h, h), "softmax": lib.softmax(h, -1),
                "exp": h.exp(), "sum": h.sum(), "mean": h.mean(), "pow": h ** 2,
                "rsqrt": h.abs().rsqrt(), "logsumexp": h.logsumexp(1), "cumsum": h.cumsum(0),
                "norm": lib.linalg.vector_norm(h), "softmin": lib.nn.functional.softmin(h, 1),
                "layer_norm": lib.nn.functional.layer_norm(h, (8,)),
                "normalize": lib.nn.functional.normalize(h),
            }  # fmt: skip

    got, want = run(mg), run(torch)
    for k in want:
        assert got[k].dtype.name == str(want[k].dtype)[6:], k


def test_autocast_keeps_gpu_normalisations_in_float32():
    x = mg.randn(4, 8, device="fakegpu")
    w = mg.randn(8, 8, device="fakegpu")
    with mg.autocast("fakegpu"):
        h = x @ w
        assert h.dtype is mg.float16
        assert mg.softmax(h, -1).dtype is mg.float32
        assert mg.log_softmax(h, -1).dtype is mg.float32
        assert mg.nn.functional.layer_norm(h, (8,)).dtype is mg.float32
        assert h.cumsum(0).dtype is mg.float32
        assert mg.nn.functional.cross_entropy(h, mg.tensor([0, 1, 2, 3], device="fakegpu")).dtype \
            is mg.float32  # fmt: skip
    assert mg.softmax(h, -1).dtype is mg.float16  # outside autocast: as given


def test_autocast_gpu_float32_list():
    """PyTorch's CUDA autocast runs these ops in float32; others keep the low precision,
    and the ops inside a listed op see no autocast (attention's softmax stays 16-bit)."""
    x = mg.randn(4, 8, device="fakegpu").to(mg.bfloat16)
    F = mg.nn.functional
    with mg.autocast("fakegpu", dtype=mg.bfloat16):
        fp32 = {
            "exp": x.exp(), "log": x.abs().log(), "pow": x ** 2, "sum": x.sum(1),
            "rsqrt": mg.rsqrt(x.abs()), "reciprocal": x.reciprocal(), "tan": mg.tan(x),
            "logsumexp": x.logsumexp(1), "cumprod": x.cumprod(1), "norm": x.norm(),
            "vector_norm": mg.linalg.vector_norm(x, dim=1), "softplus": F.softplus(x),
            "softmin": F.softmin(x, 1), "normalize": F.normalize(x),
            "cosine_similarity": F.cosine_similarity(x, x), "group_norm": F.group_norm(x, 2),
            "layer_norm": mg.nn.LayerNorm(8, device="fakegpu")(x), "cdist": mg.cdist(x, x),
        }  # fmt: skip
        low = {
            "mean": x.mean(), "relu": F.relu(x), "add": x + x, "matmul": x @ x.T,
            "sdpa": F.scaled_dot_product_attention(x[None], x[None], x[None]),
        }  # fmt: skip
    for name, y in fp32.items():
        assert y.dtype is mg.float32, name
    for name, y in low.items():
        assert y.dtype is mg.bfloat16, name
    np.testing.assert_allclose(
        fp32["exp"].cpu().numpy(), np.exp(x.float().cpu().numpy()), rtol=1e-6
    )
    assert x.exp().dtype is mg.bfloat16  # outside autocast: as given


def test_autocast_inner_ops_see_no_autocast():
    # an op run in float32 under autocast computes its inner products in float32 too (they
    # would otherwise take the autocast dtype), as PyTorch excludes autocast inside its ops
    from manygrad.autograd import autocast_fp32

    gram = autocast_fp32(("fakegpu",))(lambda a: a @ a.T)
    a = mg.randn(5, 3, device="fakegpu").to(mg.bfloat16)
    with mg.autocast("fakegpu", dtype=mg.bfloat16):
        g = gram(a)
        assert (a @ a.T).dtype is mg.bfloat16
    assert g.dtype is mg.float32
    np.testing.assert_allclose(g.cpu().numpy(), (a.float() @ a.float().T).cpu().numpy(), rtol=1e-6)
