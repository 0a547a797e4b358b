"""Linear algebra with gradients, for real and complex matrices: inv, det, slogdet, solve,
cholesky and matrix_power (``mg.linalg`` re-exports them under ``torch.linalg``'s names;
svd and eigh are in ``decompositions``, qr in ``linalg_qr``, pinv, matrix_rank and lstsq in
``linalg_pinv``, the norms in ``linalg_norms``), and the helpers those files share. Batched
over leading dims; complex gradients follow PyTorch's conjugate Wirtinger convention."""

from __future__ import annotations

import math

from .. import backend, return_types
from ..autograd import Function
from ..errors import DTypeError, ManygradError, ShapeError
from ..tensor import Tensor
from .elementwise import where
from .linalg import matmul
from .linalg_norms import linalg_norm, matrix_norm, vector_norm  # noqa: F401  (their old home)

_SlogDet = return_types.slogdet


class LinAlgError(ManygradError, RuntimeError, backend.np.linalg.LinAlgError):
    """A matrix is singular or not positive-definite (``torch.linalg.LinAlgError``, a
    ``RuntimeError``; also NumPy's ``LinAlgError``, which manygrad raised before)."""


def _first_failure(info):
    """``(batch_prefix, code)`` of the first nonzero ``info``: PyTorch's "(Batch element i): "
    for batched inputs (an error path: reads ``info`` on the host)."""
    with backend.device_scope(backend.device_of(info)):
        flat = info.reshape(-1)
        i = int((flat != 0).argmax().item())
        return (f"(Batch element {i}): " if info.ndim else ""), int(flat[i].item())


def _singular_error(op: str, a, fix: str) -> LinAlgError:
    from .linalg_lu import _getrf

    xp = backend.array_module(a)
    with backend.device_scope(backend.device_of(a)):
        info = _getrf(xp, a)[2]
    where, k = _first_failure(info)
    if "solve" in op:
        what = "The solver failed because the input matrix is singular."
    else:
        what = (f"The diagonal element {k} is zero, the inversion could not be completed "
                "because the input matrix is singular.")  # fmt: skip
    return LinAlgError(f"{op}: {where}{what} {fix}")


def _potf2(xp, a):
    """``(L, info)``: LAPACK's unblocked Cholesky (``potf2``, lower) over a batch; where a
    leading minor of order ``info`` is not positive-definite, L holds the columns done before
    it and that minor's pivot, the rest of the lower triangle as in ``a`` (as LAPACK)."""
    shape, n = a.shape, a.shape[-1]
    low = xp.tril(a.reshape((math.prod(shape[:-2]), n, n)))
    info = xp.zeros(low.shape[0], xp.int32)
    for j in range(n):
        row = low[:, j, :j]
        d = low[:, j, j] - (row * row.conj()).sum(-1)
        d = d.real.astype(low.dtype, copy=False) if low.dtype.kind == "c" else d
        bad = (info == 0) & ~(d.real > 0)
        info = xp.where(bad, j + 1, info).astype(xp.int32)
        ok = info == 0
        root = xp.sqrt(xp.where(ok, d, 1))
        done = (low[:, j + 1 :, :j] @ row.conj()[..., None])[..., 0]
        col = (low[:, j + 1 :, j] - done) / root[:, None]
        low[:, j + 1 :, j] = xp.where(ok[:, None], col, low[:, j + 1 :, j])
        low[:, j, j] = xp.where(ok, root, xp.where(bad, d, low[:, j, j]))
    return low.reshape(shape), info.reshape(shape[:-2])


def _not_pd_error(op: str, a, fix: str) -> LinAlgError:
    with backend.device_scope(backend.device_of(a)):
        info = _potf2(backend.array_module(a), a)[1]
    where, k = _first_failure(info)
    return LinAlgError(
        f"{op}: {where}The factorization could not be completed because the input is not "
        f"positive-definite (the leading minor of order {k} is not positive-definite). {fix}"
    )


_INV_FIX = "Use linalg.pinv for a singular matrix, or linalg.inv_ex to get info without raising."
_SOLVE_FIX = "Use linalg.lstsq for a singular system, or linalg.solve_ex to get info."
_CHOLESKY_FIX = (
    "Add a small multiple of the identity, or use linalg.cholesky_ex to get info without raising."
)


def _T(a):  # noqa: N802
    return a.swapaxes(-1, -2)


def _H(a):  # noqa: N802
    """The conjugate transpose of a raw array (the transpose of a real one, without a copy)."""
    t = a.swapaxes(-1, -2)
    return t.conj() if t.dtype.kind == "c" else t


def _raw(formula, *arrays):
    """Backward's path through a gradient ``formula`` written with Tensor ops: the raw arrays
    in, the raw result out (so that one formula serves backward and backward_graph)."""
    ts = [Tensor._wrap(a) if backend.is_array(a) else a for a in arrays]
    out = formula(*ts)
    return out._data if isinstance(out, Tensor) else out


