"""Indexing ops: ``x[idx]`` (basic, integer-array and boolean-mask indexing), in-place
``x[idx] = value``, gather, scatter_add and index_select.

NOTE: index tensors are not range-checked on the device (that would be a host sync per
op): on the CPU NumPy raises IndexError for an out-of-range index, while on a GPU CuPy
wraps it around (as its docs state), so a wrong index gives wrong values there instead of
an error (lists become index arrays too). Run a failing model on the CPU to locate such
an index. Python ints are checked on the host, on every device.
"""

from __future__ import annotations

from .. import _meta, backend
from ..autograd import Function, is_grad_enabled
from ..cpu import _sortscan
from ..errors import DeviceError, DimError, DTypeError, ShapeError
from ..tensor import Tensor, _check_writable


def _dim(d: int, ndim: int, op: str) -> int:
    """``d`` as a non-negative dim of a tensor with ``ndim`` dims (0-d tensors take -1, 0)."""
    n = max(ndim, 1)
    if not isinstance(d, int) or isinstance(d, bool):
        raise TypeError(f"{op}: dim must be an int, got {type(d).__name__}")
    if not -n <= d < n:
        raise DimError(
            f"{op}: dim {d} is out of range for a tensor of {ndim} dims "
            f"(expected -{n} <= dim <= {n - 1})"
        )
    return d % n


def _sizes(args, op: str) -> tuple:
    """Sizes given as ints or as one tuple/list/Size."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    if all(type(s) is int for s in args):  # the common case, without the conversions
        return tuple(args)
    try:
        return tuple(s.__index__() for s in args)
    except AttributeError:
        raise TypeError(f"{op}: sizes must be ints, got {args!r}") from None


def _dims(dims, ndim: int, op: str) -> tuple:
    """Distinct non-negative dims from an int or a sequence of them."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    out = tuple(_dim(d, ndim, op) for d in dims)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: dims {dims} repeat a dim")
    return out


def _index_array(x: Tensor, idx, op: str):
    """An index (Tensor, list, NumPy array) as a raw integer or bool array on x's device."""
    xp = backend.array_module(x._data)
    if isinstance(idx, range):  # x[range(n), labels], as in PyTorch
        idx = list(idx)
    if isinstance(idx, Tensor) and idx._device == backend.CPU and x._device != backend.CPU:
        idx = idx._data  # NOTE: a CPU index into a device tensor is copied over, as PyTorch
    if isinstance(idx, Tensor):
        if idx._device != x._device:
            raise DeviceError(
                f"{op}: the index is on {idx._device} but the tensor is on {x._device}; "
                f"move it with index.to('{x._device}')"
            )
        a = idx._data
    elif backend.is_array(idx) and backend.device_of(idx) == x._device:
        a = idx
    elif backend.is_array(idx) and backend.device_of(idx) != backend.CPU:
        raise DeviceError(
            f"{op}: the index is on {backend.device_of(idx)} but the tensor is on {x._device}"
        )
    else:
        a = xp.asarray(idx)  # NOTE: host lists/arrays are copied to the device here
        if a.size == 0 and a.dtype.kind == "f":
            a = a.astype("int64")
    if a.dtype.kind not in "iub":
        raise DTypeError(f"{op}: indices must be an integer or bool tensor, got dtype {a.dtype}")
    if a.dtype == "uint8" and not isinstance(idx, list):
        import warnings

        # NOTE: PyTorch reads a uint8 tensor index as a mask (deprecated), not as positions
        warnings.warn(
            f"{op}: indexing with a uint8 tensor is deprecated (as in PyTorch) and reads it "
            "as a mask; use a bool tensor instead: x[mask.bool()]",
            UserWarning,
            stacklevel=4,
        )
        a = a.astype(bool)
    return a


def _is_index_array(it) -> bool:
    return isinstance(it, (Tensor, list, range)) or backend.is_array(it)


# ---------------------------------------------------------------------------- x[idx]


