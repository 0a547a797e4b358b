"""The structured transforms of ``distributions.transforms``: ``CorrCholeskyTransform``
(unconstrained vectors to Cholesky factors of correlation matrices, by tanh and stick
breaking), ``PositiveDefiniteTransform``, and ``CatTransform`` / ``StackTransform`` (other
transforms on slices of one tensor)."""

from __future__ import annotations

import math

from .. import creation as C
from .. import ops as F
from ..tensor import Tensor
from . import constraints
from ._transforms_vector import LowerCholeskyTransform
from .transforms import Transform, _finfo, _sum_rightmost

__all__ = ["CatTransform", "CorrCholeskyTransform", "PositiveDefiniteTransform", "StackTransform"]


def _tril_index(n: int, diag: int, like: Tensor) -> Tensor:
    """Flat row-major indices of the entries with ``j < i + diag + 1`` of an ``n x n``."""
    idx = [i * n + j for i in range(n) for j in range(n) if j < i + diag + 1]
    return C.tensor(idx, device=like.device)


def vec_to_tril_matrix(vec: Tensor, diag: int = 0) -> Tensor:
    """The ``n x n`` matrix whose (diag-shifted) lower triangle, row by row, is ``vec``."""
    m = vec.shape[-1]
    n = (-(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * m + 4 * abs(diag) * (diag + 1)) ** 0.5) / 2
    if abs(round(n) - n) > 1e-6:
        raise ValueError(f"The size of last dimension is {m} which cannot be expressed as the "
                         "lower triangular part of a square D x D matrix.")  # fmt: skip
    n = round(n)
    flat = C.zeros(*vec.shape[:-1], n * n, dtype=vec.dtype, device=vec.device)
    flat = flat.index_copy(-1, _tril_index(n, diag, vec), vec)
    return flat.reshape(*vec.shape[:-1], n, n)


def tril_matrix_to_vec(mat: Tensor, diag: int = 0) -> Tensor:
    """The (diag-shifted) lower triangle of square matrices, row by row."""
    n = mat.shape[-1]
    if mat.shape[-2] != n:
        raise ValueError("Input is not square")
    return mat.reshape(*mat.shape[:-2], n * n).index_select(-1, _tril_index(n, diag, mat))