def _gap_div(num: Tensor, gaps: Tensor) -> Tensor:
    """``num / gaps`` off the diagonal of the last two dims; 0 on it and where ``num`` is 0
    (NOTE: PyTorch leaves out the terms of an unused output, so equal eigenvalues or
    singular values give no NaN there)."""
    xp = backend.array_module(num._data)
    n = num.shape[-1]
    with backend.device_scope(num._device):
        eye = Tensor._wrap(xp.eye(n, dtype=bool), num._device)
    skip = eye | (num == 0)
    return where(skip, 0.0, num / where(skip, 1.0, gaps))


class ArgumentError(ManygradError, ValueError, RuntimeError):
    """An argument outside the values an op accepts (a RuntimeError in PyTorch)."""


def _matrices(A, op: str) -> None:  # noqa: N803
    """Refuse what is not a tensor of real or complex floating matrices (..., m, n)."""
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(A).__name__}")
    if A.ndim < 2:
        raise ShapeError(
            f"{op}: The input tensor A must have at least 2 dimensions, got shape "
            f"{tuple(A.shape)}; for one matrix pass it as (m, n)"
        )
    if not (A.is_floating_point() or A.is_complex()):
        raise DTypeError(
            f"{op}: Expected a floating point or complex tensor as input, got {A.dtype}; cast "
            "it first, e.g. A.to(torch.float64)"
        )


def _square(x: Tensor, op: str) -> None:
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ShapeError(f"{op}: expected square matrices (.., n, n), got shape {tuple(x.shape)}")
    _matrices(x, op)


class Inv(Function):
    complex_ok = True

    def forward(self, a):
        try:
            self.y = backend.array_module(a).linalg.inv(a)
        except backend.np.linalg.LinAlgError:
            raise _singular_error("linalg.inv", a, _INV_FIX) from None
        return self.y

    def backward(self, g):
        yh = _H(self.y)
        return -(yh @ g @ yh)

    def backward_graph(self, g):
        yh = self.saved_output(self.y).mH
        return -matmul(matmul(yh, g), yh)


def inv(A: Tensor) -> Tensor:  # noqa: N803
    """The inverse of square matrices (real or complex)."""
    _square(A, "inv")
    return Inv.apply(A)


def inverse(input: Tensor) -> Tensor:
    """``torch.inverse``: the inverse of square matrices, as ``linalg.inv``."""
    _square(input, "inverse")
    return Inv.apply(input)


class Det(Function):
    complex_ok = True

    def forward(self, a):
        xp = backend.array_module(a)
        self.a, self.d = a, xp.linalg.det(a)
        return self.d

    def backward(self, g):
        # NOTE: det is holomorphic: the gradient is g * conj(det A⁻ᵀ) = g conj(det) A⁻ᴴ
        xp = backend.array_module(g)
        return (g * xp.conj(self.d))[..., None, None] * _H(xp.linalg.inv(self.a))

    def backward_graph(self, g):
        a, d = self.saved_input(0, self.a), self.saved_output(self.d)
        return (g * d.conj())[..., None, None] * inv(a).mH


def det(input: Tensor) -> Tensor:
    """The determinant of square matrices."""
    _square(input, "det")
    return Det.apply(input)


def linalg_det(A: Tensor) -> Tensor:  # noqa: N803
    """``torch.linalg.det``: ``det`` under torch.linalg's argument name ``A``."""
    _square(A, "det")
    return Det.apply(A)


class SlogDet(Function):
    """``sign`` and ``logabsdet`` packed along a last dim of 2, in the input's dtype."""

    complex_ok = True

    def forward(self, a):
        xp = backend.array_module(a)
        sign, lad = xp.linalg.slogdet(a)
        self.a, self.sign = a, sign
        return xp.stack([sign.astype(a.dtype, copy=False), lad.astype(a.dtype, copy=False)], -1)

    def backward(self, g):
        xp = backend.array_module(g)
        return _slogdet_grad(self.sign, g) * _H(xp.linalg.inv(self.a))

    def backward_graph(self, g):
        return _slogdet_grad(self.sign, g) * inv(self.saved_input(0, self.a)).mH


def _slogdet_grad(sign, g):
    """The gradient of ``log det A = logabsdet + i angle(sign)`` (real inputs: the sign is
    constant), shaped to scale matrices."""
    gw = g[..., 1]
    if sign.dtype.kind == "c":  # NOTE: d sign = i sign d(angle): Im(g_sign conj(sign))
        gw = gw.real + 1j * (g[..., 0] * sign.conj()).imag
    return gw[..., None, None]


