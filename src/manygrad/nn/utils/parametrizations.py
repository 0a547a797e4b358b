"""``nn.utils.parametrizations``: ``orthogonal``, ``spectral_norm`` and ``weight_norm`` as
parametrizations (``nn.utils.parametrize``), with PyTorch's state-dict names
(``parametrizations.weight.original``, ``original0``/``original1``, ``0._u``, ``0.base``).

Example:
    >>> lin = orthogonal(mg.nn.Linear(4, 4))       # lin.weight stays orthogonal in training
    >>> conv = weight_norm(mg.nn.Conv2d(3, 8, 3))    # weight = g * v / ||v||
    >>> disc = spectral_norm(mg.nn.Linear(20, 40))   # weight / sigma(weight)
"""

from __future__ import annotations

from enum import Enum, auto

from ... import creation as C
from ... import ops as F
from ...autograd import no_grad
from ...tensor import Tensor
from ..module import Module
from . import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


def _normalize(x: Tensor, dim: int, eps: float) -> Tensor:
    from ..functional import normalize

    return normalize(x, dim=dim, eps=eps)


def _linalg():
    from ... import linalg

    return linalg


def _eye_like(X: Tensor, n: int) -> Tensor:  # noqa: N803
    from ...creation import eye

    return eye(n, dtype=X.dtype, device=X.device)


def _is_orthogonal(Q: Tensor, eps=None) -> bool:  # noqa: N803
    from ... import finfo

    n, k = Q.shape[-2], Q.shape[-1]
    eye = _eye_like(Q, k)
    eps = 10.0 * n * finfo(Q.dtype).eps
    return bool(F.allclose(Q.mH @ Q, eye.expand(Q.shape[:-2] + (k, k)), atol=eps))


def _make_orthogonal(A: Tensor) -> Tensor:  # noqa: N803
    """The ``Q`` of ``A``'s QR decomposition whose ``R`` has a positive diagonal."""
    la = _linalg()
    X, tau = F.geqrf(A)  # noqa: N806
    Q = la.householder_product(X, tau)  # noqa: N806
    return Q * X.diagonal(0, -2, -1).sgn().unsqueeze(-2)


class _OrthMaps(Enum):
    matrix_exp = auto()
    cayley = auto()
    householder = auto()


class _Orthogonal(Module):
    """Maps an unconstrained matrix to an orthogonal one (or one with orthonormal columns,
    or rows, when it is not square)."""

    def __init__(self, weight: Tensor, orthogonal_map: _OrthMaps, *,
                 use_trivialization: bool = True) -> None:  # fmt: skip
        super().__init__()
        if weight.is_complex() and orthogonal_map == _OrthMaps.householder:
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:  # noqa: N803
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT  # noqa: N806
            n, k = k, n
        # NOTE: from here on X is tall (n >= k)
        if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
            X = X.tril()  # noqa: N806
            if n != k:
                pad = X.new_zeros(n, n - k).expand(*X.shape[:-2], -1, -1)
                X = F.cat([X, pad], dim=-1)  # noqa: N806
            A = X - X.mH  # noqa: N806
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                Q = F.matrix_exp(A)  # noqa: N806
            else:
                eye = _eye_like(A, n)
                Q = _linalg().solve(eye - 0.5 * A, eye + 0.5 * A)  # noqa: N806
            if n != k:
                Q = Q[..., :k]  # noqa: N806
        else:
            A = X.tril(diagonal=-1)  # noqa: N806
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = _linalg().householder_product(A, tau)  # noqa: N806
            Q = Q * X.diagonal(0, -2, -1).int().unsqueeze(-2)  # noqa: N806
        if hasattr(self, "base") and self.base is not None:
            Q = self.base @ Q  # noqa: N806
        if transposed:
            Q = Q.mT  # noqa: N806
        return Q

    def right_inverse(self, Q: Tensor) -> Tensor:  # noqa: N803
        if tuple(Q.shape) != self.shape:
            raise ValueError(
                f"Expected a matrix or batch of matrices of shape {self.shape}. "
                f"Got a tensor of shape {tuple(Q.shape)}."
            )
        with no_grad():
            return self._right_inverse(Q)

    def _right_inverse(self, Q: Tensor) -> Tensor:  # noqa: N803
        Q_init = Q  # noqa: N806
        n, k = Q.shape[-2], Q.shape[-1]
        transpose = n < k
        if transpose:
            Q = Q.mT  # noqa: N806
            n, k = k, n
        if not hasattr(self, "base"):
            if self.orthogonal_map in (_OrthMaps.cayley, _OrthMaps.matrix_exp):
                raise NotImplementedError(
                    "It is not possible to assign to the matrix exponential or the Cayley "
                    "parametrizations when use_trivialization=False."
                )
            A, tau = F.geqrf(Q)  # noqa: N806
            d = A.diagonal(0, -2, -1)
            new_d = d.sign() * F.where(tau == 0.0, -1.0, 1.0).to(d.dtype)
            eye = C.eye(A.shape[-2], A.shape[-1], dtype=A.dtype, device=A.device)
            A = A * (1 - eye) + eye * new_d.unsqueeze(-2)  # noqa: N806
            return A.mT if transpose else A
        if n == k:
            Q = Q.clone() if _is_orthogonal(Q) else _make_orthogonal(Q)  # noqa: N806
        else:
            N = C.randn(*(tuple(Q.shape[:-2]) + (n, n - k)), dtype=Q.dtype, device=Q.device)  # noqa: N806
            Q = _make_orthogonal(F.cat([Q, N], dim=-1))  # noqa: N806
        self.base = Q
        return _neg_identity_like(Q_init)


