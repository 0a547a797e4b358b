"""Matrix products: matmul (batched, broadcast), mm, bmm, linear."""

from __future__ import annotations

from .. import backend
from ..autograd import Function, autocast_args, autocast_dtypes
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


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: batched, broadcast, 1-d as vectors."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        if _is_sparse(input) or _is_sparse(other):
            return _sparse_mm(input, other)
        raise TypeError("matmul: both operands must be tensors")
    sa, sb = input._data.shape, other._data.shape  # NOTE: raw shapes: no Size per access
    if not sa or not sb:
        raise ShapeError(f"matmul: both operands need at least 1 dim, got shapes "
                         f"{tuple(sa)} and {tuple(sb)}")  # fmt: skip
    ka = sa[-1]
    kb = sb[-2] if len(sb) > 1 else sb[0]
    if ka != kb:
        raise ShapeError(
            f"matmul: shapes {tuple(input.shape)} and {tuple(other.shape)} don't fit: the last "
            f"dim of the first ({ka}) must equal the "
            f"{'second-to-last' if other.ndim > 1 else 'only'} dim of the second ({kb})"
        )
    if autocast_dtypes:
        input, other = autocast_args(input, other)
    if input._data.dtype != other._data.dtype:
        check_same_dtype("matmul", ("input", input), ("other", other))
    return Matmul.apply(input, other)


def _is_sparse(x) -> bool:
    from .._sparse_common import SparseAttrs  # COO and the compressed layouts

    return isinstance(x, SparseAttrs)


def _sparse_mm(a, b) -> Tensor:
    from ..sparse import mm as sparse_mm  # NOTE: a sparse COO or CSR operand (mg.sparse)

    return sparse_mm(a, b)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """The product of two 2-d matrices."""
    if not isinstance(input, Tensor) or not isinstance(mat2, Tensor):
        if _is_sparse(input) or _is_sparse(mat2):
            return _sparse_mm(input, mat2)
        raise TypeError("mm: both operands must be tensors")
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(
            f"mm: expected 2-d tensors, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    if input._data.dtype != mat2._data.dtype:
        check_same_dtype("mm", ("input", input), ("mat2", mat2))
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched products of 3-d tensors, ``(b, n, m) @ (b, m, p)``."""
    if input.ndim != 3 or mat2.ndim != 3:
        raise ShapeError(
            f"bmm: expected 3-d tensors, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    if input._data.dtype != mat2._data.dtype:
        check_same_dtype("bmm", ("input", input), ("mat2", mat2))
    return matmul(input, mat2)


class Linear(Function):
    def forward(self, x, w, b):
        # NOTE: inputs of any rank run as one 2-d GEMM over all rows: NumPy would loop over
        # the leading dims with many small products instead
        x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        # NOTE: each operand is kept only for the other's gradient, as PyTorch saves them
        nx, nw = self.needs_input_grad[0], self.needs_input_grad[1]
        self.xshape, self.x, self.x2 = x.shape, x if nw else None, x2 if nw else None
        self.w = w if nx else None
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
            elif g2.dtype.itemsize == 2:  # NOTE: 16-bit floats accumulate in float32
                gb = g2.astype(xp.float32).sum(axis=0).astype(g2.dtype)
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


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``; weight is (out_features, in_features)."""
    if weight.ndim != 2 or input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input of shape {tuple(input.shape)} needs last dim == weight.shape[1]; "
            f"weight has shape {tuple(weight.shape)} (out_features, in_features)"
        )
    input, weight, bias = autocast_args(input, weight, bias)
    if input._data.dtype != weight._data.dtype or (
        bias is not None and bias._data.dtype != weight._data.dtype
    ):
        check_same_dtype("linear", ("input", input), ("weight", weight), ("bias", bias))
    if input._data.dtype.kind == "c":
        # NOTE: complex layers go through matmul, whose gradients are PyTorch's (conjugates)
        from .elementwise import add

        out = matmul(input, weight.t())
        return out if bias is None else add(out, bias)
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        # NOTE: any bias that broadcasts to the output is PyTorch's too: (1,), 0-d, (N, out)
        from .elementwise import add
        from .misc import broadcast_shapes

        out_shape = (*input.shape[:-1], weight.shape[0])
        try:
            fits = tuple(broadcast_shapes(tuple(bias.shape), out_shape)) == out_shape
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(
                f"linear: bias of shape {tuple(bias.shape)} does not broadcast to the output "
                f"shape {out_shape}; pass a bias of shape ({weight.shape[0]},)"
            )
        return add(Linear.apply(input, weight, None), bias)
    return Linear.apply(input, weight, bias)


from ._common import public  # noqa: E402

__all__ = public(globals())
