"""Shape ops: reshape/view, squeeze/flatten, permute/transpose, expand, cat/stack/split.

Indexing ops live in ``indexing`` and pad/flip/roll/repeat/tril in ``arrange``; both are
re-exported here."""

from __future__ import annotations

import math

from .. import backend
from .. import dtypes as D
from .._size_args import one_form
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor
from . import indexing
from .elementwise import cast
from .indexing import *  # noqa: F403
from .indexing import DimError, Slice, _dim, _dims, _sizes

# ---------------------------------------------------------------------------- reshape


class Reshape(Function):
    node_name = "ViewBackward0"  # NOTE: PyTorch's view, reshape and flatten record a view
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True  # moves or picks values: right for complex ones too
    view = True

    def forward(self, x, shape):
        self.shape = x.shape
        out = x.reshape(shape)
        if not x.flags.c_contiguous and not backend.shares_memory(out, x):
            self.copied = True  # NOTE: a copy, as PyTorch's reshape of such a tensor
        return out

    def backward(self, g):
        return g.reshape(self.shape)

    def backward_graph(self, g):
        return g.reshape(*self.shape)


def _infer(shape: tuple, numel: int, op: str) -> tuple:
    """Resolve one -1 in ``shape`` and check the element count."""
    if -1 not in shape and math.prod(shape) == numel and min(shape, default=0) >= 0:
        return shape
    known = math.prod(s for s in shape if s != -1)
    holes = shape.count(-1)
    if holes > 1 or any(s < -1 for s in shape):
        raise ShapeError(f"{op}: invalid shape {list(shape)}: only one dim may be -1, none < -1")
    if holes:
        if known == 0:
            raise ShapeError(
                f"{op}: can't reshape a tensor of {numel} elements into {list(shape)}: "
                "the -1 dim could be any size"
            )
        shape = tuple(numel // known if s == -1 else s for s in shape)
    if math.prod(shape) != numel:
        raise ShapeError(f"{op}: shape {list(shape)} is invalid for input of size {numel}")
    return shape


def reshape(input: Tensor, *sizes, shape=None) -> Tensor:
    """The elements of ``input`` in a new shape; one size may be -1 (inferred).

    Args:
        input: input tensor.
        sizes: the new shape, as ints or one tuple (or as ``shape=``, PyTorch's keyword).

    Example: ``mg.arange(6).reshape(2, -1)``
    """
    if shape is not None:
        sizes = one_form("reshape", sizes, shape=shape)
    return Reshape.apply(input, _infer(_sizes(sizes, "reshape"), input._data.size, "reshape"))


def view(input: Tensor, *shape) -> Tensor:
    """``reshape`` under PyTorch's name for views; the element count must match.

    Example: ``x.view(x.size(0), -1)``
    """
    if len(shape) == 1 and isinstance(shape[0], D.dtype):  # x.view(mg.uint8): a dtype view
        from .dtype_view import view_dtype

        return view_dtype(input, shape[0])
    d = input._data
    new = _infer(_sizes(shape, "view"), d.size, "view")
    base = input._base
    # NOTE: refused only for views of a row-major tensor, whose strides are PyTorch's too; a
    # tensor that a manygrad op laid out otherwise than PyTorch's (NumPy keeps its inputs'
    # layout) is copied, since PyTorch would have viewed it
    if (
        base is not None
        and not d.flags.c_contiguous
        and base._data.flags.c_contiguous
        and not _viewable(d.shape, d.strides, new)
    ):
        raise RuntimeError(
            f"view: the shape {list(new)} is not compatible with the input's size "
            f"{list(d.shape)} and stride {[s // d.itemsize for s in d.strides]} (at least one "
            "dimension spans across two contiguous subspaces); use .reshape(...) instead, "
            "which copies when it must"
        )
    return Reshape.apply(input, new)


def _viewable(shape, strides, new) -> bool:
    """Whether a tensor of ``shape`` and (byte) ``strides`` can be seen in shape ``new``
    without copying, as PyTorch decides for ``view``: each run of dims that are contiguous
    with one another must be made of whole new dims."""
    if 0 in shape:
        return True
    j = len(new) - 1
    run = new_run = 1
    base = strides[-1]
    for i in range(len(shape) - 1, -1, -1):
        run *= shape[i]
        # NOTE: a run ends at dim i when the dim before it does not continue it (size-1
        # dims continue any run)
        base = strides[i] if run == shape[i] else base
        if i == 0 or (shape[i - 1] != 1 and strides[i - 1] != run * base):
            while j >= 0 and (new_run < run or new[j] == 1):
                new_run *= new[j]
                j -= 1
            if new_run != run:
                return False
            run = new_run = 1
    return j == -1


def view_as(input: Tensor, other: Tensor) -> Tensor:
    """``input.view(other.shape)``."""
    return view(input, tuple(other.shape))


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    """``input.reshape(other.shape)``."""
    return reshape(input, tuple(other.shape))


def squeeze(input: Tensor, dim=None) -> Tensor:
    """``input`` without its size-1 dims (all of them, or those in ``dim``: int or tuple).

    Example: ``mg.zeros(2, 1, 3).squeeze(1).shape == (2, 3)``
    """
    dims = range(input.ndim) if dim is None else _dims(dim, input.ndim, "squeeze")
    shape = tuple(s for i, s in enumerate(input.shape) if not (i in dims and s == 1))
    return Reshape.apply(input, shape)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """``input`` with a new size-1 dim at ``dim`` (-1 appends).

    Example: ``mg.zeros(3).unsqueeze(0).shape == (1, 3)``
    """
    sh = input._data.shape
    d = _dim(dim, len(sh) + 1, "unsqueeze")
    return Reshape.apply(input, sh[:d] + (1,) + sh[d:])


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """``input`` with dims ``start_dim..end_dim`` merged into one.

    Example: ``images.flatten(1)`` gives (N, C*H*W).
    """
    if input.ndim == 0:
        return Reshape.apply(input, (1,))
    s, e = _dim(start_dim, input.ndim, "flatten"), _dim(end_dim, input.ndim, "flatten")
    if s > e:
        raise ShapeError(
            f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})"
        )
    sh = input.shape
    return Reshape.apply(input, sh[:s] + (math.prod(sh[s : e + 1]),) + sh[e + 1 :])


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    """``input`` with dim ``dim`` split into ``sizes`` (one may be -1).

    Example: ``mg.zeros(2, 12).unflatten(1, (3, 4)).shape == (2, 3, 4)``
    """
    d = _dim(dim, input.ndim, "unflatten")
    sizes = _infer(_sizes((sizes,), "unflatten"), input.shape[d], "unflatten")
    return Reshape.apply(input, input.shape[:d] + sizes + input.shape[d + 1 :])


