"""Neural-network ops: softmax, losses, embedding, dropout, one_hot.

Softmax, log_softmax and the class losses are single fused Functions with analytic
backward passes; none of them reads tensor values on the host, so they run on a GPU
without waiting for it. float16/bfloat16 inputs are computed in float32 and the results
returned in the input's dtype.
"""

from __future__ import annotations

import warnings

from .. import _native, backend
from .. import dtypes as D
from ..autograd import Function, is_grad_enabled
from ..errors import AutogradError, DimError, DTypeError, LayoutError, ShapeError
from ..tensor import Tensor
from ._common import axis_sum
from ._softmax_rows import rows_backward, rows_forward, rows_path
from .elementwise import _float_input, cast
from .reduce import _axes, _need_float
from .reduce import mean as _mean
from .reduce import sum as _sum

_NAN = float("nan")


def _cdt(a):
    """NumPy dtype to compute in: float32 for 16-bit floats (as PyTorch's kernels do)."""
    return D.float32.np if a.dtype.itemsize < 4 else a.dtype


def _check_reduction(reduction, op, extra=()):
    allowed = ("none", "mean", "sum") + extra
    if reduction not in allowed:
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")


def _legacy_reduction(size_average, reduce) -> str:
    """The ``reduction`` that the deprecated ``size_average`` and ``reduce`` flags mean
    (either may be None, read as True), with PyTorch's warning
    (``torch.nn._reduction.legacy_get_string``)."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(
        "size_average and reduce args will be deprecated, please use "
        f"reduction='{reduction}' instead.",
        UserWarning,
        stacklevel=3,
    )
    return reduction


def _no_grad_for(t, arg, op):
    if isinstance(t, Tensor) and t.requires_grad and is_grad_enabled():
        raise AutogradError(
            f"{op}: not differentiable with respect to {arg} (as in PyTorch); pass {arg}.detach()"
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return _mean(loss)
    return _sum(loss) if reduction == "sum" else loss


# ---------------------------------------------------------------------------- softmax


_KERNELS = None


def _kernels():
    """``manygrad.kernels`` (imported on first use: it imports the backend's CUDA parts)."""
    global _KERNELS
    if _KERNELS is None:
        from .. import kernels as k

        _KERNELS = k
    return _KERNELS


def _fused(name, a):
    """Whether ``a`` (on a GPU) takes the fused kernel ``name`` (``fastpath.wired``)."""
    if backend.device_of(a).type == "cpu":
        return False
    return _kernels().fastpath.wired(name, a)


class Softmax(Function):
    fused = False  # the forward ran the row-softmax kernel (on a GPU)

    def forward(self, x, axis, log):
        xp = backend.array_module(x)
        self.axis, self.log, out_dt = axis, log, x.dtype
        if x.ndim == 0 or x.size == 0:
            self.y = None
            return (xp.zeros_like if log else xp.ones_like)(x)
        if not log and axis == x.ndim - 1 and _fused("kernels.softmax", x):
            # NOTE: the row-softmax kernel keeps y in x's dtype (float32 math inside)
            self.y, self.fused = _kernels().softmax(xp.ascontiguousarray(x)), True
            return self.y
        x = x.astype(_cdt(x), copy=False)
        if axis == x.ndim - 1 and (y := _native.softmax(x, log)) is not None:
            self.y = y  # NOTE: CPU float32: one pass a row in C
            return y.astype(out_dt, copy=False)
        if rows_path(x, axis):  # CPU: block by block of rows
            self.y = rows_forward(xp, x, log)
            return self.y.astype(out_dt, copy=False)
        z = x - x.max(axis=axis, keepdims=True)
        if log:
            z -= xp.log(axis_sum(xp.exp(z), axis))
        else:
            xp.exp(z, out=z)
            z *= 1 / axis_sum(z, axis)
        self.y = z
        return z.astype(out_dt, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        y, axis = self.y, self.axis
        if y is None:
            return xp.zeros_like(g)
        if self.fused:
            if _fused("kernels.softmax_backward", y):
                g = xp.ascontiguousarray(g.astype(y.dtype, copy=False))
                return _kernels().softmax_backward(g, y)
            y = y.astype(_cdt(y))
        g = g.astype(y.dtype, copy=False)
        if axis == y.ndim - 1:
            gx = _native.softmax_backward(xp.ascontiguousarray(g), y, self.log)
            if gx is not None:
                return gx
        if rows_path(y, axis):
            return rows_backward(xp, g, y, self.log)
        if self.log:
            return g - xp.exp(y) * axis_sum(g, axis)
        gx = g - axis_sum(g, axis, y)
        gx *= y
        return gx

    def backward_graph(self, g):
        if self.y is None:
            return g * 0
        y = self.saved_output(self.y)
        if self.fused and y.dtype is not D.from_np(_cdt(self.y)):
            y = y.to(D.from_np(_cdt(self.y)))
        if y.dtype is not g.dtype:
            g = g.to(y.dtype)
        ax = self.axis if self.axis is not None else tuple(range(y.ndim))
        if self.log:
            return g - y.exp() * g.sum(ax, keepdim=True)
        return y * (g - (g * y).sum(ax, keepdim=True))


def _softmax(x, dim, dtype, log, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if dim is None:
        raise TypeError(
            f"{op}: dim is required (the implicit choice is deprecated in PyTorch); "
            f"write {op}(x, dim=-1) for the last dim of shape {tuple(x.shape)}"
        )
    if dtype is not None:
        x = cast(x, dtype)
    axes = _axes(x, dim, op)
    _need_float(op, x, not_implemented=True)
    return Softmax.apply(x, axes[0] if axes else None, log)


def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:  # noqa: A002
    """``exp(x) / sum(exp(x))`` along ``dim``, computed without overflow.

    Args:
        input: the scores.
        dim: the dim that sums to 1 (required).
        dtype: cast the input to this dtype first (default None).

    Example: ``p = mg.softmax(logits, dim=-1)``.
    """
    return _softmax(input, dim, dtype, False, "softmax")


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:  # noqa: A002
    """``log(softmax(x, dim))``, computed stably as ``x - logsumexp(x, dim)``.

    Args:
        input: the scores.
        dim: the dim to normalise over (required).
        dtype: cast the input to this dtype first (default None).

    Example: ``logp = mg.log_softmax(logits, dim=1)``.
    """
    return _softmax(input, dim, dtype, True, "log_softmax")


# ---------------------------------------------------------------------------- embedding, dropout


_ONE_HOT_MAX = 1 << 20  # indices x vocabulary up to which backward uses a one-hot GEMM


class Embedding(Function):
    def forward(self, w, idx, padding_idx, by_freq, sparse=False):
        xp = backend.array_module(w)
        self.idx, self.shape, self.pad, self.by_freq = idx, w.shape, padding_idx, by_freq
        self.sparse = sparse
        return xp.take(w, idx, axis=0)

    def backward(self, g):
        if self.sparse:  # NOTE: a SparseCooTensor; the engine hands it to the table's .grad
            if self.by_freq:
                raise LayoutError(
                    "embedding_backward: scale_grad_by_freq not supported with sparse "
                    "gradients; pass sparse=False or scale_grad_by_freq=False"
                )
            from ..autograd import _sparse_grad

            return _sparse_grad.rows(g, self.idx, self.shape, self.pad), None, None, None, None
        xp = backend.array_module(g)
        idx = self.idx.reshape(-1)
        n, (v, d) = idx.shape[0], self.shape
        # NOTE: float32 on the CPU: the rows added in one pass in C (_native); 1000 rows
        # of 560 tokens: 0.1 ms against 3.7 ms for the one-hot GEMM below
        gw = _native.embedding_backward(g.reshape(n, d), idx, v)
        if gw is not None:
            pass
        elif n * v <= _ONE_HOT_MAX and g.dtype.kind == "f" and g.dtype.itemsize >= 4:
            # NOTE: for small vocabularies a one-hot GEMM sums the rows several times
            # faster than a scatter-add (1024 rows of 65 tokens: 0.4 ms against 1.5 ms)
            one_hot = idx[None, :] == xp.arange(v, dtype=idx.dtype)[:, None]
            gw = xp.matmul(one_hot.astype(g.dtype), g.reshape(n, d))
        else:
            gw = xp.zeros(self.shape, g.dtype)
            backend.index_add(gw, idx, g.reshape(-1, d))
        if self.by_freq:
            count = xp.zeros(self.shape[0], g.dtype)
            backend.index_add(count, idx, xp.ones(idx.shape, g.dtype))
            gw /= xp.maximum(count, 1)[:, None]
        if self.pad is not None:
            gw[self.pad] = 0
        return gw, None, None, None, None

    def backward_graph(self, g):
        from .indexing import AddAt

        if self.sparse:
            return NotImplemented
        xp = backend.array_module(g._data)
        idx = self.idx.reshape(-1)
        g = g.reshape(idx.shape[0], self.shape[1])
        if self.pad is not None or self.by_freq:
            # NOTE: per looked-up row, the factor backward applies: 0 at padding_idx,
            # 1 / count with scale_grad_by_freq (a constant: the gradient stays linear in g)
            scale = xp.ones(idx.shape, g._data.dtype)
            if self.by_freq:
                count = xp.zeros(self.shape[0], scale.dtype)
                backend.index_add(count, idx, scale)
                scale = scale / count[idx]
            if self.pad is not None:
                scale = scale * (idx != self.pad)
            g = g * Tensor._wrap(scale.reshape(-1, 1), g._device)
        return AddAt.apply(g, idx, self.shape), None, None, None, None


def _renorm_rows(w, idx, max_norm, norm_type):
    """Scale the rows of ``w`` picked by ``idx`` in place to a norm of at most ``max_norm``."""
    xp = backend.array_module(w)
    flat = idx.reshape(-1)
    rows = w[flat]
    a = xp.abs(rows)
    if norm_type == float("inf"):
        norm = a.max(axis=1, keepdims=True)
    elif norm_type == float("-inf"):
        norm = a.min(axis=1, keepdims=True)
    elif norm_type == 0:
        norm = (a != 0).sum(axis=1, keepdims=True).astype(w.dtype)
    else:
        with backend.quiet_float_errors():  # a negative p over a zero entry: the norm is 0
            norm = (a**norm_type).sum(axis=1, keepdims=True) ** (1.0 / norm_type)
    # NOTE: repeated indices write the same scaled row, so plain assignment is correct
    w[flat] = rows * xp.where(norm > max_norm, max_norm / (norm + 1e-7), 1.0).astype(w.dtype)


@backend.on_tensor_device
def embedding(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by the integer indices ``input``.

    Indices must lie in [0, num_embeddings); they are not checked on the GPU.

    Args:
        input: integer indices of any shape.
        weight: the table, shape (num_embeddings, embedding_dim).
        padding_idx: the row at this index gets no gradient (default None).
        max_norm: rows looked up are first rescaled in place to this norm at most
            (default None).
        norm_type: the p of the p-norm for ``max_norm`` (default 2.0).
        scale_grad_by_freq: divide each row's gradient by its count in ``input`` (default
            False).
        sparse: make ``weight.grad`` a sparse COO tensor of the rows looked up, for
            ``optim.SparseAdam``, ``SGD`` or ``Adagrad`` (default False).

    Example: ``vecs = F.embedding(token_ids, table)``.
    """
    if weight.ndim != 2:
        raise ShapeError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape "
            f"{tuple(weight.shape)}"
        )
    if input.is_floating_point() or input.dtype is D.bool_:
        raise DTypeError(
            f"embedding: indices must be an integer dtype (int64), got {input.dtype}; "
            "convert with idx.long()"
        )
    n = weight.shape[0]
    # NOTE: a negative index would pick a row from the end; PyTorch refuses it on the CPU
    # (an index >= n fails in the lookup itself); GPUs read no values back to check
    if input._device.type == "cpu" and input._data.size and input._data.min() < 0:
        raise DimError(
            f"embedding: index out of range in self: indices must lie in [0, {n}), got "
            f"{int(input._data.min())}"
        )
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within [-{n}, {n})")
        padding_idx %= n
    if max_norm is not None:
        _renorm_rows(weight._data, input._data, max_norm, norm_type)
    return Embedding.apply(weight, input, padding_idx, scale_grad_by_freq, bool(sparse))


class Dropout(Function):
    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return g * self.mask

    def backward_graph(self, g):
        return g * Tensor._wrap(self.mask)


class FusedDropout(Function):
    """Dropout on a GPU by the counter-based kernel: the mask is regenerated from
    ``(seed, offset)`` in backward instead of being kept."""

    def forward(self, x, p, seed, offset):
        self.p, self.seed, self.offset = p, seed, offset
        return _kernels().dropout(backend.array_module(x).ascontiguousarray(x), p, seed, offset)

    def backward(self, g):
        g = backend.array_module(g).ascontiguousarray(g)
        return _kernels().dropout_backward(g, self.p, self.seed, self.offset), None, None, None

    def backward_graph(self, g):
        from ..kernels import rng_dropout

        xp = backend.array_module(g._data)
        u = rng_dropout.uniform(xp, g.numel(), self.seed, self.offset).reshape(g._data.shape)
        mask = (u >= xp.float32(self.p)).astype(g._data.dtype) * (1.0 / (1.0 - self.p))
        return g * Tensor._wrap(mask.astype(g._data.dtype, copy=False)), None, None, None


def _capturing():
    from ..cuda import graphs

    return graphs.current_capture()


@backend.on_tensor_device
def _dropout(input: Tensor, p: float, training: bool) -> Tensor:  # noqa: A002
    """The dropout of ``F.dropout`` and ``torch.dropout``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    x = _float_input(input)
    if 0.0 < p < 1.0 and _fused("kernels.dropout", x._data) and _capturing() is None:
        seed, offset = backend.generator(x._device).counter(x.numel())
        return FusedDropout.apply(x, p, seed, offset)
    r = backend.generator(x._device).random(tuple(x.shape), D.float32.np)
    scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
    mask = (r >= p).astype(x._data.dtype) * scale
    return Dropout.apply(x, mask.astype(x._data.dtype, copy=False))


def dropout(input: Tensor, p: float, train: bool) -> Tensor:  # noqa: A002
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``
    (``torch.dropout``; ``F.dropout`` names the flag ``training`` and has defaults).

    The mask comes from the device's generator (``mg.manual_seed`` makes it repeatable).

    Args:
        input: a float tensor.
        p: probability of zeroing an element.
        train: apply dropout; when False the input is returned as is.

    Example: ``h = mg.dropout(h, 0.1, train=True)``.
    """
    return _dropout(input, p, train)


@backend.on_tensor_device
def one_hot(input: Tensor, num_classes: int = -1) -> Tensor:  # noqa: A002
    """int64 one-hot encoding: a new last dim of size ``num_classes``.

    ``num_classes=-1`` reads ``input.max() + 1`` back to the host (a sync on GPUs);
    pass the number of classes in training loops. Indices outside [0, num_classes)
    raise a RuntimeError on the CPU (as in PyTorch); on a GPU they are not checked (no
    sync) and give all-zero rows.

    Args:
        input: integer class indices of any shape.
        num_classes: size of the new dim (default -1: one more than the largest index).

    Example: ``F.one_hot(mg.tensor([0, 2]), 3)`` is ``[[1, 0, 0], [0, 0, 1]]``.
    """
    if input.is_floating_point() or input.dtype is D.bool_:
        raise DTypeError(f"one_hot: expects an integer (int64) tensor, got {input.dtype}")
    xp = backend.array_module(input._data)
    if num_classes == -1:
        if input.numel() == 0:
            raise ShapeError("one_hot: can't infer num_classes from an empty tensor; pass it")
        num_classes = int(input._data.max()) + 1  # NOTE: the one host sync, asked for
    if input._device.type == "cpu" and input._data.size:
        if input._data.min() < 0:
            raise ShapeError("one_hot: class values must be non-negative")
        if input._data.max() >= num_classes:
            raise ShapeError(
                f"one_hot: class values must be smaller than num_classes ({num_classes}), "
                f"got {int(input._data.max())}"
            )
    classes = xp.arange(num_classes, dtype=D.int64.np)
    out = (input._data[..., None] == classes).astype(D.int64.np)
    return Tensor._wrap(out, input._device)


from ._common import public  # noqa: E402

__all__ = public(globals())