def _parse(x: Tensor, idx):
    """Split ``idx`` into a basic index (ints, slices, None) and per-dim array indices.

    PyTorch applies ints and slices first, then the array indices to what is left, and a
    0-d integer tensor selects like an int. Returns ``(basic, post)``: ``post`` has one
    entry per dim of ``x[basic]``: None (whole dim), ``("take", a)`` for a 0-d index or
    ``("arr", a)`` for an integer array.
    """
    xp = backend.array_module(x._data)
    items = idx if isinstance(idx, tuple) else (idx,)
    parsed, used, ellipsis = [], 0, False
    for it in items:
        if it is None or it is Ellipsis:
            if it is Ellipsis and ellipsis:
                raise IndexError("getitem: an index can only have a single ellipsis ('...')")
            ellipsis = ellipsis or it is Ellipsis
            parsed.append(("none" if it is None else "ell", it))
        elif isinstance(it, bool):
            parsed.append(("arr", xp.asarray(it)))
        elif isinstance(it, slice):
            if it.step is not None and it.step <= 0:
                raise ValueError(
                    f"getitem: slice step must be greater than zero, got {it.step}; negative "
                    "steps are not supported (as in PyTorch): use x.flip(dim) instead"
                )
            parsed.append(("slice", it))
            used += 1
        elif _is_index_array(it):
            a = _index_array(x, it, "getitem")
            parsed.append(("arr", a))
            used += a.ndim if a.dtype.kind == "b" else 1
        elif hasattr(it, "__index__"):
            parsed.append(("int", it.__index__()))
            used += 1
        else:
            raise TypeError(
                f"getitem: unsupported index of type {type(it).__name__}; use ints, slices, "
                "None, ..., or integer/bool tensors"
            )
    if used > x.ndim:
        raise IndexError(
            f"getitem: too many indices for a tensor of {x.ndim} dims (shape {tuple(x.shape)})"
        )
    basic, post, d = [], [], 0
    for kind, it in parsed:
        if kind == "ell":
            basic += [slice(None)] * (x.ndim - used)
            post += [None] * (x.ndim - used)
            d += x.ndim - used
        elif kind == "none":
            basic.append(None)
            post.append(None)
        elif kind == "int":
            n = x.shape[d]
            if not -n <= it < n:
                raise DimError(
                    f"getitem: index {it} is out of range for dim {d} of size {n} "
                    f"(shape {tuple(x.shape)})"
                )
            basic.append(it)
            d += 1
        elif kind == "slice":
            basic.append(it)
            post.append(None)
            d += 1
        elif it.dtype.kind != "b":
            basic.append(slice(None))
            post.append(("take" if it.ndim == 0 else "arr", it))
            d += 1
        elif it.ndim == 0:  # x[True] adds a dim of size 1, x[False] one of size 0
            basic.append(None)
            post.append(("arr", xp.nonzero(it.reshape(1))[0]))
        else:
            k = it.ndim
            if tuple(it.shape) != tuple(x.shape[d : d + k]):
                raise DimError(
                    f"getitem: the mask of shape {tuple(it.shape)} does not match dims "
                    f"{d}..{d + k - 1} of the tensor of shape {tuple(x.shape)}"
                )
            basic += [slice(None)] * k
            post += [("arr", a) for a in xp.nonzero(it)]
            d += k
    return tuple(basic), post


class Slice(Function):
    """Basic indexing (ints, slices, None): a view; backward writes g into zeros."""

    keeps_nothing = True  # a second backward works without retain_graph

    complex_ok = True  # moves or picks values: right for complex ones too
    view = True

    def forward(self, x, idx):
        if Ellipsis not in idx:  # NOTE: x[0, 0, ...] is a 0-d view where x[0, 0] a copy
            idx += (Ellipsis,)
        self.shape, self.idx = x.shape, idx
        return x[idx]

    def backward(self, g):
        gx = backend.array_module(g).zeros(self.shape, g.dtype)
        gx[self.idx] = g
        return gx

    def backward_graph(self, g):
        return AddAt.apply(g, self.idx, self.shape)


class Index(Function):
    """Integer-array indexing; backward scatter-adds, so repeated indices accumulate."""

    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, idx):
        self.shape, self.idx = x.shape, idx
        return x[idx]

    def backward(self, g):
        gx = backend.array_module(g).zeros(self.shape, g.dtype)
        backend.index_add(gx, self.idx, g)
        return gx

    def backward_graph(self, g):
        return AddAt.apply(g, self.idx, self.shape)