# ---------------------------------------------------------------------------- permute, expand


class Permute(Function):
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True  # moves or picks values: right for complex ones too
    view = True

    def forward(self, x, dims):
        self.inv = tuple(sorted(range(len(dims)), key=dims.__getitem__))
        return x.transpose(dims)

    def backward(self, g):
        return g.transpose(self.inv)

    def backward_graph(self, g):
        return g.permute(*self.inv)


def permute(input: Tensor, *order, dims=None) -> Tensor:
    """``input`` with its dims reordered: output dim i is input dim ``order[i]`` (ints or
    one tuple, or ``dims=``, PyTorch's keyword).

    Example: ``images.permute(0, 2, 3, 1)`` turns NCHW into NHWC.
    """
    order = one_form("permute", order, dims=dims)
    dims = _sizes(order, "permute")
    if len(dims) != input.ndim:
        raise ShapeError(
            f"permute: got {len(dims)} dims {dims} for a tensor of shape {tuple(input.shape)}"
        )
    return Permute.apply(input, _dims(dims, input.ndim, "permute") if input.ndim else ())


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """``input`` with dims ``dim0`` and ``dim1`` swapped.

    Example: ``q.transpose(-2, -1)``
    """
    n = input._data.ndim
    a, b = _dim(dim0, n, "transpose"), _dim(dim1, n, "transpose")
    order = list(range(n))
    if n:
        order[a], order[b] = order[b], order[a]
    return Permute.apply(input, tuple(order))


def t(input: Tensor) -> Tensor:
    """Transpose of a matrix (0-d and 1-d tensors come back as they are).

    Example: ``w.t()``
    """
    if input.ndim > 2:
        raise ShapeError(
            f"t: expects a tensor of at most 2 dims, got shape {tuple(input.shape)}; use "
            "x.transpose(dim0, dim1) or x.mT"
        )
    return Permute.apply(input, tuple(range(input.ndim))[::-1])


