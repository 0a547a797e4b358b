"""Channel-wise and self-normalising dropout (dropout1d/2d/3d, alpha_dropout,
feature_alpha_dropout), bilinear and embedding_bag, as in ``torch.nn.functional``.

Each multiplies or adds constant arrays (masks, bag matrices) to differentiable ops, so
gradients, and theirs, come from mul, add, matmul, index_add and embedding.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

import warnings

from .. import backend
from .. import dtypes as D
from ..autograd import Function
from ..cpu import _sortscan
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import _float_input, where
from .indexing import gather
from .linalg import linear
from .nn import _renorm_rows, embedding
from .reduce import sum
from .scatter import index_add

_SELU_ALPHA_SCALE = 1.7580993408473766  # NOTE: selu's scale * alpha, as PyTorch's kernel


def _const(x: Tensor, arr) -> Tensor:
    return Tensor._wrap(arr, x._device)


def _keep_mask(x: Tensor, shape, p: float):
    """A 0/1 array of ``shape`` in x's dtype: 1 with probability 1 - p."""
    r = backend.generator(x._device).random(tuple(shape), D.float32.np)
    return (r >= p).astype(x._data.dtype)


def _check_p(p: float, op: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _feature_shape(x: Tensor, nd: int, op: str):
    """The mask's shape: one value per (batch, channel) pair, or per channel of an
    unbatched input (``nd`` spatial dims and no batch dim); ``nd=0``: per first two dims."""
    if x.ndim < 2:
        raise ShapeError(f"{op}: Feature dropout requires at least 2 dimensions in the input, "
                         f"got shape {tuple(x.shape)}")  # fmt: skip
    lead = 1 if nd and x.ndim == nd + 1 else 2  # unbatched inputs: one mask per channel
    return tuple(x.shape[:lead]) + (1,) * (x.ndim - lead)


@backend.on_tensor_device
def _feature_dropout(x: Tensor, p: float, training: bool, nd: int, op: str) -> Tensor:
    _check_p(p, op)
    if not training or p == 0.0 or x.numel() == 0:
        return x
    x = _float_input(x)
    shape = _feature_shape(x, nd, op)
    if p == 1.0:
        return x * 0.0
    return x * _const(x, _keep_mask(x, shape, p) * x._data.dtype.type(1.0 / (1.0 - p)))


def _spatial_dims_warning(op: str, ndim: int, nd: int) -> None:
    # NOTE: PyTorch's words: other ranks still run (deprecated), with this warning
    warnings.warn(
        f"{op}: Received a {ndim}-D input to {op}, which is deprecated and will result in an "
        "error in a future release. To retain the behavior and silence this warning, please "
        f"use dropout instead. Note that {op} exists to provide channel-wise dropout on inputs "
        f"with {nd} spatial dimensions, a channel dimension, and an optional batch dimension "
        f"(i.e. {nd + 1}D or {nd + 2}D inputs).",
        stacklevel=3,
    )


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:  # fmt: skip
    """Zero whole channels of (N, C, L) or (C, L) inputs with probability ``p``, scale the
    rest by 1 / (1 - p). Example: ``F.dropout1d(x, 0.2, model.training)``"""
    _check_p(p, "dropout1d")
    if input.ndim not in (2, 3):
        raise ShapeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that "
            "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
            "dimension, a channel dimension, and an optional batch dimension (i.e. 2D or 3D "
            "inputs)."
        )
    return _feature_dropout(input, p, training, 1, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:  # fmt: skip
    """Zero whole channels of (N, C, H, W) inputs (Tompson et al., 2015).

    NOTE: as in PyTorch, a 3-d input is taken as (N, C, L) (channel-wise 1-d dropout), with
    its warning; other ranks than 3 and 4 warn and drop per (first, second) dim pair."""
    _check_p(p, "dropout2d")
    if input.ndim not in (3, 4):
        _spatial_dims_warning("dropout2d", input.ndim, 2)
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C is "
            "the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2,
        )
    return _feature_dropout(input, p, training, 0, "dropout2d")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:  # fmt: skip
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) inputs (other ranks warn, as
    in PyTorch, and take the first dim as the channels)."""
    _check_p(p, "dropout3d")
    if input.ndim not in (4, 5):
        _spatial_dims_warning("dropout3d", input.ndim, 3)
    if input.ndim != 5:  # NOTE: unbatched, as PyTorch: a batch dim is added, then dropped
        if not training or p == 0.0 or input.numel() == 0:
            return input
        return _feature_dropout(input.unsqueeze(0), p, training, 0, "dropout3d").squeeze(0)
    return _feature_dropout(input, p, training, 3, "dropout3d")


@backend.on_tensor_device
def _alpha(x: Tensor, p: float, training: bool, feature: bool, op: str) -> Tensor:
    _check_p(p, op)
    if not training or p == 0.0 or x.numel() == 0:
        return x
    x = _float_input(x)
    if p == 1.0:
        return x * 0.0
    shape = _feature_shape(x, 0, op) if feature else tuple(x.shape)
    keep = _keep_mask(x, shape, p)
    al = _SELU_ALPHA_SCALE
    a = 1.0 / ((al * al * p + 1) * (1 - p)) ** 0.5
    # NOTE: dropped units take selu's negative saturation value, then an affine map keeps
    # the mean and variance: y = a * (x * keep + alpha' * (keep - 1)) + a * alpha' * p
    dt = x._data.dtype.type
    shift = (keep - 1) * dt(al * a) + dt(al * a * p)
    return x * _const(x, keep * dt(a)) + _const(x, shift.astype(x._data.dtype))


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:  # fmt: skip
    """Dropout that keeps zero mean and unit variance for SELU networks (Klambauer et al.,
    2017). Note PyTorch's default ``training=False``."""
    return _alpha(input, p, training, False, "alpha_dropout")


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:  # fmt: skip
    """``alpha_dropout`` of whole channels."""
    return _alpha(input, p, training, True, "feature_alpha_dropout")


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:  # fmt: skip
    """``y[..., o] = x1 @ weight[o] @ x2 + bias[o]``; weight (out, in1, in2).

    Example: ``F.bilinear(mg.randn(4, 3), mg.randn(4, 5), mg.randn(2, 3, 5))``  # (4, 2)
    """
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or (
            input2.shape[-1] != weight.shape[2]):  # fmt: skip
        raise ShapeError(
            f"bilinear: inputs of shapes {tuple(input1.shape)} and {tuple(input2.shape)} do "
            f"not fit weight of shape {tuple(weight.shape)} (out, in1, in2)"
        )
    o, i, j = weight.shape
    w = weight.permute(0, 2, 1).reshape(o * j, i)
    t = linear(input1, w).reshape(tuple(input1.shape[:-1]) + (o, j))
    y = sum(t * input2.unsqueeze(-2), -1)
    return y if bias is None else y + bias


