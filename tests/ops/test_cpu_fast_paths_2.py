"""The CPU kernels of the sort / scan / scatter / bag family (manygrad/cpu/_sortscan.py)
against PyTorch: topk, kthvalue, median, nanmedian (indices among equal values and NaN),
cummax / cummin, cumsum / cumprod, prod over the last dim, scatter_reduce and
embedding_bag, forward and gradients, over dtypes, layouts and edge cases."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.cpu import _sortscan

torch = pytest.importorskip("torch")
# NOTE: the NumPy paths (no compiler) differ from PyTorch in ties beyond the replay budget,
# a nanmedian of NaN only, embedding_bag's maxima and the nodes' names
needs_kernels = pytest.mark.skipif(not _sortscan.available(), reason="no C compiler")
NAN = np.nan
DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "uint8"]


def _tensors(a, dtype):
    """The same values as a manygrad and a torch tensor of ``dtype``."""
    t = torch.tensor(a).to(getattr(torch, dtype))
    m = mg.tensor(t.float().numpy() if dtype == "bfloat16" else t.numpy())
    return m.to(getattr(mg, dtype)), t


def _tied(rng, shape, dtype, nan=True):
    """Values with many ties (few distinct values), NaN and -0.0 among floats."""
    a = rng.integers(-3, 4, shape).astype(np.float64)
    if dtype in ("float32", "float64", "float16", "bfloat16"):
        if nan:
            a[rng.random(shape) < 0.1] = NAN
        a[a == 0] = -0.0 if rng.random() < 0.5 else 0.0
    elif dtype == "uint8":
        a += 3
    return a


def _same(got, want):
    for g, w in zip(got, want):
        w = w.detach().float() if w.dtype == torch.bfloat16 else w.detach()
        g = g.detach().float() if g.dtype is mg.bfloat16 else g.detach()
        np.testing.assert_array_equal(g.numpy(), w.numpy())


def _views(a):
    """``a`` (2-d) as given, transposed (a strided view) and every other column."""
    return [("contig", a, 1), ("T", a.T, 0), ("slice", a[:, ::2], -1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, k", [(9, 3), (40, 40), (130, 2), (300, 4), (1, 1)])
def test_topk_ties_nan_every_order_as_torch(dtype, n, k):
    rng = np.random.default_rng(n * 7 + k)
    a = _tied(rng, (5, n), dtype)
    m, t = _tensors(a, dtype)
    for largest in (True, False):
        for srt in (True, False):
            for dim in (1, -1, 0):
                kk = min(k, m.shape[dim])
                got = mg.topk(m, kk, dim=dim, largest=largest, sorted=srt)
                want = torch.topk(t, kk, dim=dim, largest=largest, sorted=srt)
                _same(got, want)


def test_topk_layouts_empty_and_gradient_as_torch():
    rng = np.random.default_rng(1)
    a = _tied(rng, (6, 200), "float32", nan=False).astype(np.float32)
    for name, v, dim in _views(a):
        x = torch.tensor(v, requires_grad=True)
        y = mg.tensor(v, requires_grad=True)
        tv, ti = torch.topk(x, 3, dim=dim)
        mv, mi = mg.topk(y, 3, dim=dim)
        np.testing.assert_array_equal(mi.numpy(), ti.numpy(), err_msg=name)
        g = rng.standard_normal(tuple(tv.shape)).astype(np.float32)
        tv.backward(torch.tensor(g))
        mv.backward(mg.tensor(g))
        np.testing.assert_array_equal(y.grad.numpy(), x.grad.numpy())
    e = np.zeros((0, 5), np.float32)
    _same(mg.topk(mg.tensor(e), 2), torch.topk(torch.tensor(e), 2))
    _same(mg.topk(mg.tensor(e.T), 0, dim=0), torch.topk(torch.tensor(e.T), 0, dim=0))
    x3 = _tied(rng, (3, 70, 4), "float64")
    _same(mg.topk(mg.tensor(x3), 5, dim=1), torch.topk(torch.tensor(x3), 5, dim=1))


@needs_kernels  # NOTE: PyTorch's index or node where the NumPy path differs
@pytest.mark.parametrize("dtype", DTYPES)
def test_kthvalue_median_nanmedian_ties_nan_as_torch(dtype):
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 17, 64, 301):
        a = _tied(rng, (4, n), dtype)
        if dtype.startswith(("float", "bfloat")):
            a[0] = NAN  # a row of NaN only
        m, t = _tensors(a, dtype)
        for dim, keep in ((1, False), (-1, True), (0, False)):
            for k in {1, (m.shape[dim] + 1) // 2, m.shape[dim]}:
                _same(mg.kthvalue(m, k, dim, keep), torch.kthvalue(t, k, dim, keep))
            _same(mg.median(m, dim, keep), torch.median(t, dim, keep))
            if dtype.startswith(("float", "bfloat")):
                _same(mg.nanmedian(m, dim, keep), torch.nanmedian(t, dim, keep))
        _same([mg.median(m)], [torch.median(t)])


def test_median_kthvalue_layouts_and_gradients_as_torch():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 9, (7, 90)).astype(np.float64)
    for name, v, dim in _views(a):
        for op, args in (("median", (dim,)), ("nanmedian", (dim,)), ("kthvalue", (5, dim))):
            x = torch.tensor(v, requires_grad=True)
            y = mg.tensor(v, requires_grad=True)
            tv, ti = getattr(torch, op)(x, *args)
            mv, mi = getattr(mg, op)(y, *args)
            np.testing.assert_array_equal(mi.numpy(), ti.numpy(), err_msg=f"{op} {name}")
            tv.sum().backward()
            mv.sum().backward()
            np.testing.assert_array_equal(y.grad.numpy(), x.grad.numpy())


@needs_kernels  # NOTE: PyTorch's index or node where the NumPy path differs
@pytest.mark.parametrize("dtype", DTYPES + ["bool"])
def test_cummax_cummin_ties_nan_as_torch(dtype):
    rng = np.random.default_rng(5)
    a = _tied(rng, (4, 6, 9), "float64" if dtype == "bool" else dtype)
    if dtype == "bool":
        a = a > 0
    m, t = _tensors(a, dtype)
    for dim in (0, 1, 2, -1):
        for op in ("cummax", "cummin"):
            _same(getattr(mg, op)(m, dim), getattr(torch, op)(t, dim))


@needs_kernels  # NOTE: PyTorch's index or node where the NumPy path differs
def test_cummax_layouts_gradients_and_double_backward_as_torch():
    rng = np.random.default_rng(6)
    a = rng.integers(0, 5, (8, 30)).astype(np.float64)
    for name, v, dim in _views(a):
        for op in ("cummax", "cummin"):
            x = torch.tensor(v, requires_grad=True)
            y = mg.tensor(v, requires_grad=True)
            tv, ti = getattr(torch, op)(x, dim)
            mv, mi = getattr(mg, op)(y, dim)
            np.testing.assert_array_equal(mi.numpy(), ti.numpy(), err_msg=f"{op} {name}")
            assert mv.grad_fn.name() == tv.grad_fn.name()
            g = rng.standard_normal(tuple(tv.shape))
            tg, mgg = torch.tensor(g, requires_grad=True), mg.tensor(g, requires_grad=True)
            (gx,) = torch.autograd.grad(tv, x, tg, create_graph=True)
            (mgx,) = mg.autograd.grad(mv, y, mgg, create_graph=True)
            np.testing.assert_allclose(mgx.detach().numpy(), gx.detach().numpy())
            (gx * gx).sum().backward()  # through the gradient: the values again
            (mgx * mgx).sum().backward()
            np.testing.assert_allclose(mgg.grad.numpy(), tg.grad.numpy())
    e = mg.zeros(3, 0)
    assert mg.cummax(e, 1).indices.shape == (3, 0)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_cumsum_cumprod_bits_as_torch_and_numpy(dtype):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 300)) if dtype != "int64" else rng.integers(-9, 9, (5, 300))
    a = a.astype(dtype)
    acc = np.float64 if dtype == "float32" else None  # NOTE: PyTorch's CPU carry for float32
    for name, v, dim in _views(a):
        m, t = mg.tensor(v), torch.tensor(v)
        got = mg.cumsum(m, dim).numpy()
        np.testing.assert_array_equal(got, torch.cumsum(t, dim).numpy(), err_msg=name)
        np.testing.assert_array_equal(got, np.cumsum(v, dim, dtype=acc).astype(dtype))
        p = v[:, :40] if dim else v[:40]  # products stay finite
        got = mg.cumprod(mg.tensor(p), dim).numpy()
        np.testing.assert_array_equal(got, np.cumprod(p, dim, dtype=acc).astype(dtype))
        np.testing.assert_allclose(got, torch.cumprod(torch.tensor(p), dim).numpy(), rtol=1e-6)


def test_cumsum_cumprod_gradients_edges_as_torch():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((6, 50)).astype(np.float32)
    a[2, 7] = 0.0  # cumprod's gradient through a zero
    for dim in (0, 1):
        for op in ("cumsum", "cumprod"):
            x = torch.tensor(a, requires_grad=True)
            y = mg.tensor(a, requires_grad=True)
            g = rng.standard_normal(a.shape).astype(np.float32)
            getattr(torch, op)(x, dim).backward(torch.tensor(g))
            getattr(mg, op)(y, dim).backward(mg.tensor(g))
            np.testing.assert_allclose(y.grad.numpy(), x.grad.numpy(), rtol=2e-5, atol=1e-6)
    for shape in ((0, 4), (4, 0), (1, 1)):
        e = np.ones(shape, np.float32)
        for op in ("cumsum", "cumprod"):
            np.testing.assert_array_equal(getattr(mg, op)(mg.tensor(e), 1).numpy(), e)
    i = mg.cumsum(mg.tensor(np.array([[2**62, 2**62]], np.int64)), 1)  # wraps, as PyTorch
    assert i.tolist() == torch.cumsum(torch.tensor([[2**62, 2**62]]), 1).tolist()


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32"])
def test_prod_last_dim_bits_as_numpy_and_close_to_torch(dtype):
    rng = np.random.default_rng(9)
    for shape in ((37, 53), (3, 4, 16), (8, 1), (5, 0), (19,)):
        a = (
            rng.uniform(0.5, 1.5, shape)
            if dtype.startswith("float")
            else rng.integers(-3, 4, shape)
        )
        a = a.astype(dtype)
        if a.size > 3 and dtype.startswith("float"):
            a.flat[[1, 2]] = [NAN, 0.0]
        for keep in (False, True):
            got = mg.prod(mg.tensor(a), -1, keepdim=keep).numpy()
            np.testing.assert_array_equal(got, np.prod(a, -1, keepdims=keep, dtype=got.dtype))
            want = torch.prod(torch.tensor(a), -1, keepdim=keep).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-5, equal_nan=True)
    x = torch.tensor(rng.uniform(0.5, 1.5, (4, 9)), requires_grad=True)
    y = mg.tensor(x.detach().numpy(), requires_grad=True)
    torch.prod(x, 1).sum().backward()
    mg.prod(y, 1).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), x.grad.numpy(), rtol=1e-12)


REDUCES = ["sum", "prod", "mean", "amax", "amin"]


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_scatter_reduce_values_and_gradients_as_torch(reduce, include_self, dtype):
    rng = np.random.default_rng(10)
    floats = dtype != "int64"
    for dim, xs, idx_shape, src_shape in ((0, (7, 9), (12, 9), (12, 10)),
                                          (1, (6, 8), (5, 20), (6, 20)),
                                          (-1, (3, 4, 5), (3, 2, 7), (3, 2, 7))):  # fmt: skip
        n = xs[dim]
        idx = rng.integers(0, n, idx_shape)
        x = rng.integers(-3, 4, xs).astype(dtype)
        s = rng.integers(-3, 4, src_shape).astype(dtype)
        if floats:
            x.flat[::11] = NAN
            s.flat[5::13] = NAN
        for src in (s, np.swapaxes(np.swapaxes(s, 0, -1).copy(), 0, -1)):  # a strided one
            kw = {"include_self": include_self}
            want = torch.scatter_reduce(torch.tensor(x), dim, torch.tensor(idx),
                                        torch.tensor(src), reduce, **kw)  # fmt: skip
            got = mg.scatter_reduce(mg.tensor(x), dim, mg.tensor(idx), mg.tensor(src), reduce,
                                    **kw)  # fmt: skip
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, equal_nan=True)
    if not floats or reduce == "prod":
        return
    x = rng.standard_normal((5, 6)).round(1)
    s = rng.standard_normal((8, 6)).round(1)
    s[0] = x[0]  # ties with the input's own values
    idx = rng.integers(0, 5, (8, 6))
    res = []
    for lib in (torch, mg):
        tx, ts = lib.tensor(x, requires_grad=True), lib.tensor(s, requires_grad=True)
        y = lib.scatter_reduce(tx, 0, lib.tensor(idx), ts, reduce, include_self=include_self)
        (y * lib.tensor(np.arange(30.0).reshape(5, 6))).sum().backward()
        res.append((y.detach().numpy(), tx.grad.numpy(), ts.grad.numpy()))
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, rtol=1e-12)


def _bag(lib, w, ids, off, psw, **kw):
    tw = lib.tensor(w, requires_grad=True)
    tp = None if psw is None else lib.tensor(psw, requires_grad=True)
    o = None if off is None else lib.tensor(off)
    y = lib.nn.functional.embedding_bag(lib.tensor(ids), tw, o, per_sample_weights=tp, **kw)
    g = (np.arange(y.numel()).reshape(tuple(y.shape)) % 7 - 3.0).astype(w.dtype)
    (y * lib.tensor(g)).sum().backward()
    return y, tw, tp


@needs_kernels  # NOTE: PyTorch's index or node where the NumPy path differs
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_embedding_bag_values_gradients_ties_and_nan_as_torch(mode, dtype):
    rng = np.random.default_rng(11)
    for case in range(24):
        v, d = int(rng.integers(2, 12)), int(rng.integers(1, 6))
        w = rng.integers(-2, 3, (v, d)).astype(dtype)  # ties within a bag
        if case % 4 == 0:
            w[rng.random((v, d)) < 0.2] = NAN
        kw = {"mode": mode}
        if case % 3 == 0:
            kw["padding_idx"] = int(rng.integers(-v, v))
        if case % 2:
            n = int(rng.integers(1, 25))
            ids = rng.integers(0, v, n)
            off = np.sort(rng.integers(0, n + 1, int(rng.integers(1, 6))))
            off[0] = 0
            if case % 5 == 1:
                kw["include_last_offset"] = True
                off = np.concatenate([off, [n]])
            psw_shape = (n,)
        else:
            ids, off = rng.integers(0, v, (int(rng.integers(1, 4)), int(rng.integers(1, 5)))), None
            psw_shape = ids.shape
        psw = rng.standard_normal(psw_shape).astype(dtype) if mode == "sum" and case % 4 else None
        my, mw, mp = _bag(mg, w, ids, off, psw, **kw)
        ty, tw, tp = _bag(torch, w, ids, off, psw, **kw)
        assert my.grad_fn.name() == ty.grad_fn.name() == "EmbeddingBagBackward0"
        np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-6,
                                   equal_nan=True, err_msg=f"{case} {kw}")  # fmt: skip
        if case % 4:  # NOTE: NaN rows: PyTorch's gradients there depend on its kernel
            np.testing.assert_allclose(mw.grad.numpy(), tw.grad.numpy(), rtol=1e-6, atol=1e-6)
            if psw is not None:
                np.testing.assert_allclose(mp.grad.numpy(), tp.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_double_backward_and_max_norm(mode):
    rng = np.random.default_rng(12)
    w = rng.standard_normal((9, 4))
    ids, off = np.array([1, 2, 4, 5, 4, 3, 2, 8]), np.array([0, 3, 3, 5])
    psw = mg.tensor(rng.uniform(0.5, 2, 8), requires_grad=True) if mode == "sum" else None

    def f(w_, *p):  # NOTE: PyTorch has no second derivative of embedding_bag to compare with
        return mg.nn.functional.embedding_bag(mg.tensor(ids), w_, mg.tensor(off), mode=mode,
                                              per_sample_weights=p[0] if p else None)  # fmt: skip

    ins = (mg.tensor(w, requires_grad=True),) + (() if psw is None else (psw,))
    assert mg.autograd.gradcheck(f, ins) and mg.autograd.gradgradcheck(f, ins)
    # max_norm renormalises the looked-up rows in place first, as PyTorch
    tw, mw = torch.tensor(w * 3), mg.tensor(w * 3)
    ty = torch.nn.functional.embedding_bag(torch.tensor(ids), tw, torch.tensor(off), max_norm=1.0,
                                           mode=mode)  # fmt: skip
    my = mg.nn.functional.embedding_bag(mg.tensor(ids), mw, mg.tensor(off), max_norm=1.0,
                                        mode=mode)  # fmt: skip
    np.testing.assert_allclose(my.numpy(), ty.numpy(), rtol=1e-6)
    np.testing.assert_allclose(mw.numpy(), tw.numpy(), rtol=1e-6)


def test_embedding_bag_refuses_bad_ids_and_keeps_the_tensor_path_elsewhere(device):
    w = mg.randn(5, 3, device=device)
    with pytest.raises(IndexError):
        mg.nn.functional.embedding_bag(mg.tensor([1, 7], device=device), w,
                                       mg.tensor([0], device=device))  # fmt: skip
    if device == "cpu":
        with pytest.raises(IndexError):
            mg.nn.functional.embedding_bag(mg.tensor([1, -1]), w, mg.tensor([0]))
    ids = np.array([1, 2, 4, 0, 3])
    a = np.random.default_rng(13).standard_normal((5, 3)).astype(np.float32)
    for kw in ({"mode": "sum", "scale_grad_by_freq": True}, {"mode": "mean", "sparse": True},
               {"mode": "max"}):  # fmt: skip
        got = mg.nn.functional.embedding_bag(mg.tensor(ids, device=device),
                                             mg.tensor(a, device=device),
                                             mg.tensor([0, 2], device=device), **kw)  # fmt: skip
        want = torch.nn.functional.embedding_bag(torch.tensor(ids), torch.tensor(a),
                                                 torch.tensor([0, 2]), **kw)  # fmt: skip
        np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "uint8", "bool"])
def test_vander_bits_dtypes_and_edges_as_torch(dtype):
    rng = np.random.default_rng(14)
    a = rng.standard_normal(40) * 1.3 if dtype.startswith("float") else rng.integers(0, 4, 40)
    if dtype.startswith("float"):
        a[:3] = [np.inf, NAN, 0.0]
    m, t = _tensors(a, dtype)
    for n in (None, 0, 1, 2, 9):
        for inc in (False, True):
            got, want = mg.vander(m, n, increasing=inc), torch.vander(t, n, increasing=inc)
            assert got.dtype is getattr(mg, str(want.dtype).split(".")[1])
            np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())
    z = np.array([1 + 1j, 2 - 0.5j, 0])
    np.testing.assert_allclose(mg.vander(mg.tensor(z), 4).numpy(),
                               torch.vander(torch.tensor(z), 4).numpy())  # fmt: skip
    x = mg.tensor(rng.standard_normal(5), requires_grad=True)  # PyTorch's has no gradient
    assert mg.autograd.gradcheck(lambda v: mg.vander(v, 4), (x,))


def test_erfc_tail_values_layouts_and_gradient_as_torch():
    rng = np.random.default_rng(15)
    a = np.concatenate([rng.standard_normal(300) * 3, [2.0, 1.999, 9.5, 27.0, 40.0, -7.0]])
    a = np.concatenate([a, [np.inf, -np.inf, NAN]])
    for dt in (np.float32, np.float64):
        v = a.astype(dt)
        for arr in (v, v[:300].reshape(20, 15).T, v[5]):
            x = torch.tensor(arr, requires_grad=True)
            y = mg.tensor(arr, requires_grad=True)
            tv, mv = torch.special.erfc(x), mg.special.erfc(y)
            np.testing.assert_allclose(mv.detach().numpy(), tv.detach().numpy(), rtol=2e-6,
                                       atol=1e-300, equal_nan=True)  # fmt: skip
            tv.sum().backward()
            mv.sum().backward()
            np.testing.assert_allclose(y.grad.numpy(), x.grad.numpy(), rtol=2e-6, atol=1e-30)


@pytest.mark.parametrize("p", [2.0, 1.0])
def test_pdist_values_gradients_and_double_backward_as_torch(p):
    rng = np.random.default_rng(16)
    a = rng.standard_normal((9, 11))
    a[4] = a[2]  # a zero distance: PyTorch's gradient is 0 there
    for v in (a, a.T.copy().T, a.astype(np.float32)):
        x, y = torch.tensor(v, requires_grad=True), mg.tensor(v, requires_grad=True)
        tv, mv = torch.nn.functional.pdist(x, p), mg.nn.functional.pdist(y, p)
        rtol = 1e-5 if v.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(mv.detach().numpy(), tv.detach().numpy(), rtol=rtol)
        g = rng.standard_normal(tv.shape[0]).astype(v.dtype)
        tv.backward(torch.tensor(g))
        mv.backward(mg.tensor(g))
        np.testing.assert_allclose(y.grad.numpy(), x.grad.numpy(), rtol=rtol, atol=1e-6)
    x = mg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    assert mg.autograd.gradgradcheck(lambda t: mg.nn.functional.pdist(t, p), (x,))
    assert mg.nn.functional.pdist(mg.zeros(1, 3)).shape == (0,)