class AddAt(Function):
    """Zeros of ``shape`` with ``g`` added at ``idx`` (repeats accumulate): the gradient of
    indexing, as an op of its own so that it can be differentiated again."""

    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, g, idx, shape):
        self.idx = idx
        out = backend.array_module(g).zeros(shape, g.dtype)
        backend.index_add(out, idx, g)
        return out

    def backward(self, gg):
        return gg[self.idx]

    def backward_graph(self, gg):
        return Index.apply(gg, self.idx)


_BASIC = {int, slice, type(None), type(Ellipsis)}


def getitem(x: Tensor, idx) -> Tensor:
    """``x[idx]`` with PyTorch's rules: ints, slices, None, ..., integer and bool tensors.

    Args:
        x: the tensor to index.
        idx: an index or a tuple of them; lists and NumPy arrays act as integer tensors.

    Example: ``x[1:, None, mg.tensor([0, 0, 2])]``
    """
    if type(idx) is list:
        idx = _list_index(idx)
    items = idx if type(idx) is tuple else (idx,)
    if all(type(i) in _BASIC for i in items) and not any(
        type(i) is slice and i.step is not None and i.step <= 0 for i in items
    ):
        try:  # NOTE: fast path for ints, slices, None and ...; _parse explains any error
            return Slice.apply(x, items)
        except IndexError:
            pass
    return _getitem(x, idx)


@backend.on_tensor_device  # NOTE: index arrays go to the current GPU: make it x's
def _getitem(x: Tensor, idx) -> Tensor:
    if x._device is backend.META:
        for i in idx if type(idx) is tuple else (idx,):
            if isinstance(i, Tensor) and i._data.dtype == bool and i.ndim:
                _meta.refuse_data_dependent(x, "indexing with a boolean mask")
    basic, post = _parse(x, idx)
    if any(not (isinstance(b, slice) and b == slice(None)) for b in basic) or not any(post):
        x = Slice.apply(x, basic)  # NOTE: also for x[:] and x[...]: a new view, as in PyTorch
    for pos in reversed(range(len(post))):  # 0-d integer tensors select, as ints do
        if post[pos] is not None and post[pos][0] == "take":
            x = Index.apply(x, (slice(None),) * pos + (post.pop(pos)[1],))
    while post and post[-1] is None:
        post.pop()
    if post:
        x = Index.apply(x, tuple(slice(None) if e is None else e[1] for e in post))
    return x


def setitem(x: Tensor, idx, value) -> None:
    """``x[idx] = value`` in place; in a graph, as PyTorch's ``index_put_``: the gradient
    of ``x`` skips the written region, and ``value`` gets the gradient of that region.

    Args:
        x: the tensor to write into.
        idx: any index ``getitem`` takes.
        value: a Tensor, array or number broadcastable to ``x[idx]``.

    Example: ``out[:, t] = h``
    """
    if type(idx) is list:
        idx = _list_index(idx)
    return _setitem(x, idx, value)


def _list_index(idx: list):
    """A list index as PyTorch reads it: a short list holding a sequence, tensor, slice,
    None or ... is a tuple of indices (``x[[[0, 1], [2, 2]]]`` is ``x[[0, 1], [2, 2]]``);
    any other list is one integer (or bool) array."""
    if len(idx) < 32 and any(
        i is None or i is Ellipsis or isinstance(i, (list, tuple, slice, Tensor))
        or backend.is_array(i)
        for i in idx
    ):  # fmt: skip
        import warnings

        warnings.warn(
            "Using a non-tuple sequence for multidimensional indexing is deprecated (as in "
            "PyTorch); use x[tuple(seq)] instead of x[seq]",
            UserWarning,
            stacklevel=4,
        )
        return tuple(idx)
    return idx


def _assign(a, basic, post, value) -> None:
    if not any(e is not None for e in post):
        a[basic] = value
    else:
        view = a[basic]
        view[tuple(slice(None) if e is None else e for e in post)] = value