@backend.on_tensor_device
def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None,
                  max_norm: float | None = None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:  # fmt: skip
    """Sums, means or maxima of bags of embeddings, without materialising the bags' rows
    per position beyond one lookup.

    Args:
        input: (B, N) ids (B bags of N) or 1-d ids with ``offsets`` (bag starts).
        weight: the (num_embeddings, dim) table.
        max_norm, norm_type: rows looked up are first rescaled in place to a
            ``norm_type``-norm of at most ``max_norm`` (as ``F.embedding``).
        mode: "sum", "mean" (default) or "max".
        sparse: make ``weight.grad`` a sparse COO tensor of the ids' rows (modes "sum" and
            "mean"), for ``optim.SparseAdam``, ``SGD`` or ``Adagrad`` (default False).
        per_sample_weights: a weight per id (mode "sum" only).
        include_last_offset: ``offsets`` has one more entry, the end of the last bag.
        scale_grad_by_freq: divide each row's gradient by its count in ``input`` (modes
            "sum" and "mean"; default False).
        padding_idx: ids that are left out of their bag.

    Example: ``F.embedding_bag(mg.tensor([1, 2, 4, 5, 4]), w, mg.tensor([0, 2]))``
    """
    op = "embedding_bag"
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"{op}: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if scale_grad_by_freq and mode == "max":
        raise ValueError("max mode does not support scaling the gradient by the frequency; use "
                         "mode='sum' or 'mean', or scale_grad_by_freq=False")  # fmt: skip
    if sparse and mode == "max":
        raise ValueError("max mode does not support sparse weights; use mode='sum' or 'mean', "
                         "or sparse=False")  # fmt: skip
    if per_sample_weights is not None and mode != "sum":
        raise ValueError(f"{op}: per_sample_weights is only supported for mode='sum', got "
                         f"mode={mode!r}")  # fmt: skip
    fast = _bag_fast(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode,
                     sparse, per_sample_weights, include_last_offset, padding_idx)  # fmt: skip
    if fast is not None:
        return fast
    xp = backend.array_module(weight._data)
    ids = input._data
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{op}: offsets must be None for a 2-d input (B, N)")
        b, n = ids.shape
        bag = xp.repeat(xp.arange(b), n)
        ids = ids.reshape(-1)
        psw = None if per_sample_weights is None else per_sample_weights.reshape(-1)
    elif input.ndim == 1:
        if offsets is None or offsets.ndim != 1:
            raise ValueError(f"{op}: a 1-d input needs 1-d offsets (the start of each bag)")
        off = offsets._data.astype(xp.int64)
        if include_last_offset:
            off = off[:-1]
        b = off.shape[0]
        bag = xp.searchsorted(off, xp.arange(ids.shape[0]), side="right") - 1
        psw = per_sample_weights
    else:
        raise ShapeError(f"{op}: expected a 1-d or 2-d input, got shape {tuple(input.shape)}")
    use = bag >= 0  # NOTE: ids before the first offset belong to no bag
    if padding_idx is not None:
        use &= ids != padding_idx % weight.shape[0]
    pad = None if padding_idx is None or not sparse else padding_idx % weight.shape[0]
    ids_t = Tensor._wrap(ids, input._device)
    # NOTE: scale_grad_by_freq divides a row's gradient by its count over all bags
    rows = embedding(ids_t, weight, pad, max_norm, norm_type, scale_grad_by_freq, sparse)
    # NOTE: bags are gathered by index, not through a (bags x ids) membership matrix: that
    # matrix made 256 bags of 4,096 ids take 8.4 ms (sum) and 17 ms (max), PyTorch 0.09
    # and 1.9 ms
    dev = input._device
    bag_t = Tensor._wrap(xp.where(use, bag, 0), dev)
    count = xp.bincount(xp.where(use, bag, b), minlength=b + 1)[:b]
    if mode == "max":
        cu = xp.cumsum(use)
        start = xp.repeat(xp.arange(b) * n, n) if input.ndim == 2 else off[xp.maximum(bag, 0)]
        before = cu[start] - use[start]
        rank = cu - 1 - before  # place of each used id inside its bag
        width = max(int(count.max()) if b else 0, 1)
        slot = xp.zeros((b, width), xp.int64)
        filled = xp.zeros((b, width), bool)
        slot[bag[use], rank[use]] = xp.flatnonzero(use)
        filled[bag[use], rank[use]] = True
        vals = embedding(Tensor._wrap(slot, dev), rows)  # (B, width, dim)
        vals = where(_const(rows, filled[..., None]), vals, float("-inf"))
        # NOTE: the gradient of a maximum goes to the first id holding it, as PyTorch's
        # (amax would share it among ids with equal rows)
        first = xp.argmax(vals._data, axis=1)[:, None, :]
        out = gather(vals, 1, Tensor._wrap(first, dev)).squeeze(1)
        return where(_const(rows, (count > 0)[:, None]), out, 0.0)
    if psw is not None:
        rows = rows * psw.reshape(-1, 1)
    if padding_idx is not None or input.ndim == 1:
        rows = rows * _const(rows, use.reshape(-1, 1).astype(rows._data.dtype))
    zeros = Tensor._wrap(xp.zeros((b, weight.shape[1]), rows._data.dtype), dev)
    out = index_add(zeros, 0, bag_t, rows)
    if mode == "mean":
        out = out / _const(rows, xp.maximum(count, 1).astype(rows._data.dtype)[:, None])
    return out


