"""layer_norm, batch_norm, group_norm, rms_norm and scaled_dot_product_attention vs PyTorch."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import DeviceError, ShapeError
from opcheck import check_op

torch = pytest.importorskip("torch")
TF = torch.nn.functional
F = mg.nn.functional

rng = np.random.default_rng(0)


def _like(lib, v, x):
    """A constant tensor of ``x``'s dtype (and device) in ``lib``."""
    if lib is torch:
        return torch.tensor(v, dtype=x.dtype)
    return mg.tensor(v, dtype=x.dtype, device=x.device)


def _dims(shape):
    """normalized_shape as a list: check_op would turn a tuple into a random tensor."""
    return list(shape) if isinstance(shape, tuple) else shape


def check_pair(make, specs, **kw):
    """``check_op`` on ``make(lib)``, a function of the spec tensors built per library."""
    check_op(make(mg.nn.functional, mg), specs, torch_fn=make(TF, torch), **kw)


@pytest.mark.parametrize(
    "specs, shape",
    [
        ([(3, 5), (5,), (5,)], (5,)),
        ([(2, 3, 4), (3, 4), (3, 4)], (3, 4)),
        ([(2, 3, 4), (4,), None], (4,)),
        ([(2, 3, 4), None, None], (4,)),
        ([(6,), None, (6,)], (6,)),
    ],
)
def test_layer_norm(specs, shape):
    check_op("layer_norm", [specs[0], _dims(shape)] + specs[1:], torch_fn=TF.layer_norm, eps=1e-5)


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
@pytest.mark.parametrize(
    "shape, d", [((70, 40, 24), (24,)), ((300, 130), (130,)), ((9, 8, 8, 64), (8, 64))]
)
def test_layer_norm_block_loop_matches_torch(dt, affine, shape, d):
    # NOTE: 32k values and more take ops/_norm_rows.py's block loop on the CPU (blocks of
    # rows, the last one short); the gradients of x, weight and bias against PyTorch's
    r = np.random.default_rng(1)
    x = (r.standard_normal(shape) * 3 + 1).astype(dt)
    g = r.standard_normal(shape).astype(dt)
    w = r.standard_normal(d).astype(dt) if affine != "none" else None
    b = r.standard_normal(d).astype(dt) if affine == "both" else None
    outs = []
    for lib, fn in ((mg, F.layer_norm), (torch, TF.layer_norm)):
        ts = [None if a is None else lib.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = fn(ts[0], list(d), ts[1], ts[2], 1e-5)
        y.backward(lib.tensor(g))
        outs.append([y.detach().numpy()] + [t.grad.numpy() for t in ts if t is not None])
    tol = dict(rtol=2e-4, atol=2e-5) if dt == "float32" else dict(rtol=1e-10, atol=1e-11)
    for got, want in zip(*outs):
        np.testing.assert_allclose(got, want, **tol)


def test_normalized_shape_may_be_an_int():
    x = mg.randn(2, 3, 4)
    np.testing.assert_array_equal(F.layer_norm(x, 4).numpy(), F.layer_norm(x, (4,)).numpy())
    np.testing.assert_array_equal(F.rms_norm(x, 4).numpy(), F.rms_norm(x, [4]).numpy())


def test_layer_norm_is_normalised():
    y = F.layer_norm(mg.randn(4, 8) * 3 + 2, (8,)).numpy()
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1, rtol=1e-3)


@pytest.mark.parametrize(
    "specs, shape, kw",
    [
        ([(3, 5), (5,)], (5,), {}),
        ([(2, 3, 4), (3, 4)], (3, 4), dict(eps=1e-3)),
        ([(2, 3, 4), None], (4,), {}),
        ([(2, 3, 4), None], (4,), dict(eps=0.5)),
    ],
)
def test_rms_norm(specs, shape, kw):
    check_op("rms_norm", [specs[0], _dims(shape)] + specs[1:], torch_fn=TF.rms_norm, **kw)


@pytest.mark.parametrize(
    "specs, groups",
    [
        ([(2, 6, 3), (6,), (6,)], 3),
        ([(2, 4, 3, 2), (4,), (4,)], 2),
        ([(2, 4, 5), None, None], 4),
        ([(3, 4), (4,), None], 1),
    ],
)
def test_group_norm(specs, groups):
    check_op("group_norm", [specs[0], groups] + specs[1:], torch_fn=TF.group_norm, eps=1e-5)


RM = rng.uniform(-0.5, 0.5, size=3)
RV = rng.uniform(0.5, 2.0, size=3)


def _bn(training, affine=True, momentum=0.1):
    def make(lib_f, lib):
        def f(x, *wb):
            w, b = wb if affine else (None, None)
            rm, rv = _like(lib, RM, x), _like(lib, RV, x)
            return lib_f.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum)

        return f

    return make