class CorrCholeskyTransform(Transform):
    """Vectors of ``D (D - 1) / 2`` reals to lower Cholesky factors of ``D x D``
    correlation matrices (unit rows, positive diagonal): tanh onto (-1, 1), then stick
    breaking row by row."""

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky
    bijective = True

    def __eq__(self, other):
        return isinstance(other, CorrCholeskyTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        x = x.tanh()
        eps = _finfo(x).eps
        x = x.clamp(min=-1 + eps, max=1 - eps)
        r = vec_to_tril_matrix(x, diag=-1)
        z1m_cumprod_sqrt = (1 - r**2).sqrt().cumprod(-1)
        r = r + C.eye(r.shape[-1], dtype=r.dtype, device=r.device)
        return r * F.pad(z1m_cumprod_sqrt[..., :-1], (1, 0), value=1.0)

    def _inverse(self, y):
        y_cumsum = 1 - (y * y).cumsum(-1)
        shifted = F.pad(y_cumsum[..., :-1], (1, 0), value=1.0)
        t = tril_matrix_to_vec(y, diag=-1) / tril_matrix_to_vec(shifted, diag=-1).sqrt()
        return (t.log1p() - (-t).log1p()) / 2

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        y1m_cumsum = 1 - (y * y).cumsum(-1)
        stick = 0.5 * tril_matrix_to_vec(y1m_cumsum, diag=-2).log().sum(-1)
        tanh = -2 * (x + F.softplus(-2 * x) - math.log(2.0)).sum(-1)
        return stick + tanh

    def forward_shape(self, shape):
        n = shape[-1]
        d = round((0.25 + 2 * n) ** 0.5 + 0.5)
        if d * (d - 1) // 2 != n:
            raise ValueError("Input is not a flattend lower-diagonal number")
        return tuple(shape[:-1]) + (d, d)

    def inverse_shape(self, shape):
        if len(shape) < 2:
            raise ValueError("Too few dimensions on input")
        if shape[-2] != shape[-1]:
            raise ValueError("Input is not square")
        d = shape[-1]
        return tuple(shape[:-2]) + (d * (d - 1) // 2,)


class PositiveDefiniteTransform(Transform):
    """Square matrices to symmetric positive-definite ones: ``L Lᵀ`` of their
    ``LowerCholeskyTransform``."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.positive_definite

    def __eq__(self, other):
        return isinstance(other, PositiveDefiniteTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        low = LowerCholeskyTransform()(x)
        return low @ low.mT

    def _inverse(self, y):
        from .. import linalg

        return LowerCholeskyTransform().inv(linalg.cholesky(y))


class CatTransform(Transform):
    """``tseq[k]`` on the ``k``-th slice (of ``lengths[k]`` entries) along ``dim``."""

    def __init__(self, tseq, dim: int = 0, lengths=None, cache_size: int = 0):
        if not all(isinstance(t, Transform) for t in tseq):
            raise TypeError("CatTransform: all elements of tseq must be Transform instances")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = list(tseq)
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.transforms)
        if len(self.lengths) != len(self.transforms):
            raise ValueError(f"lengths ({len(self.lengths)}) must match transforms "
                             f"({len(self.transforms)})")  # fmt: skip
        self.dim = dim

    @property
    def event_dim(self) -> int:
        return max(t.event_dim for t in self.transforms)

    @property
    def length(self) -> int:
        return sum(self.lengths)

    @property
    def bijective(self):  # type: ignore[override]
        return all(t.bijective for t in self.transforms)

    @property
    def domain(self):  # type: ignore[override]
        return constraints.cat([t.domain for t in self.transforms], self.dim, self.lengths)

    @property
    def codomain(self):  # type: ignore[override]
        return constraints.cat([t.codomain for t in self.transforms], self.dim, self.lengths)

    def with_cache(self, cache_size=1):
        if self._cache_size == cache_size:
            return self
        return CatTransform(self.transforms, self.dim, self.lengths, cache_size)

    def _check(self, z, what: str):
        if not -z.ndim <= self.dim < z.ndim:
            raise ValueError(f"dim {self.dim} out of range for {what} with {z.ndim} dimensions")
        if z.shape[self.dim] != self.length:
            raise ValueError(f"{what}.size({self.dim}) = {z.shape[self.dim]} must equal "
                             f"length {self.length}")  # fmt: skip

    def _slices(self, z):
        start = 0
        for t, n in zip(self.transforms, self.lengths):
            yield t, z.narrow(self.dim, start, n)
            start += n

    def _call(self, x):
        self._check(x, "x")
        return F.cat([t(s) for t, s in self._slices(x)], self.dim)

    def _inverse(self, y):
        self._check(y, "y")
        return F.cat([t.inv(s) for t, s in self._slices(y)], self.dim)

    def log_abs_det_jacobian(self, x, y):
        self._check(x, "x")
        self._check(y, "y")
        parts = []
        for (t, xs), (_, ys) in zip(self._slices(x), self._slices(y)):
            ld = t.log_abs_det_jacobian(xs, ys)
            if t.event_dim < self.event_dim:
                ld = _sum_rightmost(ld, self.event_dim - t.event_dim)
            parts.append(ld)
        dim = self.dim - x.ndim if self.dim >= 0 else self.dim
        dim += self.event_dim
        if dim < 0:
            return F.cat(parts, dim)
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return total


class StackTransform(Transform):
    """``tseq[k]`` on the ``k``-th index along ``dim``."""

    def __init__(self, tseq, dim: int = 0, cache_size: int = 0):
        if not all(isinstance(t, Transform) for t in tseq):
            raise TypeError("StackTransform: all elements of tseq must be Transform instances")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = list(tseq)
        self.dim = dim

    @property
    def bijective(self):  # type: ignore[override]
        return all(t.bijective for t in self.transforms)

    @property
    def domain(self):  # type: ignore[override]
        return constraints.stack([t.domain for t in self.transforms], self.dim)

    @property
    def codomain(self):  # type: ignore[override]
        return constraints.stack([t.codomain for t in self.transforms], self.dim)

    def with_cache(self, cache_size=1):
        if self._cache_size == cache_size:
            return self
        return StackTransform(self.transforms, self.dim, cache_size)

    def _slices(self, z, what: str):
        if not -z.ndim <= self.dim < z.ndim:
            raise ValueError(f"dim {self.dim} out of range for {what} with {z.ndim} dimensions")
        if z.shape[self.dim] != len(self.transforms):
            raise ValueError(f"{what}.size({self.dim}) = {z.shape[self.dim]} must equal "
                             f"len(transforms) {len(self.transforms)}")  # fmt: skip
        return [z.select(self.dim, i) for i in range(z.shape[self.dim])]

    def _call(self, x):
        return F.stack([t(s) for t, s in zip(self.transforms, self._slices(x, "x"))], self.dim)

    def _inverse(self, y):
        return F.stack([t.inv(s) for t, s in zip(self.transforms, self._slices(y, "y"))],
                       self.dim)  # fmt: skip

    def log_abs_det_jacobian(self, x, y):
        xs, ys = self._slices(x, "x"), self._slices(y, "y")
        return F.stack([t.log_abs_det_jacobian(a, b) for t, a, b in zip(self.transforms, xs, ys)],
                       self.dim)  # fmt: skip