class EmbeddingBag(Function):
    """embedding_bag's sums, means or maxima of a float32/float64 table on the CPU, in one C
    pass each way (``cpu/_sortscan.bag``): bag b holds ``ids[starts[b]:starts[b + 1]]``
    less the ids equal to ``pad`` (-1: none). The gradient of a maximum goes to the id it
    came from (the first of equal values, as PyTorch's)."""

    def reference(self, w, psw, ids, starts, pad, mode):
        """The same values as tensor ops (for gradients of gradients)."""
        xp = backend.array_module(w._data)
        dev, dim = w._device, w.shape[1]
        if mode == "max":
            arg = self.arg
            flat = xp.where(arg >= 0, arg * dim + xp.arange(dim), 0)
            picked = w.reshape(-1)[Tensor._wrap(flat, dev)]
            return picked * _const(w, (arg >= 0).astype(w._data.dtype))
        n = ids.shape[0]
        lo, hi = int(starts._data[0]), int(starts._data[-1])
        bag = xp.searchsorted(starts._data[1:], xp.arange(lo, hi), side="right")
        sel = ids._data[lo:hi]
        keep = sel != pad
        rows = embedding(Tensor._wrap(sel[keep], dev), w)
        if psw is not None:
            rows = rows * psw.reshape(n)[Tensor._wrap(xp.flatnonzero(keep) + lo, dev)][:, None]
        zeros = Tensor._wrap(xp.zeros((starts.shape[0] - 1, dim), w._data.dtype), dev)
        out = index_add(zeros, 0, Tensor._wrap(bag[keep], dev), rows)
        if mode == "mean":
            out = out / _const(w, xp.maximum(self.count, 1).astype(w._data.dtype)[:, None])
        return out

    def forward(self, w, psw, ids, starts, pad, mode):
        self.inputs = (w, psw, ids, starts, pad, mode)
        out, self.count, self.arg = _sortscan.bag(w, ids, starts, psw, pad, mode)
        self.w, self.psw, self.ids, self.starts, self.pad, self.mode = (
            w,
            psw,
            ids,
            starts,
            pad,
            mode,
        )
        return out

    def backward(self, g):
        xp = backend.array_module(g)
        ids, starts, psw, pad = self.ids, self.starts, self.psw, self.pad
        gw = gp = None
        if self.needs_input_grad[0]:
            gw = _sortscan.bag_backward(g, self.w.shape[0], ids, starts, psw, pad, self.mode,
                                        self.arg, self.count)  # fmt: skip
        if psw is not None and self.needs_input_grad[1]:
            # NOTE: d out[b] / d psw[i] = w[ids[i]] for the ids of bag b: a row dot product
            lo, hi = int(starts[0]), int(starts[-1])
            bag = xp.searchsorted(starts[1:], xp.arange(lo, hi), side="right")
            sel = ids[lo:hi]
            gp = xp.zeros(ids.shape[0], g.dtype)
            gp[lo:hi] = xp.where(sel != pad, (g[bag] * self.w[sel]).sum(1), 0)
            gp = gp.reshape(psw.shape)
        return gw, gp, None, None, None, None