@pytest.mark.parametrize(
    "specs, training, affine",
    [
        ([(4, 3), (3,), (3,)], True, True),
        ([(4, 3, 5), (3,), (3,)], True, True),
        ([(2, 3, 4, 2), (3,), (3,)], True, True),
        ([(4, 3, 5)], True, False),
        ([(4, 3), (3,), (3,)], False, True),
        ([(2, 3, 4, 2), (3,), (3,)], False, True),
        ([(4, 3, 5)], False, False),
    ],
)
def test_batch_norm(specs, training, affine):
    check_pair(_bn(training, affine), specs)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 2, 2)])
def test_batch_norm_running_stats_match_torch(device, shape):
    x = rng.standard_normal(shape) * 2 + 1
    rm_t, rv_t = torch.tensor(RM), torch.tensor(RV)
    rm_m, rv_m = mg.tensor(RM, device=device), mg.tensor(RV, device=device)
    for momentum in (0.1, 0.3):
        TF.batch_norm(torch.tensor(x), rm_t, rv_t, training=True, momentum=momentum)
        F.batch_norm(mg.tensor(x, device=device), rm_m, rv_m, training=True, momentum=momentum)
    np.testing.assert_allclose(rm_m.cpu().numpy(), rm_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv_m.cpu().numpy(), rv_t.numpy(), rtol=1e-12)
    assert not np.allclose(rv_m.cpu().numpy(), RV)


def test_batch_norm_eval_leaves_running_stats():
    rm, rv = mg.tensor(RM, dtype=mg.float32), mg.tensor(RV, dtype=mg.float32)
    F.batch_norm(mg.randn(4, 3), rm, rv, training=False)
    np.testing.assert_array_equal(rm.numpy(), RM.astype(np.float32))
    np.testing.assert_array_equal(rv.numpy(), RV.astype(np.float32))


def test_norms_make_no_host_sync():
    dev = "fakegpu"
    x = mg.randn(4, 6, 3, device=dev, requires_grad=True)
    w, b = mg.ones(6, device=dev, requires_grad=True), mg.zeros(6, device=dev)
    rm, rv = mg.zeros(6, device=dev), mg.ones(6, device=dev)
    q = mg.randn(2, 4, 5, 8, device=dev, requires_grad=True)
    kv = mg.randn(2, 2, 6, 8, device=dev, requires_grad=True)
    mask = mg.rand(5, 6, device=dev) > 0.3
    mg.backend.fake_stats.reset()
    outs = [
        F.batch_norm(x, rm, rv, w, b, training=True),
        F.group_norm(x, 3, w, b),
        F.layer_norm(x, (3,)),
        F.rms_norm(x, (6, 3)),
        F.scaled_dot_product_attention(q, kv, kv, mask, dropout_p=0.1, enable_gqa=True),
    ]
    for o in outs:
        o.sum().backward()
    assert mg.backend.fake_stats.syncs == 0


def test_half_precision_norms(device):
    x64 = rng.standard_normal((4, 6))
    for fn, args in [("layer_norm", ((6,),)), ("rms_norm", ((6,),)), ("group_norm", (2,))]:
        xt = torch.tensor(x64, dtype=torch.float16)
        xm = mg.tensor(x64, dtype="float16", device=device)
        yt, ym = getattr(TF, fn)(xt, *args), getattr(F, fn)(xm, *args)
        assert ym.dtype is mg.float16, fn
        np.testing.assert_allclose(ym.cpu().float().numpy(), yt.float().numpy(), atol=3e-3,
                                   err_msg=fn)  # fmt: skip


# ---------------------------------------------------------------------------- attention

BOOL_MASK = rng.random((4, 6)) > 0.3
BOOL_MASK[:, 0] = True
FULLY_MASKED = BOOL_MASK.copy()
FULLY_MASKED[2] = False


@pytest.mark.parametrize(
    "specs, kw",
    [
        ([(2, 4, 8), (2, 6, 8), (2, 6, 5)], {}),
        ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8)], dict(scale=0.3)),
        ([(2, 4, 8), (2, 6, 8), (2, 6, 5), BOOL_MASK], {}),
        ([(2, 4, 8), (2, 6, 8), (2, 6, 5), FULLY_MASKED], {}),
        ([(2, 4, 8), (2, 6, 8), (2, 6, 5), (4, 6)], {}),
        ([(2, 4, 8), (2, 6, 8), (2, 6, 5), (2, 1, 6)], {}),
        ([(2, 5, 8), (2, 5, 8), (2, 5, 8)], dict(is_causal=True)),
        ([(2, 4, 8), (2, 6, 8), (2, 6, 8)], dict(is_causal=True)),
        ([(1, 4, 3, 8), (1, 2, 5, 8), (1, 2, 5, 8)], dict(enable_gqa=True)),
        ([(1, 4, 3, 8), (1, 2, 5, 8), (1, 2, 5, 8)], dict(enable_gqa=True, is_causal=True)),
        ([(4, 8), (6, 8), (6, 3)], {}),
        ([(2, 2, 96, 8), (2, 2, 96, 8), (2, 2, 96, 8)], dict(fd=False)),  # BLAS row sums
    ],
)
def test_sdpa(specs, kw):
    check_op("scaled_dot_product_attention", specs, **kw)


