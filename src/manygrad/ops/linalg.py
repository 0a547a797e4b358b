"""Matrix products: matmul (batched, broadcast), mm, bmm, linear."""

from __future__ import annotations

from .. import backend
from ..autograd import Function, autocast_args
from ..errors import ShapeError
from ..tensor import Tensor
from ._common import check_same_dtype


def _swap(a):
    return a.swapaxes(-1, -2)


class Matmul(Function):
    complex_ok = True

    def forward(self, a, b):
        self.a, self.b = a, b
        out = backend.matmul(a, b)
        # NOTE: bfloat16 products come back float32 (NumPy, and CuPy through float32)
        return out if out.dtype == a.dtype else out.astype(a.dtype)

    def backward(self, g):
        a, b = self.a, self.b
        na, nb = self.needs_input_grad
        xp = backend.array_module(g)
        mm = backend.matmul
        # NOTE: 1-d operands are matmul'd as (1, k) rows / (k, 1) columns; undo that here
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = gb = None
        if g.dtype.kind == "c":  # NOTE: the conjugate transposes, as PyTorch's gradients
            a2, b2 = xp.conj(a2), xp.conj(b2)
        if na:
            ga = mm(g2, _swap(b2))
            ga = ga[..., 0, :] if a.ndim == 1 else ga
        if nb:
            gb = mm(_swap(a2), g2)
            gb = gb[..., 0] if b.ndim == 1 else gb
        return ga, gb

    def backward_graph(self, g):
        na, nb = self.needs_input_grad
        a, b = self.saved_input(0, self.a), self.saved_input(1, self.b)
        a2 = a.unsqueeze(0) if a.ndim == 1 else a
        b2 = b.unsqueeze(-1) if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = g2.unsqueeze(-2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g2 = g2.unsqueeze(-1)
        ga = gb = None
        if na:
            ga = matmul(g2, b2.transpose(-1, -2))
            ga = ga[..., 0, :] if a.ndim == 1 else ga
        if nb:
            gb = matmul(a2.transpose(-1, -2), g2)
            gb = gb[..., 0] if b.ndim == 1 else gb
        return ga, gb


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: batched, broadcast, 1-d as vectors."""
    if getattr(a, "is_sparse", False) or getattr(b, "is_sparse", False):
        return _sparse_mm(a, b)
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be tensors")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both operands need at least 1 dim, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")  # fmt: skip
    ka = a.shape[-1]
    kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        raise ShapeError(
            f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} don't fit: the last dim "
            f"of the first ({ka}) must equal the {'second-to-last' if b.ndim > 1 else 'only'} "
            f"dim of the second ({kb})"
        )
    a, b = autocast_args(a, b)
    if a._data.dtype != b._data.dtype:
        check_same_dtype("matmul", ("input", a), ("other", b))
    return Matmul.apply(a, b)


def _sparse_mm(a, b) -> Tensor:
    from ..sparse import mm as sparse_mm  # NOTE: a sparse COO operand (mg.sparse)

    return sparse_mm(a, b)


def mm(a: Tensor, b: Tensor) -> Tensor:
    if getattr(a, "is_sparse", False) or getattr(b, "is_sparse", False):
        return _sparse_mm(a, b)
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(
            f"mm: expected 2-d tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a._data.dtype != b._data.dtype:
        check_same_dtype("mm", ("input", a), ("mat2", b))
    return matmul(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 3 or b.ndim != 3:
        raise ShapeError(
            f"bmm: expected 3-d tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a._data.dtype != b._data.dtype:
        check_same_dtype("bmm", ("input", a), ("mat2", b))
    return matmul(a, b)


class Linear(Function):
    def forward(self, x, w, b):
        # NOTE: inputs of any rank run as one 2-d GEMM over all rows: NumPy would loop over
        # the leading dims with many small products instead
        self.xshape, self.x = x.shape, x
        x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        self.x2, self.w = x2, w
        if b is not None:
            out = backend.matmul_bias(x2, w.T, b)
        else:
            out = backend.matmul(x2, w.T)
            if out.dtype != x.dtype:  # bfloat16 computes in float32
                out = out.astype(x.dtype)
        return out if x.ndim == 2 else out.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, g):
        xp = backend.array_module(g)
        nx, nw, nb = self.needs_input_grad
        g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
        gx = backend.matmul(g2, self.w).reshape(self.xshape) if nx else None
        gw = backend.matmul(g2.T, self.x2) if nw else None
        gb = None
        if nb:  # NOTE: a GEMV with a ones vector beats a column sum on BLAS
            if g2.dtype.kind == "f" and g2.dtype.itemsize >= 4:
                gb = xp.matmul(xp.ones(g2.shape[0], g2.dtype), g2)
            else:
                gb = g2.sum(axis=0)
        return gx, gw, gb

    def backward_graph(self, g):
        nx, nw, nb = self.needs_input_grad
        x, w = self.saved_input(0, self.x), self.saved_input(1, self.w)
        g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
        gx = matmul(g2, w).reshape(*self.xshape) if nx else None
        gw = matmul(g2.t(), x.reshape(-1, x.shape[-1])) if nw else None
        return gx, gw, (g2.sum(0) if nb else None)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``; weight is (out_features, in_features)."""
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input of shape {tuple(x.shape)} needs last dim == weight.shape[1]; "
            f"weight has shape {tuple(weight.shape)} (out_features, in_features)"
        )
    x, weight, bias = autocast_args(x, weight, bias)
    if x._data.dtype != weight._data.dtype or (
        bias is not None and bias._data.dtype != weight._data.dtype
    ):
        check_same_dtype("linear", ("input", x), ("weight", weight), ("bias", bias))
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        # NOTE: any bias that broadcasts to the output is PyTorch's too: (1,), 0-d, (N, out)
        from .elementwise import add
        from .misc import broadcast_shapes

        out_shape = (*x.shape[:-1], weight.shape[0])
        try:
            fits = tuple(broadcast_shapes(tuple(bias.shape), out_shape)) == out_shape
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(
                f"linear: bias of shape {tuple(bias.shape)} does not broadcast to the output "
                f"shape {out_shape}; pass a bias of shape ({weight.shape[0]},)"
            )
        return add(Linear.apply(x, weight, None), bias)
    return Linear.apply(x, weight, bias)


from ._common import public  # noqa: E402

__all__ = public(globals())