def _bag_fast(input, weight, offsets, max_norm, norm_type, by_freq, mode, sparse, psw,
              include_last, padding_idx):  # fmt: skip
    """embedding_bag through ``EmbeddingBag`` where it applies (float32/float64 tables on
    the CPU, well-formed offsets and ids in range; no sparse gradient, no
    scale_grad_by_freq), else None (the tensor-op path below, the reference).

    NOTE: 256 bags of 4,096 ids into a 5000 x 128 float32 table took 2.4 ms (sum) and 9.3
    (max) through index_add and a padded (bags x width) gather, PyTorch 0.1 and 1.7."""
    w, ids = weight._data, input._data
    if (
        sparse or by_freq or w.__class__ is not backend.np.ndarray or w.ndim != 2
        or w.dtype.char not in "fd" or ids.dtype.kind not in "iu"
        or input.ndim not in (1, 2) or (psw is not None and psw.dtype != weight.dtype)
        or (input.ndim == 2) != (offsets is None) or not ids.size
        or not _sortscan.available()
    ):  # fmt: skip
        return None
    xp, v = backend.np, w.shape[0]
    if padding_idx is not None and not -v <= padding_idx < v:
        return None
    ids = xp.ascontiguousarray(ids.reshape(-1), xp.int64)
    n = ids.shape[0]
    if ids.min() < 0 or ids.max() >= v or (psw is not None and psw.numel() != n):
        return None
    if input.ndim == 2:
        starts = xp.arange(input.shape[0] + 1, dtype=xp.int64) * input.shape[1]
    else:
        if offsets.ndim != 1 or offsets._data.dtype.kind not in "iu":
            return None
        off = offsets._data.astype(xp.int64)
        if include_last:
            off = off[:-1]
        # NOTE: bags run from one offset to the next, the last to the end of the ids
        starts = xp.concatenate([off, [n]]).astype(xp.int64)
        if (starts[:-1] > starts[1:]).any() or starts[0] < 0:
            return None
    if max_norm is not None:
        _renorm_rows(w, ids, max_norm, norm_type)
    pad = -1 if padding_idx is None else padding_idx % v
    return EmbeddingBag.apply(weight, psw, ids, starts, pad, mode)


from ._common import public  # noqa: E402

__all__ = public(globals())