def _read(a, basic, post):
    v = a[basic]
    if any(e is not None for e in post):
        v = v[tuple(slice(None) if e is None else e for e in post)]
    return v


class IndexPut(Function):
    """``x[idx] = value`` in place; the output is ``x``'s own memory (see autograd._inplace)."""

    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, value, basic, post, idx):
        self.basic, self.post, self.idx = basic, post, idx
        _assign(x, basic, post, value)
        return x

    def backward(self, g):
        nx, nv = self.needs_input_grad[:2]
        gx = gv = None
        if nx:
            gx = g.copy()
            _assign(gx, self.basic, self.post, 0)
        if nv:
            gv = _read(g, self.basic, self.post)
        return gx, gv

    def backward_graph(self, g):
        nx, nv = self.needs_input_grad[:2]
        gx = gv = None
        if nx:
            gx = g.clone()
            gx[self.idx] = 0
        if nv:
            gv = g[self.idx]
        return gx, gv


@backend.on_tensor_device
def _setitem(x: Tensor, idx, value) -> None:
    from ..autograd import _inplace

    xp = backend.array_module(x._data)
    vt = value if isinstance(value, Tensor) else None
    if vt is not None and vt._device != x._device and vt._device.type == "cpu" and not vt.ndim:
        value = vt = vt.to(x._device)  # NOTE: a 0-d CPU tensor goes along, as in PyTorch
    if vt is not None and vt._device != x._device:
        raise DeviceError(
            f"setitem: the value is on {vt._device} but the tensor is on {x._device}; "
            f"move it with value.to('{x._device}')"
        )
    rec = is_grad_enabled() and (
        x.requires_grad
        or (x._base is not None and x._base.requires_grad)
        or (vt is not None and vt.requires_grad)
    )
    if rec:
        _inplace.check_target(x, "setitem")
    _check_writable(x, "setitem")
    if isinstance(value, complex) and value.imag and x._data.dtype.kind != "c":
        # NOTE: PyTorch refuses to drop the imaginary part of a number (NumPy would drop it)
        raise DTypeError(
            f"setitem: a complex value can't be written into a {x.dtype} tensor; "
            "write value.real, or convert the tensor first: x = x.to(mg.complex64)"
        )
    if vt is None and not isinstance(value, (int, float, bool)):
        value = xp.asarray(value)
    basic, post = _parse(x, idx)
    post = [None if e is None else e[1] for e in post]
    # NOTE: a 0-d index tensor next to other array indices follows NumPy's placement rule
    # here, which PyTorch only differs from when array indices are not adjacent.
    try:
        if not rec:
            v = vt._data if vt is not None else value
            if x._data.dtype.itemsize == 1 and x._data.dtype.kind in "fV":
                from .._float8 import value_of  # NOTE: float8: PyTorch's rounding

                v = value_of(v, x._data.dtype)
            _assign(x._data, basic, post, v)
            _inplace.bump(x, "setitem")
            return
        if vt is not None and vt.dtype is not x.dtype:
            from .elementwise import cast

            vt = cast(vt, x.dtype)
        r = IndexPut.apply(x, vt if vt is not None else value, basic, post, idx)
    except ValueError as e:
        raise ShapeError(f"setitem: the value does not fit x[idx]: {e}") from e
    _inplace.rebase(x, r, "setitem")


# ---------------------------------------------------------------------------- gather & co


def _mesh(xp, index, dim):
    """Advanced index picking ``x[i0, .., index[i], .., in]`` for every position i."""
    nd = index.ndim
    return tuple(
        index
        if d == dim
        else xp.arange(index.shape[d]).reshape(tuple(-1 if k == d else 1 for k in range(nd)))
        for d in range(nd)
    )


