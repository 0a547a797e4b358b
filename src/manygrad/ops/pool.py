"""Pooling: max, average and adaptive average pooling over 1-d and 2-d inputs."""

from __future__ import annotations

from .. import _native, backend
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor
from .conv import _check_input, _same_dtype, _tuple
from .elementwise import _zero_grad_of
from .linalg_extra import ArgumentError

# ---------------------------------------------------------------------------- pooling


class _PoolGeom:
    """Windows of a 2-d pooling over (N, C, H, W): kernel, stride, padding, dilation."""

    __slots__ = ("shape", "k", "s", "p", "d", "out", "padded")

    def __init__(self, shape, k, s, p, d, ceil_mode):
        self.shape, self.k, self.s, self.p, self.d = shape, k, s, p, d
        self.out = tuple(_pool_len(n, *a, ceil_mode) for n, *a in zip(shape[2:], k, s, p, d))
        # rows/cols the windows reach, incl. the padding and the ceil_mode overhang
        reach = [(o - 1) * s_ + d_ * (k_ - 1) + 1 for o, s_, d_, k_ in zip(self.out, s, d, k)]
        self.padded = tuple(max(r, n + p_) for r, n, p_ in zip(reach, shape[2:], p))

    def pad(self, x, value):
        """x inside a buffer filled with ``value``; x itself when no padding is needed."""
        if self.padded == tuple(x.shape[2:]):
            return x
        xp = backend.array_module(x)
        buf = xp.full(tuple(x.shape[:2]) + self.padded, value, x.dtype)
        (ph, pw), (h, w) = self.p, x.shape[2:]
        buf[:, :, ph : ph + h, pw : pw + w] = x
        return buf

    def crop(self, buf):
        (ph, pw), (h, w) = self.p, self.shape[2:]
        return buf[:, :, ph : ph + h, pw : pw + w]

    def windows(self, buf):
        """Strided views of ``buf`` (N, C, Ho, Wo), one per kernel offset."""
        (kh, kw), (sh, sw), (dh, dw), (ho, wo) = self.k, self.s, self.d, self.out
        for i in range(kh):
            for j in range(kw):
                h0, w0 = i * dh, j * dw
                yield buf[:, :, h0 : h0 + sh * (ho - 1) + 1 : sh, w0 : w0 + sw * (wo - 1) + 1 : sw]


