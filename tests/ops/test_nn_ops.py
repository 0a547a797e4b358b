"""Softmax, class and regression losses, embedding, dropout and one_hot against PyTorch."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import AutogradError, DTypeError, ShapeError
from opcheck import check_op

torch = pytest.importorskip("torch")
TF = torch.nn.functional

rng = np.random.default_rng(0)
T4 = rng.integers(0, 5, size=(4,))
T_IGN = np.array([0, -100, 3, 4])
T_K = rng.integers(0, 5, size=(2, 3, 2))
T_K_IGN = np.where(rng.random((2, 3, 2)) < 0.3, 1, T_K)
W5 = rng.uniform(0.5, 2.0, size=5)


def _consts(fn, lib):
    """``fn`` with NumPy keyword arguments (weights) made tensors like the first input."""

    def f(x, *args, **kw):
        for k, v in kw.items():
            if isinstance(v, np.ndarray):
                kw[k] = (
                    torch.tensor(v, dtype=x.dtype)
                    if lib is torch
                    else mg.tensor(v, dtype=x.dtype, device=x.device)
                )
        return fn(x, *args, **kw)

    return f


def check_consts(name, specs, **kw):
    """``check_op`` for ops whose keyword arguments include constant tensors."""
    mg_fn = getattr(mg.nn.functional, name)
    check_op(_consts(mg_fn, mg), specs, torch_fn=_consts(getattr(TF, name), torch), **kw)


@pytest.mark.parametrize(
    "name, specs, kw",
    [
        ("softmax", [(3, 5)], dict(dim=-1)),
        ("softmax", [(3, 5)], dict(dim=0)),
        ("softmax", [(2, 3, 4)], dict(dim=1)),
        ("softmax", [()], dict(dim=0)),
        ("softmax", [(0, 3)], dict(dim=-1)),
        ("softmax", [(3, 0)], dict(dim=-1)),
        ("log_softmax", [(3, 5)], dict(dim=-1)),
        ("log_softmax", [(2, 3, 4)], dict(dim=0)),
        ("log_softmax", [()], dict(dim=-1)),
        ("log_softmax", [(7,)], dict(dim=0)),
        # >= 16k elements over the last axis (or one followed by size-1 axes): on the CPU the
        # row sums take the BLAS path (ops._common.axis_sum)
        ("softmax", [(128, 160)], dict(dim=-1, fd=False)),
        ("softmax", [(4, 160, 40)], dict(dim=-1, fd=False)),
        ("softmax", [(64, 300, 1)], dict(dim=1, fd=False)),
        ("log_softmax", [(160, 128)], dict(dim=1, fd=False)),
    ],
)
def test_softmax(name, specs, kw):
    check_op(name, specs, domain=(-4, 4), **kw)


@pytest.mark.parametrize(
    "specs, kw",
    [
        ([(4, 5), T4], {}),
        ([(4, 5), T4], dict(reduction="sum")),
        ([(4, 5), T4], dict(reduction="none")),
        ([(4, 5), T4], dict(weight=W5)),
        ([(4, 5), T4], dict(weight=W5, reduction="none")),
        ([(4, 5), T_IGN], {}),
        ([(4, 5), T_IGN], dict(weight=W5)),
        ([(4, 5), np.array([0, 7, 3, 7])], dict(ignore_index=7, reduction="sum")),
        ([(4, 5), T_IGN], dict(label_smoothing=0.2)),
        ([(4, 5), T_IGN], dict(label_smoothing=0.1, weight=W5)),
        ([(4, 5), T_IGN], dict(label_smoothing=0.3, weight=W5, reduction="sum")),
        ([(4, 5), T_IGN], dict(label_smoothing=0.3, weight=W5, reduction="none")),
        ([(4, 5), T_IGN], dict(label_smoothing=1.0)),
        ([(5,), np.array(2)], {}),
        ([(5,), np.array(2)], dict(reduction="none", label_smoothing=0.1)),
        ([(2, 5, 3, 2), T_K], {}),
        ([(2, 5, 3, 2), T_K_IGN], dict(ignore_index=1, label_smoothing=0.2, weight=W5)),
        ([(2, 5, 3, 2), T_K], dict(reduction="none")),
        ([(4, 5), T4.astype(np.uint8)], {}),
        # class probabilities (the target is a random tensor of the input's shape)
        ([(4, 5), (4, 5)], {}),
        ([(4, 5), (4, 5)], dict(reduction="sum", label_smoothing=0.2)),
        ([(4, 5), (4, 5)], dict(reduction="none", weight=W5)),
        ([(4, 5), (4, 5)], dict(weight=W5, label_smoothing=0.1)),
        ([(2, 5, 3), (2, 5, 3)], {}),
        ([(5,), (5,)], dict(reduction="none")),
    ],
)
def test_cross_entropy(specs, kw):
    domain = (0.0, 1.0) if isinstance(specs[1], tuple) else (-3, 3)
    check_consts("cross_entropy", specs, domain=domain, **kw)


@pytest.mark.parametrize(
    "specs, kw",
    [
        ([(4, 5), T4], {}),
        ([(4, 5), T_IGN], dict(weight=W5)),
        ([(4, 5), T_IGN], dict(reduction="sum")),
        ([(4, 5), T4], dict(reduction="none", weight=W5)),
        ([(2, 5, 3, 2), T_K_IGN], dict(ignore_index=1)),
        ([(5,), np.array(4)], {}),
    ],
)
def test_nll_loss(specs, kw):
    check_consts("nll_loss", specs, **kw)


@pytest.mark.filterwarnings("ignore:invalid value")
def test_cross_entropy_all_ignored_is_nan():
    x = mg.randn(3, 4, requires_grad=True)
    loss = mg.nn.functional.cross_entropy(x, mg.tensor([-100, -100, -100]))
    assert np.isnan(loss.item())


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("bad", [3, -1])
def test_out_of_range_class_index_raises_on_cpu_and_is_nan_on_a_gpu(op, bad):
    f = getattr(mg.nn.functional, op)
    with pytest.raises(IndexError, match=f"target {bad} is out of bounds for 3 classes"):
        f(mg.randn(2, 3), mg.tensor([0, bad]), reduction="none")
    f(mg.randn(2, 3), mg.tensor([0, -100]))  # ignore_index is not out of range
    dev = "fakegpu"  # as on CUDA: no host sync to check, a NaN loss instead
    got = f(mg.randn(2, 3, device=dev), mg.tensor([0, bad], device=dev), reduction="none")
    got = got.cpu().numpy()
    assert np.isfinite(got[0]) and np.isnan(got[1])


@pytest.mark.parametrize("ids", [[0, 5], [-1, 2]])
def test_embedding_ids_out_of_range_raise(ids):
    emb = mg.nn.Embedding(5, 2)
    with pytest.raises(IndexError, match="out of range for a table of 5 rows"):
        emb(mg.tensor(ids))
    assert emb(mg.tensor([0, 4])).shape == (2, 2)


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_half_precision_losses_compute_in_float32(dt):
    x64 = rng.standard_normal((6, 5)) * 4
    t = rng.integers(0, 5, size=6)
    tdt = getattr(torch, dt)
    xt = torch.tensor(x64, dtype=tdt, requires_grad=True)
    xm = mg.tensor(x64, dtype=dt, requires_grad=True)
    for fn in ("cross_entropy", "softmax", "log_softmax"):
        xt.grad = xm.grad = None
        args_t = (torch.tensor(t),) if fn == "cross_entropy" else ()
        args_m = (mg.tensor(t),) if fn == "cross_entropy" else ()
        kw = {} if fn == "cross_entropy" else dict(dim=-1)
        yt = getattr(TF, fn)(xt, *args_t, **kw)
        ym = getattr(mg.nn.functional, fn)(xm, *args_m, **kw)
        assert ym.dtype is getattr(mg, dt), f"{fn} returned {ym.dtype}"
        up = rng.standard_normal(tuple(yt.shape))
        yt.backward(torch.tensor(up, dtype=tdt))
        ym.backward(mg.tensor(up, dtype=dt))
        tol = 1e-2 if dt == "bfloat16" else 2e-3
        got, want = ym.detach().float().numpy(), yt.float().detach().numpy()
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=fn)
        np.testing.assert_allclose(xm.grad.float().numpy(), xt.grad.float().numpy(), rtol=tol,
                                   atol=tol, err_msg=fn)  # fmt: skip


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"])
def test_regression_losses(name, red):
    check_op(name, [(3, 4), (3, 4)], reduction=red)


@pytest.mark.parametrize(
    "name, kw",
    [
        ("smooth_l1_loss", dict(beta=0.5)),
        ("smooth_l1_loss", dict(beta=0.0)),
        ("huber_loss", dict(delta=0.3)),
    ],
)
def test_regression_loss_options(name, kw):
    check_op(name, [(3, 4), (3, 4)], domain=(-1.5, 1.5), **kw)


def test_mse_loss_constant_target():
    check_op("mse_loss", [(3, 4), rng.standard_normal((3, 4)).astype(np.float32)])


W34 = rng.uniform(0.5, 2.0, size=(3, 4))
PW = rng.uniform(0.5, 3.0, size=(4,))


@pytest.mark.parametrize(
    "kw",
    [{}, dict(reduction="sum"), dict(reduction="none"), dict(weight=W34),
     dict(weight=W34[0], reduction="none")],
)  # fmt: skip
def test_binary_cross_entropy(kw):
    check_consts("binary_cross_entropy", [(3, 4), (3, 4)], domain=(0.05, 0.95), **kw)


@pytest.mark.parametrize(
    "kw",
    [{}, dict(reduction="sum"), dict(reduction="none"), dict(weight=W34),
     dict(pos_weight=PW), dict(pos_weight=PW, weight=W34[0], reduction="none")],
)  # fmt: skip
def test_binary_cross_entropy_with_logits(kw):
    check_consts("binary_cross_entropy_with_logits", [(3, 4), (3, 4)], domain=(-3, 3), **kw)


def test_bce_with_logits_large_logits_stay_finite():
    x = mg.tensor([-200.0, 200.0], requires_grad=True)
    loss = mg.nn.functional.binary_cross_entropy_with_logits(x, mg.tensor([1.0, 0.0]))
    loss.backward()
    np.testing.assert_allclose(loss.item(), 200.0)
    np.testing.assert_allclose(x.grad.numpy(), [-0.5, 0.5])


@pytest.mark.parametrize(
    "kw", [{}, dict(reduction="batchmean"), dict(reduction="sum"), dict(reduction="none"),
           dict(log_target=True)],
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:reduction. .mean. divides")
def test_kl_div(kw):
    check_op("kl_div", [(3, 4), (3, 4)], torch_fn=TF.kl_div, domain=(0.1, 1.0), **kw)


IDX = np.array([[1, 3, 3], [0, 1, 1]])


@pytest.mark.parametrize(
    "specs, kw",
    [
        ([IDX, (5, 3)], {}),
        # the padding row gets no gradient although the output depends on it: no FD check
        ([IDX, (5, 3)], dict(padding_idx=1, fd=False)),
        ([IDX, (5, 3)], dict(padding_idx=-4, fd=False)),
        ([np.array(2), (5, 3)], {}),
        ([IDX.astype(np.int32), (5, 3)], {}),
    ],
)
def test_embedding(specs, kw):
    fd = kw.pop("fd", True)
    check_op(mg.nn.functional.embedding, specs, torch_fn=TF.embedding, fd=fd, **kw)


@pytest.mark.parametrize("vocab", [7, 3000])  # one-hot GEMM / scatter-add backward
def test_embedding_backward_paths(vocab):
    idx = np.random.default_rng(1).integers(0, vocab, (40, 9))
    idx[0, :3] = 5  # repeated indices accumulate
    check_op(mg.nn.functional.embedding, [idx, (vocab, 3)], torch_fn=TF.embedding, fd=False)


def test_embedding_padding_row_gets_no_grad(device):
    w = mg.randn(4, 2, device=device, requires_grad=True)
    out = mg.nn.functional.embedding(mg.tensor([0, 2, 2], device=device), w, padding_idx=2)
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.cpu().numpy(), [[1, 1], [0, 0], [0, 0], [0, 0]])


def test_one_hot(device):
    t = mg.tensor([[0, 2], [1, 1]], device=device)
    want = TF.one_hot(torch.tensor([[0, 2], [1, 1]]), 4).numpy()
    got = mg.nn.functional.one_hot(t, 4)
    assert got.dtype is mg.int64 and got.device == device
    np.testing.assert_array_equal(got.cpu().numpy(), want)
    np.testing.assert_array_equal(mg.nn.functional.one_hot(t).cpu().numpy(), want[..., :3])


# ---------------------------------------------------------------------------- dropout


def test_dropout_statistics(device):
    x = mg.ones(200, 100, device=device)
    y = mg.nn.functional.dropout(x, p=0.3).cpu().numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02  # 20000 draws: 5 standard deviations is 0.016
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)


def test_dropout_same_seed_same_mask(device):
    x = mg.ones(50, 20, device=device)
    mg.manual_seed(7)
    a = mg.nn.functional.dropout(x, 0.5).cpu().numpy()
    b = mg.nn.functional.dropout(x, 0.5).cpu().numpy()
    mg.manual_seed(7)
    c = mg.nn.functional.dropout(x, 0.5).cpu().numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


def test_dropout_identity_cases(device):
    x = mg.randn(4, 5, device=device, requires_grad=True)
    assert mg.nn.functional.dropout(x, 0.0) is x
    assert mg.nn.functional.dropout(x, 0.5, training=False) is x
    y = mg.nn.functional.dropout(x, 1.0)
    assert not np.any(y.detach().cpu().numpy())


def test_dropout_gradient_is_mask_times_scale(device):
    x = mg.randn(30, 40, device=device, requires_grad=True)
    y = mg.nn.functional.dropout(x, 0.25)
    y.sum().backward()
    yn, xn = y.detach().cpu().numpy(), x.detach().cpu().numpy()
    want = np.where(yn != 0, 1 / 0.75, 0.0)
    np.testing.assert_allclose(x.grad.cpu().numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(yn, xn * want, rtol=1e-6)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match="dropout"):
        mg.nn.functional.dropout(mg.ones(3), p)


# ---------------------------------------------------------------------------- host syncs


@pytest.mark.parametrize("kw", [{}, dict(weight=True, label_smoothing=0.1), dict(probs=True)])
def test_cross_entropy_makes_no_host_sync(kw):
    F = mg.nn.functional
    x = mg.randn(8, 5, device="fakegpu", requires_grad=True)
    t = mg.randint(0, 5, (8,), device="fakegpu")
    if kw.pop("probs", False):
        t = mg.rand(8, 5, device="fakegpu")
    if kw.pop("weight", False):
        kw["weight"] = mg.rand(5, device="fakegpu")
    mg.backend.fake_stats.reset()
    loss = F.cross_entropy(x, t, ignore_index=2, **kw)
    loss.backward()
    assert mg.backend.fake_stats.syncs == 0
    assert x.grad.device == "fakegpu"


def test_losses_make_no_host_sync():
    F = mg.nn.functional
    x = mg.rand(6, 4, device="fakegpu", requires_grad=True)
    y = mg.rand(6, 4, device="fakegpu")
    idx = mg.tensor([0, 3, 3], device="fakegpu")
    mg.backend.fake_stats.reset()
    losses = [F.nll_loss(x, mg.tensor([0, 1, 2, 3, 0, 1], device="fakegpu")),
              F.mse_loss(x, y), F.binary_cross_entropy(x, y),
              F.binary_cross_entropy_with_logits(x, y, pos_weight=mg.rand(4, device="fakegpu")),
              F.kl_div(x, y, reduction="batchmean"), F.softmax(x, -1).sum(),
              F.embedding(idx, x).sum(), F.dropout(x, 0.2).sum()]  # fmt: skip
    for loss in losses:
        loss.backward()
    assert mg.backend.fake_stats.syncs == 0


# ---------------------------------------------------------------------------- errors


def test_errors_name_the_op_and_shapes():
    F = mg.nn.functional
    x = mg.randn(3, 4)
    with pytest.raises(ShapeError, match=r"cross_entropy.*\(3, 4\).*\(3,\).*\(2,\)"):
        F.cross_entropy(x, mg.tensor([0, 1]))
    with pytest.raises(DTypeError, match="cross_entropy.*float32.*long"):
        F.cross_entropy(x, mg.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(DTypeError, match="probabilities"):
        F.cross_entropy(x, mg.zeros(3, 4, dtype=mg.int64))
    with pytest.raises(ShapeError, match=r"nll_loss.*weight.*\(4,\)"):
        F.nll_loss(x, mg.tensor([0, 1, 2]), weight=mg.ones(3))
    with pytest.raises(ValueError, match="mse_loss: reduction"):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(ShapeError, match=r"binary_cross_entropy.*\(3,\).*\(3, 4\)"):
        F.binary_cross_entropy(mg.rand(3, 4), mg.rand(3))
    with pytest.raises(TypeError, match="softmax: dim is required"):
        F.softmax(x)
    with pytest.raises(ShapeError, match="softmax: dim 2"):
        F.softmax(x, 2)
    with pytest.raises(DTypeError, match="embedding: indices"):
        F.embedding(mg.tensor([0.0]), mg.randn(3, 2))
    with pytest.raises(ShapeError, match="embedding: weight must be 2-D"):
        F.embedding(mg.tensor([0]), mg.randn(3))
    with pytest.raises(DTypeError, match="one_hot"):
        F.one_hot(mg.tensor([0.5]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, mg.tensor([0, 1, 2]), label_smoothing=1.5)


def test_weight_gradient_is_refused_as_in_pytorch():
    w = mg.ones(4, requires_grad=True)
    with pytest.raises(AutogradError, match="cross_entropy.*weight"):
        mg.nn.functional.cross_entropy(mg.randn(3, 4), mg.tensor([0, 1, 2]), weight=w)


def test_tensor_methods():
    x = mg.randn(2, 3)
    np.testing.assert_allclose(x.softmax(-1).numpy().sum(-1), [1, 1], rtol=1e-6)
    np.testing.assert_allclose(np.exp(x.log_softmax(1).numpy()).sum(-1), [1, 1], rtol=1e-6)


def test_embedding_scale_grad_by_freq():
    # the scaled gradient is not the true derivative, so no finite-difference check
    check_op(mg.nn.functional.embedding, [IDX, (5, 3)], torch_fn=TF.embedding, fd=False,
             scale_grad_by_freq=True)  # fmt: skip


@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_embedding_max_norm_renormalises_like_torch(device, norm_type):
    w = rng.standard_normal((5, 3)) * 2
    wt, wm = torch.tensor(w), mg.tensor(w, device=device)
    out_t = TF.embedding(torch.tensor(IDX), wt, max_norm=1.5, norm_type=norm_type)
    out_m = mg.nn.functional.embedding(mg.tensor(IDX, device=device), wm, max_norm=1.5,
                                       norm_type=norm_type)  # fmt: skip
    np.testing.assert_allclose(out_m.cpu().numpy(), out_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(wm.cpu().numpy(), wt.numpy(), rtol=1e-12)
    assert not np.allclose(wm.cpu().numpy(), w)  # rows 0, 1 and 3 were rescaled


def test_one_hot_syncs_only_to_infer_num_classes():
    t = mg.tensor([1, 2], device="fakegpu")
    mg.backend.fake_stats.reset()
    mg.nn.functional.one_hot(t, 3)
    assert mg.backend.fake_stats.syncs == 0
    mg.nn.functional.one_hot(t)
    assert mg.backend.fake_stats.syncs == 1


def test_empty_batch_losses_match_torch():
    F = mg.nn.functional
    x = mg.randn(0, 5, requires_grad=True)
    t = mg.zeros(0, dtype=mg.int64)
    with np.errstate(invalid="ignore"):
        assert np.isnan(F.cross_entropy(x, t).item())
    loss = F.cross_entropy(x, t, reduction="sum")
    loss.backward()
    assert loss.item() == 0 and x.grad.shape == (0, 5)


def test_cross_entropy_on_many_classes_matches_torch(device):
    # NOTE: 128 x 200 logits take the BLAS row sums on the CPU (ops._common.axis_sum)
    x = rng.standard_normal((128, 200)) * 3
    t = rng.integers(0, 200, size=128)
    xt = torch.tensor(x, requires_grad=True)
    lt = TF.cross_entropy(xt, torch.tensor(t), label_smoothing=0.1)
    lt.backward()
    xm = mg.tensor(x, device=device, requires_grad=True)
    lm = mg.nn.functional.cross_entropy(xm, mg.tensor(t, device=device), label_smoothing=0.1)
    lm.backward()
    np.testing.assert_allclose(lm.item(), lt.item(), rtol=1e-10)
    np.testing.assert_allclose(xm.grad.cpu().numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dt", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("red", ["mean", "sum", "none"])
@pytest.mark.parametrize("ii", [-100, 2])
def test_cross_entropy_rows_first_and_second_derivatives_match_torch(dt, red, ii):
    # (N, C) logits on the CPU take a shorter path: values, gradients, gradients of
    # gradients (float32/64), ignore_index and a second backward over the same graph
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(3)
    x, y = g.standard_normal((7, 5)), g.integers(0, 5, 7)
    y[1] = 2
    double = dt != "bfloat16"

    def run(lib):
        xt = lib.tensor(x, requires_grad=True)
        loss = lib.nn.functional.cross_entropy(xt.to(getattr(lib, dt)), lib.tensor(y),
                                               reduction=red, ignore_index=ii)  # fmt: skip
        (gx,) = lib.autograd.grad(loss.sum(), xt, create_graph=double)
        out = [loss.detach().double().numpy(), gx.detach().double().numpy()]
        if double:
            (gx * gx).sum().backward()
            out.append(xt.grad.numpy())
        return out

    tol = 2e-2 if dt == "bfloat16" else 1e-6
    for a, b in zip(run(mg), run(torch)):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    x2 = mg.tensor(x, requires_grad=True)
    loss = mg.nn.functional.cross_entropy(x2, mg.tensor(y), reduction=red, ignore_index=ii).sum()
    loss.backward(retain_graph=True)
    first = x2.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(x2.grad.numpy(), 2 * first)