def _check_index(x: Tensor, index, dim: int, op: str, src: Tensor | None = None) -> None:
    if index.dtype.kind not in "iu":
        raise DTypeError(f"{op}: index must be an integer tensor, got dtype {index.dtype}")
    if index.ndim != x.ndim:
        raise ShapeError(
            f"{op}: index must have as many dims as the input, got index shape "
            f"{tuple(index.shape)} for input shape {tuple(x.shape)}"
        )
    for d in range(index.ndim):
        if (d != dim and index.shape[d] > x.shape[d]) or (
            src is not None and index.shape[d] > src.shape[d]
        ):
            raise ShapeError(
                f"{op}: index shape {tuple(index.shape)} must not exceed the input shape "
                f"{tuple(x.shape)} outside dim {dim}"
                + ("" if src is None else f", nor the src shape {tuple(src.shape)}")
            )
    _check_bounds(x, index, dim, op)


def _check_bounds(x: Tensor, index, dim: int, op: str) -> None:
    """Refuse an index outside [0, size of ``dim``), as PyTorch's CPU kernels of gather,
    scatter, index_select, index_add and index_copy do (NumPy would take a negative one
    from the end): a RuntimeError, also an IndexError.

    NOTE: on the CPU only, as PyTorch: its CUDA kernels check on the device, without a host
    sync; manygrad's cuda and fakegpu devices skip the check (no read back)."""
    if x._device.type != "cpu" or not index.size:
        return
    n = x.shape[dim] if x.ndim else 1
    lo, hi = index.min(), index.max()
    if lo < 0 or hi >= n:
        raise DimError(
            f"{op}: index {int(lo if lo < 0 else hi)} is out of bounds for dimension {dim} "
            f"with size {n}; indices must lie in [0, {n})"
        )


class Gather(Function):
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, dim, index, sparse_grad=False):
        self.shape, self.sparse, self.dim, self.index = x.shape, sparse_grad, dim, index
        self._mesh = None
        if _full_index(x, index, dim):
            out = _sortscan.take(x, index, dim)  # NOTE: one C pass, no index arrays
            if out is not None:
                return out
        return x[self.mesh]

    @property
    def mesh(self):
        if self._mesh is None:
            self._mesh = _mesh(backend.array_module(self.index), self.index, self.dim)
        return self._mesh

    def backward(self, g):
        if self.sparse:  # NOTE: a SparseCooTensor; the engine hands it to the leaf's .grad
            return _coo_grad(g, self.mesh, self.shape)
        gx = backend.array_module(g).zeros(self.shape, g.dtype)
        # NOTE: the C scatter adds in add.at's order (the same bits)
        if not (_full_index(gx, self.index, self.dim)
                and _sortscan.scatter(gx, self.index, g, self.dim, "sum")):  # fmt: skip
            backend.index_add(gx, self.mesh, g)
        return gx

    def backward_graph(self, g):
        return AddAt.apply(g, self.mesh, self.shape)


def _full_index(x, index, dim: int) -> bool:
    """Whether a CPU gather's index has the input's shape outside ``dim`` (what the C take
    and scatter serve)."""
    nd = backend.np.ndarray
    return (
        x.__class__ is nd
        and index.__class__ is nd
        and 0 < x.ndim == index.ndim
        and index.size > 0
        and all(a == b for k, (a, b) in enumerate(zip(x.shape, index.shape)) if k != dim)
    )


def _coo_grad(g, mesh, shape):
    """The gradient of ``x[mesh]`` as an uncoalesced sparse tensor: one entry per picked
    element (repeats add up), as PyTorch's ``gather(..., sparse_grad=True)`` gives."""
    from ..sparse import SparseCooTensor

    xp = backend.array_module(g)
    dev = backend.device_of(g)
    with backend.device_scope(dev):  # NOTE: also run outside the engine's GPU scope
        idx = xp.stack([xp.broadcast_to(m, g.shape).reshape(-1) for m in mesh])
        idx, vals = idx.astype("int64"), g.reshape(-1).copy()
    return SparseCooTensor(Tensor._wrap(idx, dev), Tensor._wrap(vals, dev), tuple(shape))


@backend.on_tensor_device
def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """``out[i][j] = x[index[i][j]][j]`` for ``dim=0`` (and so on for other dims).

    Args:
        input: the source tensor.
        dim: the dim to gather along.
        index: integer tensor with as many dims as ``input``.
        sparse_grad: give ``input`` a sparse COO gradient (one entry per gathered element).

    Example: ``mg.gather(scores, 1, labels.unsqueeze(1))``
    """
    idx = _index_array(input, index, "gather")
    d = _dim(dim, input.ndim, "gather")
    _check_index(input, idx, d, "gather")
    return Gather.apply(input, d, idx, sparse_grad)