def slogdet(input: Tensor):
    """``(sign, logabsdet)`` of square matrices: the sign is ±1 (real input) or ``det/|det|``
    (complex input); logabsdet is real. Gradients flow through both (the sign's only for
    complex input)."""
    _square(input, "slogdet")
    out = SlogDet.apply(input)
    sign, lad = out[..., 0], out[..., 1]
    return _SlogDet((sign, lad.real if input.is_complex() else lad))


def linalg_slogdet(A: Tensor):  # noqa: N803
    """``torch.linalg.slogdet``: ``slogdet`` under torch.linalg's argument name ``A``."""
    return return_types.linalg_slogdet(slogdet(A))


def logdet(input: Tensor) -> Tensor:
    """``log(det(input))``: NaN where a real determinant is negative; complex for complex
    input."""
    s, lad = slogdet(input)
    if input.is_complex():
        return lad + s.log()  # NOTE: log of the unit sign is i angle
    return where(s < 0, float("nan"), lad)  # NOTE: a negative determinant has no log


class Solve(Function):
    complex_ok = True

    def forward(self, a, b, vec):
        xp = backend.array_module(a)
        self.a, self.vec = a, vec
        try:
            self.x = xp.linalg.solve(a, b[..., None] if vec else b)
        except backend.np.linalg.LinAlgError:
            raise _singular_error("torch.linalg.solve", a, _SOLVE_FIX) from None
        self.out = self.x[..., 0] if vec else self.x
        return self.out

    def backward(self, g):
        xp = backend.array_module(g)
        g2 = g[..., None] if self.vec else g
        gb = xp.linalg.solve(_H(self.a), g2)
        ga = -gb @ _H(self.x)
        return ga, (gb[..., 0] if self.vec else gb), None

    def backward_graph(self, g):
        a, x = self.saved_input(0, self.a), self.saved_output(self.out)
        gb = solve(a.mH, g)
        if self.vec:
            return -(gb.unsqueeze(-1) * x.conj().unsqueeze(-2)), gb, None
        return -matmul(gb, x.mH), gb, None


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:  # noqa: N803
    """``X`` with ``A @ X = B`` (``X @ A = B`` when ``left=False``); a B with one dim fewer
    than A is a (batch of) vector(s)."""
    _square(A, "solve")
    if not left:
        return solve(A.mT, B.mT).mT
    vec = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    return Solve.apply(A, B, vec)


def _cholesky_grad(L: Tensor, gL: Tensor) -> Tensor:  # noqa: N803
    """PyTorch's: ``L⁻ᴴ P L⁻¹`` with ``P = ½ (tril(X) + tril(X, -1)ᴴ)``, ``X = Lᴴ gL``
    (Murray, arXiv:1602.07527)."""
    from .arrange import tril

    X = tril(matmul(L.mH, gL))  # noqa: N806
    linv = inv(L)
    return matmul(matmul(linv.mH, 0.5 * (X + tril(X, -1).mH)), linv)


class Cholesky(Function):
    complex_ok = True

    def forward(self, a):
        try:
            self.L = backend.array_module(a).linalg.cholesky(a)
        except backend.np.linalg.LinAlgError:
            raise _not_pd_error("linalg.cholesky", a, _CHOLESKY_FIX) from None
        return self.L

    def backward(self, g):
        return _raw(_cholesky_grad, self.L, g)

    def backward_graph(self, g):
        return _cholesky_grad(self.saved_output(self.L), g)


def cholesky(input: Tensor, *, upper: bool = False) -> Tensor:
    """The lower Cholesky factor ``L`` (``input = L Lᴴ``), or the upper ``Lᴴ``; input real
    symmetric or complex Hermitian positive-definite (only its lower triangle is read)."""
    _square(input, "cholesky")
    L = Cholesky.apply(input)  # noqa: N806
    return L.mH if upper else L


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:  # noqa: A002
    """``torch.pinverse``: ``linalg.pinv`` with ``rtol=rcond``."""
    from .linalg_pinv import pinv

    return pinv(input, rtol=rcond)


def matrix_power(input: Tensor, n: int) -> Tensor:
    """``input`` multiplied by itself ``n`` times (the inverse's powers for negative n)."""
    _square(input, "matrix_power")
    if n < 0:
        return matrix_power(inv(input), -n)
    if n == 0:
        xp = backend.array_module(input._data)
        with backend.device_scope(input._device):
            eye = xp.eye(input.shape[-1], dtype=input._data.dtype)
            e = xp.broadcast_to(eye, input.shape).copy()
        return Tensor._wrap(e, input._device)
    out, base = None, input
    while n:
        if n & 1:
            out = base if out is None else matmul(out, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return out


def multi_dot(tensors) -> Tensor:
    out = tensors[0]
    for t in tensors[1:]:
        out = matmul(out, t)
    return out


# NOTE: the top level has PyTorch's older names; torch.linalg's are in manygrad.linalg
__all__ = ["cholesky", "det", "inverse", "logdet", "matrix_power", "pinverse", "slogdet"]
