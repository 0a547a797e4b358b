"""p-norms and the ops built on them: values and gradients as PyTorch's, including where
the norm is 0 (PyTorch's gradient is 0 there; sqrt(sum(x*x)) would give NaN)."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

Z = np.zeros((2, 3, 3), np.float32)
X = np.array([[0, 0], [3, 4]], np.float32)
R = np.random.RandomState(0).randn(3, 4).astype(np.float32)
CASES = {
    "norm_dims_zero": (lambda lib, a: lib.norm(a, dim=(1, 2)), [Z]),
    "norm_all": (lambda lib, a: a.norm(), [R]),
    "norm_p3_zero_row": (lambda lib, a: a.norm(p=3, dim=1), [X]),
    "norm_p1.5_zero_row": (lambda lib, a: a.norm(p=1.5, dim=1), [X]),
    "norm_p0.5_zero_row": (lambda lib, a: a.norm(p=0.5, dim=1), [X]),
    "norm_p0.5": (lambda lib, a: a.norm(p=0.5), [R]),
    "norm_inf": (lambda lib, a: a.norm(p=float("inf"), dim=1), [X]),
    "vector_norm": (lambda lib, a: lib.linalg.vector_norm(a, dim=1), [X]),
    "vector_norm_ord3_keepdim": (
        lambda lib, a: lib.linalg.vector_norm(a, 3, dim=0, keepdim=True), [R]),
    "matrix_norm_fro_zero": (lambda lib, a: lib.linalg.matrix_norm(a), [Z]),
    "linalg_norm": (lambda lib, a: lib.linalg.norm(a), [R]),
    "normalize_zero_row": (lambda lib, a: lib.nn.functional.normalize(a, dim=1), [X]),
    "cdist_zero_diagonal": (lambda lib, a: lib.cdist(a, a), [X]),
    "cdist_p3": (lambda lib, a, b: lib.cdist(a, b, p=3), [R, R[::-1].copy()]),
    "dist_zero": (lambda lib, a: lib.dist(a[0], 2 * a[0]), [X]),
    "renorm_zero_row": (lambda lib, a: lib.renorm(a, 2, 0, 1.0), [X]),
    "renorm_p3": (lambda lib, a: lib.renorm(a, 3, 1, 0.5), [R]),
    "pairwise_distance_equal": (
        lambda lib, a, b: lib.nn.functional.pairwise_distance(a, b), [R, R]),
    "cosine_similarity_zero": (
        lambda lib, a: lib.nn.functional.cosine_similarity(a, a * 0), [X]),
}  # fmt: skip


def _run(lib, fn, arrays, device=None):
    kw = {} if device is None else {"device": device}
    ts = [lib.tensor(a, requires_grad=True, **kw) for a in arrays]
    y = fn(lib, *ts)
    y.sum().backward()
    host = (lambda t: t.detach().cpu().numpy()) if lib is mg else (lambda t: t.detach().numpy())
    return host(y), [host(t.grad) for t in ts]


@pytest.mark.parametrize("name", list(CASES))
def test_norms_match_torch(name, device):
    fn, arrays = CASES[name]
    y, grads = _run(mg, fn, arrays, device)
    y_ref, grads_ref = _run(torch, fn, arrays)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    for g, g_ref in zip(grads, grads_ref):
        assert np.isfinite(g).all(), name
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("p", [2, 3, 1.5])
def test_norm_double_backward_matches_torch(p):
    a = R.astype(np.float64)
    out = []
    for lib in (torch, mg):
        t = lib.tensor(a, requires_grad=True)
        (g,) = lib.autograd.grad(t.norm(p=p, dim=1).sum(), t, create_graph=True)
        (g2,) = lib.autograd.grad((g**3).sum(), t)
        out.append(g2.detach().numpy())
    np.testing.assert_allclose(out[1], out[0], rtol=1e-9, atol=1e-12)


def test_complex_and_bf16_norms_match_torch():
    c = np.array([[1 + 2j, 3 - 1j], [0, 2j]], np.complex64)
    for f in (lambda lib, t: t.norm(), lambda lib, t: t.norm(dim=1),
              lambda lib, t: lib.linalg.matrix_norm(t), lambda lib, t: lib.linalg.vector_norm(t, 3)):  # fmt: skip
        np.testing.assert_allclose(f(mg, mg.tensor(c)).numpy(), f(torch, torch.tensor(c)).numpy(),
                                   rtol=1e-6)  # fmt: skip
    b = mg.tensor([[1.0, 2.0], [3.0, 4.0]]).to(mg.bfloat16)
    assert b.norm().dtype is mg.bfloat16 and b.norm(p=3, dim=1).dtype is mg.bfloat16
    assert float(b.norm()) == float(torch.tensor([[1.0, 2.0], [3.0, 4.0]]).bfloat16().norm())


@pytest.mark.parametrize(
    "p,dim,keepdim",
    [("fro", None, False), ("fro", (0, 1), True), ("fro", 1, False), ("nuc", None, False),
     ("nuc", (1, 2), True), (3, 2, False), (float("inf"), None, False)],
)  # fmt: skip
def test_torch_norm_string_orders(p, dim, keepdim, device):
    import torch

    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    if p == "nuc" and dim is None:
        x = x[0]
    t = torch.tensor(x, requires_grad=True)
    m = mg.tensor(x, device=device, requires_grad=True)
    tr, mr = torch.norm(t, p, dim, keepdim), m.norm(p, dim, keepdim)
    np.testing.assert_allclose(mr.detach().cpu().numpy(), tr.detach().numpy(), rtol=1e-10)
    tr.sum().backward()
    mr.sum().backward()
    np.testing.assert_allclose(m.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_torch_norm_dtype_and_bad_orders():
    import torch

    x = np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32)
    r = mg.norm(mg.tensor(x), dtype=mg.float64)
    assert r.dtype == mg.float64
    assert float(r) == pytest.approx(float(torch.norm(torch.tensor(x), dtype=torch.float64)))
    with pytest.raises(ValueError, match="p='abc' is not supported"):
        mg.norm(mg.tensor(x), p="abc")
    with pytest.raises(RuntimeError, match="2 dims"):
        mg.norm(mg.ones(2, 3, 4), p="nuc")