def _neg_identity_like(X: Tensor) -> Tensor:  # noqa: N803
    """Zeros of ``X``'s shape with -1 on the main diagonal."""
    n, k = X.shape[-2], X.shape[-1]
    m = min(n, k)
    out = C.zeros_like(X)
    d = C.full((m,), -1.0, dtype=X.dtype, device=X.device)
    diag = F.diag_embed(d)  # (m, m)
    return out + F.pad(diag, (0, k - m, 0, n - m)).expand(X.shape)


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:  # fmt: skip
    """Keep ``module.<name>`` orthogonal (orthonormal columns, or rows, for a non-square
    matrix) through training.

    Args:
        module: the module.
        name: the matrix (or batch of matrices) to constrain (default ``"weight"``).
        orthogonal_map: ``"matrix_exp"``, ``"cayley"`` or ``"householder"`` (default:
            ``matrix_exp`` for square or complex matrices, else ``householder``).
        use_trivialization: optimize in the tangent space of a base point (default True),
            which also lets ``module.<name> = Q`` assign any orthogonal ``Q``.

    Example:
        >>> rnn_cell = orthogonal(mg.nn.Linear(64, 64))
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(
            f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions."
        )
    if orthogonal_map is None:
        square = weight.shape[-2] == weight.shape[-1]
        orthogonal_map = "matrix_exp" if square or weight.is_complex() else "householder"
    orth_enum = getattr(_OrthMaps, str(orthogonal_map), None)
    if orth_enum is None:
        raise ValueError(
            'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
            f"Got: {orthogonal_map}"
        )
    orth = _Orthogonal(weight, orth_enum, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def _norm(self, v: Tensor) -> Tensor:
        if self.dim == -1:  # NOTE: PyTorch's convention: -1 is one norm of the whole tensor
            return v.norm()
        dims = tuple(d for d in range(v.ndim) if d != self.dim % v.ndim)
        return (v * v).sum(dims, keepdim=True).sqrt()

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_v * (weight_g / self._norm(weight_v))

    def right_inverse(self, weight: Tensor):
        return self._norm(weight), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """``module.<name> = g * v / ||v||`` with magnitude ``g`` (``original0``) and direction
    ``v`` (``original1``) trained separately (Salimans & Kingma, 2016).

    Args:
        module: the module.
        name: the parameter (default ``"weight"``).
        dim: the dim kept by the norm (default 0, one norm per output); None for one norm of
            the whole tensor.

    State dicts of the hook-based ``nn.utils.weight_norm`` (``weight_g``/``weight_v``) load
    into it.
    """
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def compat_hook(state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module._register_load_state_dict_pre_hook(compat_hook)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:  # fmt: skip
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(
                "Dimension out of range (expected to be in range of "
                f"[-{ndim}, {ndim - 1}] but got {dim})"
            )
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but got "
                f"n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            with no_grad():
                mat = self._reshape_weight_to_matrix(weight)
                h, w = mat.shape
                u = mat.new_empty(h).normal_(0, 1)
                v = mat.new_empty(w).normal_(0, 1)
                self.register_buffer("_u", _normalize(u, dim=0, eps=self.eps))
                self.register_buffer("_v", _normalize(v, dim=0, eps=self.eps))
                self._power_method(mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, mat: Tensor, n: int) -> None:
        with no_grad():
            for _ in range(n):
                self._u.copy_(_normalize(F.mv(mat, self._v), dim=0, eps=self.eps))
                self._v.copy_(_normalize(F.mv(mat.mH, self._u), dim=0, eps=self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return _normalize(weight, dim=0, eps=self.eps)
        mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = F.vdot(u, F.mv(mat, v))
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        # NOTE: any value is its own preimage: the parametrization divides by sigma, which
        # it recomputes, so storing the value itself keeps assignment simple (as PyTorch)
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:  # fmt: skip
    """Divide ``module.<name>`` by its largest singular value, estimated by power iteration
    (``n_power_iterations`` per forward in training mode; Miyato et al., 2018).

    Args:
        module: the module.
        name: the parameter (default ``"weight"``).
        n_power_iterations: power iterations per training forward (default 1).
        eps: for the vectors' normalisation (default 1e-12).
        dim: the output dim (default 1 for transposed convolutions, else 0).
    """
    from ..conv import _ConvTransposeNd

    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if isinstance(module, _ConvTransposeNd) else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps)
    )
    return module
