"""Norms, distances and ``sgn`` of complex tensors against PyTorch: values, dtypes and the
gradients of real losses, on every device (a complex input's norms are real, computed on
its moduli; ``sgn`` is ``z / |z|``)."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")
TOL = {"complex128": (1e-7, 1e-9), "complex64": (2e-4, 2e-5)}
INF = float("inf")


def _c(*shape, zeros=()):
    """A random complex array; ``zeros`` are flat indices set to 0 (gradients at 0)."""

    def make(rng):
        a = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        a.reshape(-1)[list(zeros)] = 0
        return a

    return make


def _zero_row(*shape):
    def make(rng):
        a = _c(*shape)(rng)
        a[0] = 0  # NOTE: a whole zero vector: the norm is 0 and its gradient is 0
        return a

    return make


ROWS = {
    "dist-2": (lambda lib, a, b: lib.dist(a, b), [_c(3, 4, zeros=(0,)), _c(3, 4, zeros=(0,))]),
    "dist-1": (lambda lib, a, b: lib.dist(a, b, 1), [_c(5), _c(5)]),
    "dist-3": (lambda lib, a, b: lib.dist(a, b, 3), [_c(2, 3), _c(2, 3)]),
    "dist-1.5": (lambda lib, a, b: lib.dist(a, b, 1.5), [_c(6), _c(6)]),
    "dist-0.5": (lambda lib, a, b: lib.dist(a, b, 0.5), [_c(6), _c(6)]),
    "dist-inf": (lambda lib, a, b: lib.dist(a, b, INF), [_c(6), _c(6)]),
    "dist-0": (lambda lib, a, b: lib.dist(a.detach(), b.detach(), 0), [_c(6), _c(6)]),
    "dist-equal": (lambda lib, a: lib.dist(a, a.detach() * 1), [_c(4)]),
    "vector_norm": (lambda lib, a: lib.linalg.vector_norm(a), [_c(3, 4, zeros=(1,))]),
    "vector_norm-3": (lambda lib, a: lib.linalg.vector_norm(a, 3, dim=-1), [_zero_row(3, 4)]),
    "vector_norm-0.5": (lambda lib, a: lib.linalg.vector_norm(a, 0.5, dim=0), [_c(3, 4)]),
    "vector_norm-1": (lambda lib, a: lib.linalg.vector_norm(a, 1, (0, 1), True), [_c(2, 3)]),
    "vector_norm-inf": (lambda lib, a: lib.linalg.vector_norm(a, INF, dim=1), [_c(3, 4)]),
    "vector_norm-2-zero": (lambda lib, a: lib.linalg.vector_norm(a, dim=1), [_zero_row(3, 4)]),
    "norm": (lambda lib, a: lib.norm(a), [_c(3, 4)]),
    "norm-3-dim": (lambda lib, a: lib.norm(a, 3, dim=1, keepdim=True), [_c(3, 4)]),
    "norm-fro": (lambda lib, a: lib.norm(a, "fro", dim=(0, 1)), [_c(2, 3, 4)]),
    "norm-nuc": (lambda lib, a: lib.norm(a, "nuc"), [_c(4, 3)]),
    "Tensor.norm": (lambda lib, a: a.norm(2.5, dim=0), [_c(3, 4)]),
    "linalg.norm": (lambda lib, a: lib.linalg.norm(a), [_c(3, 4)]),
    "linalg.norm-vec": (lambda lib, a: lib.linalg.norm(a, 3, dim=1), [_c(3, 4)]),
    "linalg.norm-1": (lambda lib, a: lib.linalg.norm(a, 1), [_c(3, 4)]),
    "linalg.norm-inf": (lambda lib, a: lib.linalg.norm(a, INF, dim=(1, 2)), [_c(2, 3, 4)]),
    "matrix_norm": (lambda lib, a: lib.linalg.matrix_norm(a), [_c(2, 3, 4, zeros=(0,))]),
    "matrix_norm-keep": (lambda lib, a: lib.linalg.matrix_norm(a, keepdim=True), [_c(2, 3, 4)]),
    "matrix_norm--1": (lambda lib, a: lib.linalg.matrix_norm(a, -1), [_c(2, 3, 4)]),
    "matrix_norm--inf": (lambda lib, a: lib.linalg.matrix_norm(a, -INF), [_c(3, 4)]),
    "matrix_norm-nuc": (lambda lib, a: lib.linalg.matrix_norm(a, "nuc"), [_c(3, 4)]),
    "matrix_norm--2": (lambda lib, a: lib.linalg.matrix_norm(a, -2), [_c(4, 3)]),
    "sgn": (lambda lib, a: lib.sgn(a), [_c(3, 4, zeros=(0, 5))]),
    "Tensor.sgn": (lambda lib, a: a.sgn() * a, [_c(5, zeros=(2,))]),
}


def _run(lib, fn, arrays, ws, device=None):
    kw = {} if device is None else {"device": device}
    ins = [lib.tensor(a, requires_grad=True, **kw) for a in arrays]
    out = fn(lib, *ins)
    w = lib.tensor(ws(tuple(out.shape), out.is_complex()), **kw)
    if out.requires_grad:
        ((out * w).real if out.is_complex() else out * w).sum().backward()
    return out, [t.grad for t in ins]


def _np(t):
    t = t.detach().cpu()
    return (t.resolve_conj() if isinstance(t, torch.Tensor) else t).numpy()


def _name(dt) -> str:
    return str(dt).split(".")[-1]


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("name", list(ROWS))
def test_complex_norms_match_pytorch(name, dtype, device):
    fn, makers = ROWS[name]
    rng = np.random.default_rng(0)
    arrays = [m(rng).astype(dtype) for m in makers]
    weights = {}

    def ws(shape, cplx):
        if shape not in weights:
            w = rng.standard_normal(shape)
            weights[shape] = w + 1j * rng.standard_normal(shape) if cplx else w
        return weights[shape]

    t_out, t_grads = _run(torch, fn, arrays, ws)
    m_out, m_grads = _run(mg, fn, arrays, ws, device)
    rtol, atol = TOL[dtype]
    where = f"{name} [{dtype}, {device}]"
    assert str(m_out.device).split(":")[0] == device.split(":")[0], where
    assert _name(m_out.dtype) == _name(t_out.dtype), where
    assert tuple(m_out.shape) == tuple(t_out.shape), where
    np.testing.assert_allclose(_np(m_out), _np(t_out), rtol=rtol, atol=atol, err_msg=where)
    for i, (mg_, tg) in enumerate(zip(m_grads, t_grads)):
        if tg is None:
            assert mg_ is None or not np.any(_np(mg_)), f"{where} grad {i}"
            continue
        assert mg_ is not None and _name(mg_.dtype) == _name(tg.dtype), f"{where} grad {i}"
        np.testing.assert_allclose(_np(mg_), _np(tg), rtol=rtol * 10, atol=atol * 10,
                                   err_msg=f"{where} grad {i}")  # fmt: skip


def _pnorm(lib, x, p):
    if lib is torch:
        return torch.linalg.vector_norm(x, p)
    from manygrad.ops.pnorm import pnorm

    return pnorm(x, p)  # NOTE: the p-norm op itself, on a complex leaf


@pytest.mark.parametrize("p", [2, 3, 1.5, 0.5])
@pytest.mark.parametrize("norm", ["vector_norm", "pnorm", "abs"])
def test_complex_double_backward_matches_pytorch(norm, p):
    rng = np.random.default_rng(1)
    a = _c(5)(rng)  # NOTE: no zeros: second derivatives are singular there
    v = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    fns = {
        "vector_norm": lambda lib, x: lib.linalg.vector_norm(x, p, dim=0),
        "pnorm": lambda lib, x: _pnorm(lib, x, p),
        "abs": lambda lib, x: (x.abs() ** p).sum(),
    }
    grads = []
    for lib in (torch, mg):
        x = lib.tensor(a, requires_grad=True)
        (g,) = lib.autograd.grad(fns[norm](lib, x), x, create_graph=True)
        (g * lib.tensor(v)).real.sum().backward()
        grads.append((_np(g), _np(x.grad)))
    for m, t in zip(grads[1], grads[0]):
        np.testing.assert_allclose(m, t, rtol=1e-7, atol=1e-9)


def test_sgn_matches_pytorch_on_special_values():
    z = [3 + 4j, -0.0 + 0j, 0j, complex("nan+1j"), complex("inf+1j"), 1e-300 + 1e-300j]
    m = mg.sgn(mg.tensor(z, dtype=mg.complex128))
    t = torch.sgn(torch.tensor(z, dtype=torch.complex128))
    np.testing.assert_allclose(_np(m), _np(t), rtol=1e-12, atol=0)
    assert m.grad_fn is None and m.dtype is mg.complex128
    x = mg.tensor(z[:3], requires_grad=True)
    assert type(mg.sgn(x).grad_fn).__name__ == "SgnBackward0"  # PyTorch's node name


def test_real_sgn_is_still_sign():
    x = [-2.0, 0.0, 3.0, float("nan")]
    np.testing.assert_array_equal(_np(mg.sgn(mg.tensor(x))), _np(torch.sgn(torch.tensor(x))))
    i = [-2, 0, 3]
    assert mg.sgn(mg.tensor(i)).tolist() == torch.sgn(torch.tensor(i)).tolist()


def test_sign_refuses_complex_and_names_sgn(device):
    x = mg.tensor([3 + 4j, 0j], device=device)
    with pytest.raises(NotImplementedError) as torch_err:
        torch.sign(torch.tensor([3 + 4j, 0j]))
    for call in (lambda: mg.sign(x), lambda: x.sign(), lambda: x.clone().sign_()):
        with pytest.raises(NotImplementedError, match=r"sign: .*complex.*use sgn") as err:
            call()
        assert isinstance(err.value, mg.errors.DTypeError)
        assert "Unlike NumPy" in str(torch_err.value) and "unlike NumPy" in str(err.value)


def test_cdist_refuses_complex_as_pytorch(device):
    a = mg.tensor(_c(2, 3)(np.random.default_rng(2)), device=device)
    with pytest.raises(RuntimeError, match="cdist only supports floating-point dtypes, X2"):
        torch.cdist(torch.randn(2, 3, dtype=torch.float64), torch.tensor(a.cpu().numpy()))
    with pytest.raises(RuntimeError, match="cdist only supports floating-point dtypes, X2") as e:
        mg.cdist(mg.randn(2, 3, dtype=mg.float64, device=device), a)
    assert isinstance(e.value, mg.errors.DTypeError)
    # the suggested form: the same 2-norm distances as the complex ones
    b = mg.tensor(_c(4, 3)(np.random.default_rng(3)), device=device)
    got = mg.cdist(mg.view_as_real(a).flatten(-2), mg.view_as_real(b).flatten(-2))
    want = (a.unsqueeze(1) - b.unsqueeze(0)).abs().pow(2).sum(-1).sqrt()
    np.testing.assert_allclose(got.cpu().numpy(), want.cpu().numpy(), rtol=1e-10)