def movedim(input: Tensor, source, destination) -> Tensor:
    """``input`` with dims ``source`` moved to positions ``destination`` (ints or tuples).

    Example: ``mg.zeros(2, 3, 4).movedim(0, -1).shape == (3, 4, 2)``
    """
    src, dst = _dims(source, input.ndim, "movedim"), _dims(destination, input.ndim, "movedim")
    if input.ndim == 0:
        return Permute.apply(input, ())
    if len(src) != len(dst):
        raise ShapeError(f"movedim: got {len(src)} source dims but {len(dst)} destinations")
    order = [d for d in range(input.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return Permute.apply(input, tuple(order))


class Expand(Function):
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True  # moves or picks values: right for complex ones too
    view = True

    def forward(self, x, shape):
        if x.size == math.prod(shape):  # NOTE: only size-1 dims added: a writable view
            return x.reshape(shape)
        return backend.array_module(x).broadcast_to(x, shape)

    def backward(self, g):
        return g  # NOTE: the engine sums broadcast gradients back to the input's shape

    backward_graph = backward


def expand(input: Tensor, *sizes) -> Tensor:
    """``input`` broadcast to ``sizes`` without copying; -1 keeps a size.

    Example: ``mg.zeros(3, 1).expand(3, 4)``
    """
    sizes = _sizes(sizes, "expand")
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ShapeError(
            f"expand: got {len(sizes)} sizes {list(sizes)} for a tensor of shape "
            f"{tuple(input.shape)}; give at least {input.ndim}"
        )
    shape = []
    for i, s in enumerate(sizes):
        have = input.shape[i - lead] if i >= lead else None
        if s == -1 and have is not None:
            s = have
        if s < 0 or (have is not None and have != 1 and have != s):
            raise ShapeError(
                f"expand: can't expand shape {tuple(input.shape)} to {list(sizes)}: size {s} at "
                f"dim {i} must match {have} (only size-1 dims expand; -1 keeps a size; new "
                "leading dims need a size)"
            )
        shape.append(s)
    return Expand.apply(input, tuple(shape))


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    """``input.expand(other.shape)``."""
    return expand(input, tuple(other.shape))


# ---------------------------------------------------------------------------- cat, split


def _channels_last_like(a) -> bool:
    """Whether ``a``'s strides order its dims as channels-last does (PyTorch's test: the
    channel dim innermost, then width, height, depth, batch; row-major wins ties)."""
    if a.ndim not in (4, 5) or a.strides[1] == 0:
        return False
    low = 0
    for d in (1, 3, 2, 0) if a.ndim == 4 else (1, 4, 3, 2, 0):
        if a.shape[d] == 0 or a.strides[d] < low or (d == 0 and low == a.strides[1]):
            return False
        low = a.strides[d] * (a.shape[d] if a.shape[d] > 1 else 1)
    return True


class Cat(Function):
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, *arrays, dim, skip):
        self.dim, self.skip = dim, skip
        self.sizes = [a.shape[dim] for a, s in zip(arrays, skip) if not s]
        kept = [a for a, s in zip(arrays, skip) if not s]
        xp = backend.array_module(kept[0])
        out = xp.concatenate(kept, axis=dim)
        # NOTE: NumPy lays the result out like its inputs; PyTorch's is row-major unless every
        # input is channels-last (then `.view` of a cat of permuted tensors works in both)
        if out.flags.c_contiguous or all(_channels_last_like(a) for a in kept):
            return out
        return xp.ascontiguousarray(out)

    def backward(self, g):
        xp = backend.array_module(g)
        out, start, lead = [], 0, (slice(None),) * self.dim
        sizes = iter(self.sizes)
        for s in self.skip:
            if s:
                out.append(xp.zeros((0,), g.dtype))
                continue
            n = next(sizes)
            out.append(g[lead + (slice(start, start + n),)])
            start += n
        return tuple(out)

    def backward_graph(self, g):
        out, start, lead = [], 0, (slice(None),) * self.dim
        sizes = iter(self.sizes)
        for s in self.skip:
            if s:
                out.append(None)
                continue
            n = next(sizes)
            out.append(g[lead + (slice(start, start + n),)])
            start += n
        return tuple(out)


def cat(tensors, dim: int = 0) -> Tensor:
    """The tensors joined along ``dim``; all other sizes must match.

    Args:
        tensors: a sequence of tensors (dtypes promote as in PyTorch).
        dim: the dim to join along.

    Example: ``mg.cat([a, b], dim=1)``
    """
    tensors = list(tensors)
    if not tensors or not all(isinstance(v, Tensor) for v in tensors):
        if any(getattr(v, "is_sparse", False) for v in tensors):
            from .._sparse_ops import cat as sparse_cat

            return sparse_cat(tensors, dim)
        raise TypeError("cat: expected a non-empty sequence of tensors")
    arrs = [v._data for v in tensors]  # NOTE: raw shapes/dtypes: this runs per step
    for i, a in enumerate(arrs):
        if a.ndim == 0:
            raise ShapeError(
                f"cat: zero-dimensional tensor (at position {i}) can't be concatenated; "
                "use mg.stack or unsqueeze it first"
            )
    # NOTE: PyTorch skips 1-d empty tensors (shape (0,)) whatever the other shapes are
    skip = [a.shape == (0,) for a in arrs]
    if all(skip):
        skip[0] = False
    kept = [a for a, s in zip(arrs, skip) if not s]
    ref = kept[0].shape
    d = _dim(dim, len(ref), "cat")
    head, tail = ref[:d], ref[d + 1 :]
    for a in kept:
        if a.ndim != len(ref) or a.shape[:d] != head or a.shape[d + 1 :] != tail:
            raise ShapeError(
                f"cat: tensors must have the same shape except in dim {d}, got shapes "
                f"{[tuple(u.shape) for u in tensors]}"
            )
    dt0 = arrs[0].dtype
    if any(a.dtype != dt0 for a in arrs):
        dt = tensors[0].dtype
        for v in tensors[1:]:
            dt = D.promote_types(dt, v.dtype)
        tensors = [v if v.dtype is dt else cast(v, dt) for v in tensors]
    return Cat.apply(*tensors, dim=d, skip=tuple(skip))


concat = cat
concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    """Equal-shaped tensors joined along a new dim ``dim``.

    Example: ``mg.stack([a, b]).shape == (2,) + a.shape``
    """
    tensors = list(tensors)
    if not tensors or not all(isinstance(v, Tensor) for v in tensors):
        raise TypeError("stack: expected a non-empty sequence of tensors")
    for i, v in enumerate(tensors):
        if v.shape != tensors[0].shape:
            raise ShapeError(
                f"stack: expects tensors of equal shape, got {tuple(tensors[0].shape)} at "
                f"entry 0 and {tuple(v.shape)} at entry {i}"
            )
    d = _dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(v, d) for v in tensors], d)


