"""The CPU fast paths that benchmarks/sweep.py led to give PyTorch's values: scatter-adds
through flat positions (scatter_add, index_add, embedding and indexing gradients),
scatter_reduce's amax/amin/prod through ``ufunc.at``, and topk from a partition. Sizes are
large enough (>= 256 values) for the fast paths to run, in the layouts that were slow."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)


def _pair(a, layout="contig", grad=False):
    """The same values as a manygrad and a PyTorch tensor, in ``layout``."""
    if layout == "T":
        base = np.ascontiguousarray(np.swapaxes(a, -1, -2))
        m, t = mg.tensor(base).transpose(-1, -2), torch.from_numpy(base.copy()).transpose(-1, -2)
    elif layout == "slice":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        m, t = mg.tensor(wide)[..., ::2], torch.from_numpy(wide.copy())[..., ::2]
    else:
        m, t = mg.tensor(a.copy()), torch.from_numpy(a.copy())
    if grad:
        m, t = m.detach().requires_grad_(True), t.detach().requires_grad_(True)
    return m, t


def _same(got, want, exact=False, rtol=1e-5, atol=1e-6):
    g = got.detach().numpy() if hasattr(got, "detach") else np.asarray(got)
    w = want.detach().numpy()
    assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
    if exact:
        np.testing.assert_array_equal(g, w)
    else:
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("layout", ["contig", "T", "slice"])
def test_scatter_add_large_matches_torch_with_grads(dim, layout):
    x = RNG.standard_normal((48, 40)).astype(np.float32)
    src = RNG.standard_normal((30, 32)).astype(np.float32)
    idx = RNG.integers(0, x.shape[dim], (30, 32))  # many repeats: 960 values
    mx, tx = _pair(x, layout, grad=True)
    ms, ts = _pair(src, layout, grad=True)
    got = mg.scatter_add(mx, dim, mg.tensor(idx), ms)
    want = torch.scatter_add(tx, dim, torch.from_numpy(idx), ts)
    _same(got, want)
    up = RNG.standard_normal(want.shape).astype(np.float32)
    got.backward(mg.tensor(up))
    want.backward(torch.from_numpy(up))
    _same(mx.grad, tx.grad)
    _same(ms.grad, ts.grad)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_index_add_repeated_indices(dtype, dim):
    shape = (6, 40, 12)
    x = (RNG.standard_normal(shape) * 4).astype(dtype)
    idx = RNG.integers(0, shape[dim], 50)
    sshape = list(shape)
    sshape[dim] = 50
    src = (RNG.standard_normal(sshape) * 4).astype(dtype)
    got = mg.index_add(mg.tensor(x), dim, mg.tensor(idx), mg.tensor(src), alpha=2)
    want = torch.index_add(torch.from_numpy(x), dim, torch.from_numpy(idx),
                           torch.from_numpy(src), alpha=2)  # fmt: skip
    _same(got, want, exact=dtype == "int64")


def test_embedding_and_indexing_gradients_with_repeats():
    w = RNG.standard_normal((300, 24)).astype(np.float32)
    ids = RNG.integers(0, 300, (16, 40))
    mw, tw = _pair(w, grad=True)
    mg.nn.functional.embedding(mg.tensor(ids), mw).pow(2).sum().backward()
    torch.nn.functional.embedding(torch.from_numpy(ids), tw).pow(2).sum().backward()
    _same(mw.grad, tw.grad)
    # advanced indexing: x[i], x[:, i], x[i, j] (negative positions too)
    x = RNG.standard_normal((50, 60, 3)).astype(np.float32)
    i = RNG.integers(-50, 50, 400)
    j = RNG.integers(-60, 60, 400)
    for pick in (lambda a: a[i], lambda a: a[:, i % 50], lambda a: a[i, j]):
        mx, tx = _pair(x, "slice", grad=True)
        mi = pick(mx)
        ti = pick(tx)
        up = RNG.standard_normal(ti.shape).astype(np.float32)
        mi.backward(mg.tensor(up))
        ti.backward(torch.from_numpy(up))
        _same(mx.grad, tx.grad)


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin", "prod"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_large_matches_torch(reduce, include_self):
    x = RNG.uniform(0.5, 1.5, (40, 64)) * RNG.choice([-1.0, 1.0], (40, 64))
    src = RNG.uniform(0.5, 1.5, (30, 64)) * RNG.choice([-1.0, 1.0], (30, 64))
    idx = RNG.integers(0, 20, (30, 64))  # rows 20.. of x get nothing: x's own values stay
    for dtype in ("float32", "float64"):
        mx, tx = _pair(x.astype(dtype), grad=True)
        ms, ts = _pair(src.astype(dtype), "T" if dtype == "float32" else "contig", grad=True)
        if dtype == "float32":  # the same values, transposed in memory
            ms = mg.tensor(np.ascontiguousarray(src.astype(dtype).T)).t().detach()
            ms.requires_grad_(True)
        got = mg.scatter_reduce(mx, 0, mg.tensor(idx), ms, reduce, include_self=include_self)
        want = torch.scatter_reduce(tx, 0, torch.from_numpy(idx), ts, reduce,
                                    include_self=include_self)  # fmt: skip
        _same(got, want, rtol=1e-5 if dtype == "float32" else 1e-12)
        up = RNG.standard_normal(want.shape).astype(dtype)
        got.backward(mg.tensor(up))
        want.backward(torch.from_numpy(up))
        _same(mx.grad, tx.grad, rtol=1e-4, atol=1e-5)
        _same(ms.grad, ts.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reduce", ["sum", "amax", "amin", "prod"])
def test_scatter_reduce_integers_and_nan(reduce):
    x = RNG.integers(-3, 4, (30, 50))
    src = RNG.integers(-3, 4, (30, 50))
    idx = RNG.integers(0, 10, (30, 50))
    for inc in (True, False):
        got = mg.scatter_reduce(mg.tensor(x), 0, mg.tensor(idx), mg.tensor(src), reduce,
                                include_self=inc)  # fmt: skip
        want = torch.scatter_reduce(torch.from_numpy(x), 0, torch.from_numpy(idx),
                                    torch.from_numpy(src), reduce, include_self=inc)  # fmt: skip
        _same(got, want, exact=True)
    xf = RNG.standard_normal((30, 50)).astype(np.float32)
    sf = RNG.standard_normal((30, 50)).astype(np.float32)
    sf[3, 4] = xf[7, 9] = np.nan
    got = mg.scatter_reduce(mg.tensor(xf), 0, mg.tensor(idx), mg.tensor(sf), reduce)
    want = torch.scatter_reduce(torch.from_numpy(xf), 0, torch.from_numpy(idx),
                                torch.from_numpy(sf), reduce)  # fmt: skip
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("kind", ["float", "ties", "int", "nan"])
@pytest.mark.parametrize("layout", ["contig", "T"])
def test_topk_partition_path(largest, kind, layout):
    a = RNG.standard_normal((24, 300))
    if kind == "ties":
        a = np.round(a * 2)  # few distinct values: ties at the k-th place
    elif kind == "int":
        a = RNG.integers(-20, 20, (24, 300))
    elif kind == "nan":
        a[3, 17] = a[9, 100] = np.nan
    a = a.astype("int64" if kind == "int" else "float32")
    mx, tx = _pair(a, layout)
    dim = -1 if layout == "contig" else 0
    if layout == "T":  # topk along the transposed array's first dim: the same rows
        mx, tx = mx.transpose(0, 1), tx.transpose(0, 1)
    for k in (1, 3, 20):
        got = mg.topk(mx, k, dim=dim, largest=largest)
        want = torch.topk(tx, k, dim=dim, largest=largest)
        _same(got.values, want.values, exact=True)
        _same(got.indices, want.indices, exact=True)


def test_topk_gradient_through_partition_path():
    a = RNG.standard_normal((8, 500)).astype(np.float64)
    mx, tx = _pair(a, grad=True)
    mg.topk(mx, 5).values.pow(2).sum().backward()
    torch.topk(tx, 5).values.pow(2).sum().backward()
    _same(mx.grad, tx.grad, exact=True)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("form", ["offsets", "2d", "padding", "last_offset", "weights"])
def test_embedding_bag_by_index_matches_torch(mode, form):
    if form == "weights" and mode != "sum":
        pytest.skip("per_sample_weights is for mode='sum' only (as in PyTorch)")
    w = RNG.standard_normal((400, 16))
    ids = RNG.integers(0, 400, 600)
    offs = np.sort(RNG.choice(np.arange(1, 600), 40, replace=False))
    offs = np.concatenate([[0, 0], offs, [offs[-1]]])  # empty bags at the start and the end
    kw, args = {"mode": mode}, {}
    if form == "2d":
        ids, offs = ids.reshape(30, 20), None
    if form == "padding":
        ids[::7] = 5
        kw["padding_idx"] = 5
    if form == "last_offset":
        offs = np.concatenate([offs, [600]])
        kw["include_last_offset"] = True
    if form == "weights":
        args["psw"] = RNG.standard_normal(600)
    out = []
    for lib in (mg, torch):
        t = lib.tensor(w, requires_grad=True)
        o = None if offs is None else lib.tensor(offs)
        psw = None if "psw" not in args else lib.tensor(args["psw"])
        y = lib.nn.functional.embedding_bag(lib.tensor(ids), t, o, per_sample_weights=psw, **kw)
        (y * lib.tensor(np.arange(y.numel()).reshape(y.shape) % 5 - 2.0)).sum().backward()
        out.append((y, t.grad))
    _same(out[0][0], out[1][0], rtol=1e-12, atol=1e-12)
    _same(out[0][1], out[1][1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("exponent", [3, -2, 3.0, -2.0])
@pytest.mark.parametrize("layout", ["contig", "T"])
def test_pow_by_products_is_pytorchs_bits(dtype, exponent, layout):
    x = (RNG.standard_normal((40, 30)) * 3).astype(dtype)
    x[0, :5] = [0.0, -0.0, np.inf, -np.inf, np.nan]
    mx, tx = _pair(x, layout)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -2: inf, as PyTorch's
        _same(mx**exponent, tx**exponent, exact=True)
        _same(mg.pow(mx, exponent), torch.pow(tx, exponent), exact=True)
    # gradients (finite inputs)
    mx, tx = _pair(x[1:], layout, grad=True)
    (mx**exponent).sum().backward()
    (tx**exponent).sum().backward()
    _same(mx.grad, tx.grad, rtol=1e-6 if dtype == "float32" else 1e-13)
