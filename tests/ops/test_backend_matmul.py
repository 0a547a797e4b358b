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
