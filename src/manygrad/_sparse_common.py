"""What the sparse layouts (COO, CSR) share: the shape of ``_size`` and the attributes of
``_vals``, the values tensor that carries their dtype, device and gradient."""

from __future__ import annotations


class SparseAttrs:
    """``shape``/``size``/``dim``/``ndim`` from ``self._size``; ``dtype``, ``device``,
    ``requires_grad`` and ``grad`` from ``self._vals``."""

    @property
    def shape(self):
        from .tensor import Size

        return Size(self._size)

    def size(self, dim=None):
        return self.shape if dim is None else self._size[dim]

    def dim(self) -> int:
        return len(self._size)

    @property
    def ndim(self) -> int:
        return len(self._size)

    @property
    def dtype(self):
        return self._vals.dtype

    @property
    def device(self):
        return self._vals.device

    @property
    def requires_grad(self) -> bool:
        return self._vals.requires_grad

    def requires_grad_(self, mode: bool = True):
        self._vals.requires_grad_(mode)
        return self

    @property
    def grad(self):
        return self._vals.grad