def _pool_len(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1
    o = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:  # NOTE: the last window must start inside
        o -= 1
    return o


class MaxPool(Function):
    native = False  # the forward ran the CPU kernels (indices kept for backward)

    def forward(self, x, geom, yshape):
        xp = backend.array_module(x)
        self.geom, self.xshape = geom, x.shape
        self.x = x  # NOTE: a reference (no copy), for double backward's zero-gradient tie
        fast = _native.max_pool2d(x.reshape(geom.shape), geom.out, geom.k, geom.s, geom.p, geom.d)
        if fast is not None:
            self.best, self.idx = fast  # NOTE: CPU float32: one pass, PyTorch's indices
            self.native = True
            return self.best.reshape(yshape)
        low = xp.iinfo(x.dtype).min if xp.issubdtype(x.dtype, xp.integer) else float("-inf")
        self.buf = geom.pad(x.reshape(geom.shape), low)
        best = None
        for s in geom.windows(self.buf):  # NOTE: maximum propagates NaN, as PyTorch does
            best = s.copy() if best is None else xp.maximum(best, s, out=best)
        self.best = best
        return best.reshape(yshape)

    def _firsts(self):
        """Per kernel offset, where that offset holds its window's first maximum, or in a
        window holding NaN its last NaN (PyTorch's kernels let every NaN replace the
        running maximum: the index, and the gradient, go to the last one)."""
        xp, taken = backend.array_module(self.best), None
        last = self._last_nans(xp)
        for k, s in enumerate(self.geom.windows(self.buf)):
            m = xp.greater_equal(s, self.best)  # NOTE: False throughout a NaN window
            if taken is None:
                taken = m.copy()
            else:
                xp.greater(m, taken, out=m)  # m and not taken: ties go to the first
                taken |= m
            if last is not None:
                m |= last == k
            yield m

    def _last_nans(self, xp):
        """Each window's kernel offset of its last NaN (-1 where none); None for integer
        inputs and CPU inputs without NaN."""
        if self.best.dtype.kind in "biu":
            return None
        # NOTE: the check costs one pass over the output on the CPU; on GPUs it would be a
        # host sync, so there the offsets are always found (a few more kernels, no sync)
        if backend.device_of(self.best).type == "cpu" and not xp.isnan(self.best).any():
            return None
        last = xp.full(self.best.shape, -1, xp.int32)
        for k, s in enumerate(self.geom.windows(self.buf)):
            last = xp.where(xp.isnan(s), k, last)
        return last

    def backward(self, g):
        xp = backend.array_module(g)
        geom = self.geom
        g = g.reshape(self.best.shape)
        if self.native:
            dx = _native.max_pool2d_backward(xp.ascontiguousarray(g), self.idx, geom.shape[2:])
            if dx is not None:
                return dx.reshape(self.xshape)
            g = g.astype(self.best.dtype)  # NOTE: another dtype: the general path below
            return self._scatter(xp, g, self.idx).reshape(self.xshape)
        buf = xp.zeros(tuple(geom.shape[:2]) + geom.padded, g.dtype)
        disjoint = all(s >= d * (k - 1) + 1 for s, d, k in zip(geom.s, geom.d, geom.k))
        for m, view in zip(self._firsts(), geom.windows(buf)):
            if disjoint:
                xp.multiply(g, m, out=view)
            else:
                view += g * m
        return xp.ascontiguousarray(geom.crop(buf)).reshape(self.xshape)

    def backward_graph(self, g):
        from .indexing import AddAt

        xp = backend.array_module(g._data)
        n, c, h, w = self.geom.shape
        k = self.best.shape[2] * self.best.shape[3]
        idx = self.indices().reshape(n * c, k)
        rows = xp.arange(n * c).reshape(n * c, 1)
        gx = AddAt.apply(g.reshape(n * c, k), (rows, idx), (n * c, h * w))
        # NOTE: the input enters only through the argmax: a zero gradient, as PyTorch's
        return _zero_grad_of(gx.reshape(*self.xshape), self.saved_input(0, self.x))

    def _scatter(self, xp, g, idx):
        """``g`` added at the flat plane indices ``idx`` into zeros of the input's shape."""
        n, c, h, w = self.geom.shape
        out = xp.zeros((n * c, h * w), g.dtype)
        rows = xp.arange(n * c).reshape(-1, 1)
        xp.add.at(out, (rows, idx.reshape(n * c, -1)), g.reshape(n * c, -1))
        return out

    def indices(self):
        """Flat index into each (H, W) plane of the maximum, as PyTorch's return_indices."""
        if self.native:
            return self.idx
        xp, geom = backend.array_module(self.best), self.geom
        (ho, wo), (_, kw), (sh, sw), (ph, pw), (dh, dw) = geom.out, geom.k, geom.s, geom.p, geom.d
        rows = xp.arange(ho).reshape(-1, 1) * sh - ph
        cols = xp.arange(wo) * sw - pw
        idx = xp.zeros(self.best.shape, xp.int64)
        for k, m in enumerate(self._firsts()):
            idx += m * ((rows + (k // kw) * dh) * geom.shape[3] + cols + (k % kw) * dw)
        return idx


class AvgPool(Function):
    backward_graph = Function.backward_of_linear
    native = False  # the forward ran the CPU kernels: backward takes them too

    def forward(self, x, geom, yshape, count_include_pad, divisor_override):
        xp = backend.array_module(x)
        self.args = (geom, yshape, count_include_pad, divisor_override)
        self.geom, self.xshape = geom, x.shape
        # NOTE: CPU float32: one pass in C (_native), PyTorch's windows and divisors
        fast = _native.avg_pool2d(x.reshape(geom.shape), geom.out, geom.k, geom.s, geom.p,
                                  count_include_pad, divisor_override)  # fmt: skip
        if fast is not None:
            self.native = True
            return fast.reshape(yshape)
        acc = None
        for s in geom.windows(geom.pad(x.reshape(geom.shape), 0)):
            acc = s.copy() if acc is None else xp.add(acc, s, out=acc)
        self.div = divisor_override or _pool_counts(xp, geom, count_include_pad, x.dtype)
        acc /= self.div
        return acc.reshape(yshape)

    def backward(self, g):
        xp = backend.array_module(g)
        geom, (_, _, inc, div) = self.geom, self.args
        if self.native:
            g4 = g.reshape(geom.shape[:2] + geom.out)
            dx = _native.avg_pool2d_backward(g4, geom.shape[2:], geom.k, geom.s, geom.p, inc, div)
            if dx is not None:
                return dx.reshape(self.xshape)
            self.div = div or _pool_counts(xp, geom, inc, g.dtype)  # NOTE: another dtype
        g = g.reshape(geom.shape[:2] + geom.out) / self.div
        buf = xp.zeros(tuple(geom.shape[:2]) + geom.padded, g.dtype)
        for view in geom.windows(buf):
            view += g
        return xp.ascontiguousarray(geom.crop(buf)).reshape(self.xshape)


def _pool_counts(xp, geom, count_include_pad, dtype):
    """Divisor of each output position (Ho, Wo), from shapes only (no host sync)."""
    sizes = []
    for n, o, k, s, p in zip(geom.shape[2:], geom.out, geom.k, geom.s, geom.p):
        start = xp.arange(o) * s - p
        end = xp.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = xp.maximum(start, 0), xp.minimum(end, n)
        sizes.append((end - start).astype(dtype))
    return sizes[0].reshape(-1, 1) * sizes[1]


def _adaptive_matrix(xp, n: int, o: int, dtype):
    """(o, n) averaging matrix of adaptive pooling: row i averages [i*n//o, ceil((i+1)*n/o))."""
    i = xp.arange(o)
    start, end = (i * n) // o, ((i + 1) * n + o - 1) // o
    j = xp.arange(n)
    m = (j >= start.reshape(-1, 1)) & (j < end.reshape(-1, 1))
    return m.astype(dtype) / (end - start).astype(dtype).reshape(-1, 1)


class AdaptiveAvgPool(Function):
    backward_graph = Function.backward_of_linear

    def forward(self, x, shape4, out, yshape):
        self.args = (shape4, out, yshape)
        xp = backend.array_module(x)
        (n, c, h, w), (ho, wo) = shape4, out
        self.shape4, self.out, self.xshape = shape4, out, x.shape
        if h % ho == 0 and w % wo == 0:  # equal windows: a plain mean over blocks
            return x.reshape(n, c, ho, h // ho, wo, w // wo).mean(axis=(3, 5)).reshape(yshape)
        self.ph, self.pw = (
            _adaptive_matrix(xp, h, ho, x.dtype),
            _adaptive_matrix(xp, w, wo, x.dtype),
        )
        t = backend.matmul(x.reshape(-1, w), self.pw.T).reshape(n * c, h, wo)  # (NC, H, Wo)
        t = backend.matmul(xp.ascontiguousarray(t.swapaxes(1, 2)).reshape(-1, h), self.ph.T)
        y = xp.ascontiguousarray(t.reshape(n, c, wo, ho).swapaxes(2, 3))
        return _same_dtype(y, x).reshape(yshape)

    def backward(self, g):
        xp = backend.array_module(g)
        (n, c, h, w), (ho, wo) = self.shape4, self.out
        if h % ho == 0 and w % wo == 0:
            g = g.reshape(n, c, ho, 1, wo, 1) / ((h // ho) * (w // wo))
            return xp.broadcast_to(g, (n, c, ho, h // ho, wo, w // wo)).reshape(self.xshape)
        g = xp.ascontiguousarray(g.reshape(n * c, ho, wo).swapaxes(1, 2))
        t = backend.matmul(g.reshape(-1, ho), self.ph).reshape(n * c, wo, h)
        t = backend.matmul(xp.ascontiguousarray(t.swapaxes(1, 2)).reshape(-1, wo), self.pw)
        return t.reshape(self.xshape)


def _pool_args(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode):
    batched = _check_input(op, input, nd)
    k = _tuple(kernel_size, nd, op, "kernel_size")
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _tuple(
        stride, nd, op, "stride")  # fmt: skip
    p, d = _tuple(padding, nd, op, "padding"), _tuple(dilation, nd, op, "dilation")
    if min(k + s + d) < 1 or min(p) < 0:
        raise ArgumentError(f"{op}: kernel_size, stride and dilation must be positive and "
                            f"padding non-negative, got {k}, {s}, {d}, {p}")  # fmt: skip
    if any(2 * p_ > k_ for p_, k_ in zip(p, k)):  # NOTE: PyTorch's rule, with or without dilation
        raise ArgumentError(f"{op}: padding {p} must be at most half of the kernel size {k}")
    xs = tuple(input.shape) if batched else (1,) + tuple(input.shape)
    if nd == 1:
        xs, k, s, p, d = xs[:2] + (1,) + xs[2:], (1,) + k, (1,) + s, (0,) + p, (1,) + d
    geom = _PoolGeom(xs, k, s, p, d, ceil_mode)
    if min(geom.out) < 1:
        raise ShapeError(f"{op}: kernel {k[2 - nd:]} is larger than the padded input of shape "
                         f"{tuple(input.shape)}")  # fmt: skip
    yshape = xs[:2] + geom.out[2 - nd :]
    return geom, yshape if batched else yshape[1:]


def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    geom, yshape = _pool_args(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode)
    y = MaxPool.apply(input, geom=geom, yshape=yshape)
    if not return_indices:
        return y
    node = y.grad_fn
    if node is None:  # no graph recorded: run the op again for its argmax
        node = MaxPool()
        node.forward(input._data, geom, yshape)
    return y, Tensor._wrap(node.indices().reshape(yshape), input._device)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):  # fmt: skip
    if input.__class__ is not Tensor and input.is_quantized:  # NOTE: PyTorch's quantized kernel
        from ..ao import _qops

        if nd == 1:
            return _qops.avg_pool2d(input.unsqueeze(2), (1, _one(kernel_size)),
                                    (1, _one(kernel_size if stride is None else stride)),
                                    (0, _one(padding)), ceil_mode, count_include_pad).squeeze(2)  # fmt: skip
        return _qops.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                divisor_override)  # fmt: skip
    geom, yshape = _pool_args(op, nd, input, kernel_size, stride, padding, 1, ceil_mode)
    if not input.is_floating_point():
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    return AvgPool.apply(input, geom=geom, yshape=yshape, count_include_pad=count_include_pad,
                         divisor_override=divisor_override)  # fmt: skip


@backend.on_tensor_device
def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):  # fmt: skip
    """Max over sliding windows of an (N, C, L) input; gradient flows to each argmax.

    Args: kernel_size; stride (default kernel_size); padding (implicit -inf, default 0);
    dilation (default 1); ceil_mode; return_indices (also return flat argmax indices).

    Example: ``mg.max_pool1d(mg.randn(2, 3, 10), 2)``
    """
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)  # fmt: skip


@backend.on_tensor_device
def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):  # fmt: skip
    """Max over sliding windows of an (N, C, H, W) input; gradient flows to each argmax.

    Args: kernel_size; stride (default kernel_size); padding (implicit -inf, default 0);
    dilation (default 1); ceil_mode (round the output size up); return_indices.

    Example: ``mg.max_pool2d(mg.randn(2, 3, 28, 28), 2)``
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)  # fmt: skip


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:  # fmt: skip
    """Mean over sliding windows of an (N, C, L) input.

    Args: kernel_size; stride (default kernel_size); padding (zeros, default 0); ceil_mode;
    count_include_pad (padding zeros count in the divisor, default True).

    Example: ``mg.avg_pool1d(mg.randn(2, 3, 10), 2)``
    """
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)  # fmt: skip


def avg_pool2d(
    input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
    count_include_pad: bool = True, divisor_override: int | None = None,
) -> Tensor:  # fmt: skip
    """Mean over sliding windows of an (N, C, H, W) input.

    Args: kernel_size; stride (default kernel_size); padding (zeros, default 0); ceil_mode;
    count_include_pad (default True); divisor_override (divide by this instead).

    Example: ``mg.avg_pool2d(mg.randn(2, 3, 28, 28), 2)``
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)  # fmt: skip


def _one(v) -> int:
    return v if isinstance(v, int) else tuple(v)[0]


def _adaptive(op, nd, input, output_size):
    if input.__class__ is not Tensor and input.is_quantized:  # NOTE: PyTorch's quantized kernel
        from ..ao import _qops

        return _qops.adaptive_avg_pool(input, output_size, nd)
    batched = _check_input(op, input, nd)
    size = (output_size,) * nd if isinstance(output_size, int) else tuple(output_size)
    if len(size) != nd:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {nd}, got {output_size}")
    xs = tuple(input.shape) if batched else (1,) + tuple(input.shape)
    xs4 = xs[:2] + (1,) + xs[2:] if nd == 1 else xs
    size = tuple(n if o is None else o for o, n in zip(size, xs[2:]))
    if min(size) < 1 or (min(xs[2:]) < 1 and xs[0] * xs[1] > 0):
        raise ShapeError(f"{op}: cannot pool input of shape {tuple(input.shape)} to {size}")
    out = (1,) + size if nd == 1 else size
    yshape = xs[:2] + size
    return AdaptiveAvgPool.apply(input, shape4=xs4, out=out,
                                 yshape=yshape if batched else yshape[1:])  # fmt: skip


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average pooling of (N, C, L) to a fixed length, windows chosen as in PyTorch.

    Example: ``mg.adaptive_avg_pool1d(mg.randn(2, 3, 10), 4)``
    """
    return _adaptive("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling of (N, C, H, W) to a fixed (Ho, Wo); None keeps that size.

    Args: output_size: int or (Ho, Wo).

    Example: ``mg.adaptive_avg_pool2d(mg.randn(2, 3, 7, 7), 1)``
    """
    return _adaptive("adaptive_avg_pool2d", 2, input, output_size)


from ._common import public  # noqa: E402

__all__ = public(globals())
