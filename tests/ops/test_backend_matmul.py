"""backend.matmul on NumPy: batched products with transposed or strided operands (copied
to unit-stride rows first, so NumPy uses BLAS) give NumPy's own results."""

import numpy as np
import pytest

from manygrad import backend

R = np.random.default_rng(0)


@pytest.mark.parametrize("case", ["a_T", "b_T", "both_T", "a_strided", "broadcast", "vector"])
def test_batched_matmul_layouts(case):
    a = R.standard_normal((3, 5, 4)).astype(np.float32)
    b = R.standard_normal((3, 4, 6)).astype(np.float32)
    if case in ("a_T", "both_T"):
        a = np.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2)
    if case in ("b_T", "both_T"):
        b = np.ascontiguousarray(b.swapaxes(-1, -2)).swapaxes(-1, -2)
    if case == "a_strided":
        a = R.standard_normal((3, 5, 8)).astype(np.float32)[..., ::2]
    if case == "broadcast":
        a = R.standard_normal((4, 5)).astype(np.float32).T[None]  # (1, 5, 4), transposed
    if case == "vector":
        b = R.standard_normal((3, 4, 1)).astype(np.float32)
    want = np.einsum("...ij,...jk->...ik", a.astype(np.float64), b.astype(np.float64))
    got = backend.matmul(a, b)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


THIN = [
    (1, 512, 512),  # a batch of one through a Linear layer
    (2, 256, 256),
    (3, 64, 300),
    (512, 1, 784),  # its weight gradient: inner size 1
    (7, 1, 5),  # inner size 1, too small for the broadcast product
    (300, 200, 1),  # a Linear layer with one output
    (300, 100, 3),
    (2, 4, 4),  # thin, but too small to leave the GEMM
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "a_T", "b_T"])
@pytest.mark.parametrize("m,k,n", THIN)
def test_thin_matmul(m, k, n, layout, dtype):
    """Thin 2-d products (1-3 rows or columns, inner size 1) leave OpenBLAS's GEMM for one
    GEMV per row or column, or the products themselves: same values as the GEMM, C order."""
    a = R.standard_normal((m, k)).astype(dtype)
    b = R.standard_normal((k, n)).astype(dtype)
    if layout == "a_T":
        a = np.ascontiguousarray(a.T).T
    if layout == "b_T":
        b = np.ascontiguousarray(b.T).T
    got = backend.matmul(a, b)
    want = a.astype(np.float64) @ b.astype(np.float64)
    assert got.dtype == dtype and got.shape == (m, n) and got.flags.c_contiguous
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("m,n,threads", [(40, 30, 1), (300, 257, 1), (300, 257, 2),
                                         (1000, 9, 2)])  # fmt: skip
def test_inner_size_one_is_the_products_as_pytorch(m, n, threads):
    """An inner size of 1 gives each product rounded once (PyTorch's values: a negative
    times zero is -0.0), infinities and NaN included; large float32 ones in the C loop,
    split over threads."""
    torch = pytest.importorskip("torch")
    import manygrad as mg

    a = R.standard_normal((m, 1)).astype(np.float32)
    b = R.standard_normal((1, n)).astype(np.float32)
    a[3, 0], a[4, 0], b[0, 2], b[0, 5] = -1.0, np.inf, 0.0, np.nan
    before = mg.get_num_threads()
    mg.set_num_threads(threads)
    try:
        got = backend.matmul(a, b)
        strided = backend.matmul(np.ascontiguousarray(a.T).T, b[:, :])
    finally:
        mg.set_num_threads(before)
    want = (torch.from_numpy(a) @ torch.from_numpy(b)).numpy()
    for g in (got, strided):
        assert g.flags.c_contiguous and g.dtype == np.float32
        np.testing.assert_array_equal(g, want)
        np.testing.assert_array_equal(np.signbit(g), np.signbit(want))


def test_linear_batch_of_one_gradients_match_pytorch():
    """A Linear layer on a batch of one (weight gradient: an inner size of 1) and a layer
    with one output (input gradient: an inner size of 1), against PyTorch."""
    torch = pytest.importorskip("torch")
    import manygrad as mg

    for batch, out in [(1, 64), (2, 64), (32, 1), (3, 2)]:
        x = R.standard_normal((batch, 96)).astype(np.float32)
        w = R.standard_normal((out, 96)).astype(np.float32)
        bias = R.standard_normal(out).astype(np.float32)
        res = []
        for lib in (mg, torch):
            xs, ws, bs = (lib.tensor(v, requires_grad=True) for v in (x, w, bias))
            y = lib.nn.functional.linear(xs, ws, bs)
            (y * y).sum().backward()
            res.append([t.detach().numpy() for t in (y, xs.grad, ws.grad, bs.grad)])
        for got, want in zip(*res):
            scale = float(np.abs(want).max())
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)