def _dim_1d(x: Tensor, dim: int, op: str) -> int:
    if x.ndim == 0:
        raise ShapeError(f"{op}: expects a tensor of at least 1 dim, got a 0-d tensor")
    return _dim(dim, x.ndim, op)


def _part(x: Tensor, d: int, start: int, stop: int) -> Tensor:
    return Slice.apply(x, (slice(None),) * d + (slice(start, stop),))


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """``tensor`` cut along ``dim`` into pieces of one size (the last may be smaller) or of
    the listed sizes.

    Example: ``a, b = mg.arange(5).split([2, 3])``
    """
    d = _dim_1d(tensor, dim, "split")
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        k = split_size_or_sections
        if k <= 0 and not (k == 0 and n == 0):
            from .linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

            raise ArgumentError(f"split: split_size must be positive, got {k}")
        sizes = [min(k, n - s) for s in range(0, n, k)] if n else [0]
    else:
        sizes = list(_sizes((split_size_or_sections,), "split"))
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ShapeError(
                f"split: sizes {sizes} must be non-negative and sum to the size of dim {d} "
                f"({n}) of the tensor of shape {tuple(tensor.shape)}"
            )
    out, start = [], 0
    for s in sizes:
        out.append(_part(tensor, d, start, start + s))
        start += s
    return tuple(out)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """``input`` cut along ``dim`` into at most ``chunks`` pieces of equal size (last smaller).

    Example: ``q, k, v = qkv.chunk(3, dim=-1)``
    """
    if chunks <= 0:
        from .linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

        raise ArgumentError(f"chunk: chunks must be positive, got {chunks}")
    n = input.shape[_dim_1d(input, dim, "chunk")]
    if n == 0:
        return split(input, [0] * chunks, dim)
    return split(input, -(-n // chunks), dim)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """The ``length`` entries of ``input`` from ``start`` along ``dim`` (a view).

    Example: ``x.narrow(1, 2, 3)`` is ``x[:, 2:5]``
    """
    d = _dim_1d(input, dim, "narrow")
    n = input.shape[d]
    if not -n <= start <= n:
        raise DimError(f"narrow: start {start} is out of range for dim {d} of size {n}")
    start %= max(n, 1)
    if length < 0 or start + length > n:
        raise ShapeError(f"narrow: start ({start}) + length ({length}) exceeds dim {d} of size {n}")
    return _part(input, d, start, start + length)


from . import arrange  # noqa: E402
from ._common import public  # noqa: E402
from .arrange import *  # noqa: E402, F403

# NOTE: indexing and arrange ops are re-exported so that importing movement gives them all
__all__ = sorted(set(public(globals()) + indexing.__all__ + arrange.__all__))