class ScatterAdd(Function):
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, dim, index, src):
        xp = backend.array_module(x)
        self.mesh, self.src_shape = _mesh(xp, index, dim), src.shape
        self.part = tuple(slice(0, n) for n in index.shape)
        out = x.copy()
        backend.index_add(out, self.mesh, src[self.part])
        return out

    def backward(self, g):
        nx, _, _, ns = self.needs_input_grad
        gs = None
        if ns:
            gs = backend.array_module(g).zeros(self.src_shape, g.dtype)
            gs[self.part] = g[self.mesh]
        return (g if nx else None), None, None, gs

    def backward_graph(self, g):
        nx, _, _, ns = self.needs_input_grad
        gs = None
        if ns:
            gs = Index.apply(g, self.mesh)
            if tuple(gs.shape) != tuple(self.src_shape):
                gs = AddAt.apply(gs, self.part, self.src_shape)
        return (g if nx else None), None, None, gs


@backend.on_tensor_device
def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (repeats accumulate).

    Args:
        input: the tensor to add into (not modified).
        dim: the dim along which to index.
        index: integer tensor; ``out[index[i][j]][j] += src[i][j]`` for ``dim=0``.
        src: values to add, at least as large as ``index``; same dtype as ``input``.

    Example: ``mg.zeros(3).scatter_add(0, mg.tensor([0, 0, 2]), mg.ones(3))``
    """
    idx = _index_array(input, index, "scatter_add")
    if input.ndim == 0 or src.ndim == 0:
        raise ShapeError("scatter_add: 0-d tensors are not supported; unsqueeze them first")
    d = _dim(dim, input.ndim, "scatter_add")
    if src.dtype is not input.dtype:
        raise DTypeError(
            f"scatter_add: src has dtype {src.dtype} but the input has {input.dtype}; cast one, "
            "e.g. src.to(x.dtype)"
        )
    if src.ndim != input.ndim:
        raise ShapeError(
            f"scatter_add: src must have as many dims as the input, got src shape "
            f"{tuple(src.shape)} for input shape {tuple(input.shape)}"
        )
    _check_index(input, idx, d, "scatter_add", src)
    return ScatterAdd.apply(input, d, idx, src)


class IndexSelect(Function):
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, dim, index):
        self.shape, self.idx = x.shape, (slice(None),) * dim + (index,)
        return x[self.idx]

    def backward(self, g):
        gx = backend.array_module(g).zeros(self.shape, g.dtype)
        backend.index_add(gx, self.idx, g)
        return gx

    def backward_graph(self, g):
        return AddAt.apply(g, self.idx, self.shape)


@backend.on_tensor_device
def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries of ``input`` at positions ``index`` (1-d integer tensor) along ``dim``.

    Args:
        input: the source tensor (at least 1-d).
        dim: the dim to select along.
        index: 1-d (or 0-d) integer tensor; repeats are allowed.

    Example: ``mg.index_select(x, 0, mg.tensor([2, 0]))``
    """
    idx = _index_array(input, index, "index_select")
    if idx.dtype.kind not in "iu" or idx.ndim > 1:
        raise DimError(  # NOTE: PyTorch's IndexError (for a 2-d index), a RuntimeError too
            f"index_select: index must be a 1-d integer tensor, got shape "
            f"{tuple(idx.shape)} and dtype {idx.dtype}"
        )
    d = _dim(dim, input.ndim, "index_select")
    _check_bounds(input, idx, d, "index_select")
    if input.ndim == 0:
        if idx.size != 1:
            raise ShapeError(
                f"index_select: a 0-d input takes an index of one element, got shape "
                f"{tuple(idx.shape)}"
            )
        return IndexSelect.apply(input.reshape(1), 0, idx.reshape(1)).reshape(())
    return IndexSelect.apply(input, d, idx.reshape(-1))


from ._common import public  # noqa: E402

__all__ = public(globals())