def test_sdpa_dropout(device):
    q = mg.randn(2, 3, 40, 8, device=device, requires_grad=True)
    k = mg.randn(2, 3, 50, 8, device=device, requires_grad=True)
    v = mg.ones(2, 3, 50, 1, device=device)
    mg.manual_seed(3)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    mg.manual_seed(3)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())
    # rows of the weights sum to 1 in expectation: values of ones average to about 1
    mean = a.detach().cpu().numpy().mean()
    assert abs(mean - 1) < 0.05 and a.detach().cpu().numpy().std() > 0.05
    a.sum().backward()
    assert q.grad is not None and np.isfinite(q.grad.cpu().numpy()).all()


def _split_heads_sdpa(lib, batch, n_head):
    """Causal attention of packed (B * T, 3 * C) projections through ``lib``'s SDPA."""

    def f(qkv):
        rows, c3 = qkv.shape
        t, c = rows // batch, c3 // 3
        q, k, v = (z.reshape(batch, t, n_head, c // n_head).transpose(1, 2)
                   for z in qkv.reshape(batch, t, c3).split(c, dim=2))  # fmt: skip
        y = lib.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return y.transpose(1, 2).reshape(rows, c)

    return f


@pytest.mark.parametrize("batch, t, n_head, e", [(2, 5, 3, 4), (1, 7, 1, 6), (3, 1, 2, 2)])
def test_packed_causal_attention(batch, t, n_head, e):
    from manygrad.ops.attention import _packed_causal_attention

    check_op(lambda qkv: _packed_causal_attention(qkv, batch, n_head),
             [(batch * t, 3 * n_head * e)], torch_fn=_split_heads_sdpa(torch, batch, n_head))  # fmt: skip


def test_packed_causal_attention_dropout(device):
    from manygrad.ops.attention import _packed_causal_attention

    qkv = mg.randn(8 * 48, 3 * 8, device=device)
    qkv[:, 16:] = 1.0  # values of ones: every output is the sum of the kept weights
    qkv.requires_grad_()
    mg.manual_seed(3)
    a = _packed_causal_attention(qkv, 8, 2, dropout_p=0.5)
    mg.manual_seed(3)
    b = _packed_causal_attention(qkv, 8, 2, dropout_p=0.5)
    np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())
    out = a.detach().cpu().numpy()
    assert abs(out.mean() - 1) < 0.1 and out.std() > 0.05
    a.sum().backward()
    assert np.isfinite(qkv.grad.cpu().numpy()).all()
    with pytest.raises(ShapeError, match=r"causal attention.*\(384, 24\)"):
        _packed_causal_attention(qkv, 7, 2)


def test_causal_mask_is_cached_per_dtype():
    from manygrad.ops.attention import _causal_bias

    a = np.zeros((2, 3), np.float32)
    assert _causal_bias(a, 2, 3) is _causal_bias(a, 2, 3)
    np.testing.assert_array_equal(_causal_bias(a, 2, 3), [[0, -np.inf, -np.inf], [0, 0, -np.inf]])
    np.testing.assert_array_equal(_causal_bias(a, 2, 3, transposed=True), _causal_bias(a, 2, 3).T)
    assert _causal_bias(a.astype(np.float64), 2, 3).dtype == np.float64


def test_errors_name_the_op_and_shapes():
    x = mg.randn(2, 3, 4)
    with pytest.raises(ShapeError, match=r"layer_norm.*\(5,\).*\(2, 3, 4\)"):
        F.layer_norm(x, (5,))
    with pytest.raises(ShapeError, match=r"layer_norm: weight.*\(4,\).*\(3,\)"):
        F.layer_norm(x, 4, weight=mg.ones(3))
    with pytest.raises(ShapeError, match=r"group_norm.*num_groups=2.*\(2, 3, 4\)"):
        F.group_norm(x, 2)
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value"):
        F.batch_norm(mg.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="batch_norm: running_mean"):
        F.batch_norm(x, None, None)
    with pytest.raises(ShapeError, match=r"batch_norm: running_mean.*\(3,\).*\(4,\)"):
        F.batch_norm(x, mg.zeros(4), mg.ones(4))
    with pytest.raises(DeviceError, match="batch_norm: running_mean is on fakegpu"):
        F.batch_norm(x, mg.zeros(3, device="fakegpu"), mg.ones(3), training=True)
    q = mg.randn(2, 4, 8)
    with pytest.raises(ShapeError, match=r"scaled_dot_product_attention.*\(2, 6, 7\)"):
        F.scaled_dot_product_attention(q, mg.randn(2, 6, 7), mg.randn(2, 6, 7))
    with pytest.raises(ShapeError, match=r"query heads \(3\).*\(2, 2\)"):
        F.scaled_dot_product_attention(mg.randn(3, 2, 4), mg.randn(2, 2, 4),
                                       mg.randn(2, 2, 4), enable_gqa=True)  # fmt: skip
