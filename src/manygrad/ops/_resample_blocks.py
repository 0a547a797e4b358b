"""``interpolate``'s linear and cubic modes on CPUs as one graph node (``sampling.py`` takes
these for CPU float arrays; GPU arrays, and traces for ONNX, take its gathers instead).

Each spatial dim is resampled in turn, innermost first as in PyTorch's kernels (width, then
height, then depth), as a product with that dim's (n_out, n_in) interpolation matrix,
which holds 2 (linear) or 4 (cubic) weights a row: BLAS over the whole batch, in blocks of
rows whose columns span only the band of the matrix that holds weights. The gradient is
the same with the transposed matrices, and its gradient the forward again. The nodes are
named as PyTorch's (UpsampleBilinear2DBackward0, ...).

NOTE: against selecting rows and mixing them (the gathers, and the gradient's scatter-adds)
for (16, 64, 32, 32) scaled 2x, float32, one thread: forward 3.7 against 16 ms, forward and
backward 7.6 against 180 ms (PyTorch: 14 and 26 ms). The blocks span about _BAND columns
(a product's cost grows with the columns it spans; smaller ones cost more calls), and a
chunk of images goes through all dims while its intermediate results are in the cache.

Source positions and weights follow PyTorch's CPU kernels: computed in the input's float
type (float32 for 16-bit floats, whose weights are rounded to the 16-bit type, as PyTorch
keeps them); 16-bit inputs are computed in float32 and rounded once. An input or gradient
holding inf or NaN takes the taps one by one instead: a product with the matrix would
spread NaN over a whole block (0 * inf), where PyTorch's kernels read the taps only.
"""

from __future__ import annotations

import functools
import math

from .. import _native, backend
from ..autograd import Function

_A = -0.75  # NOTE: the cubic convolution constant PyTorch uses (Keys' a = -0.75)
_DENSE = 16  # NOTE: up to this many input columns, one product with the whole matrix
_BAND = 16  # NOTE: otherwise blocks of rows spanning about this many columns each
_CHUNK = 1 << 20  # NOTE: bytes of result per chunk of images


def _scale(n_in, n_out, align_corners, sf, dt):
    """PyTorch's area_pixel_compute_scale, in the compute dtype."""
    if align_corners:
        return dt.type((n_in - 1) / (n_out - 1)) if n_out > 1 else dt.type(0)
    if sf is not None and sf > 0:
        return dt.type(1.0 / sf)
    return dt.type(n_in) / dt.type(n_out)


def _cubic(t, one):
    """PyTorch's get_cubic_upsample_coefficients: the 4 weights around offset ``t`` (arrays
    with ``one`` of their dtype, or tensors with ``one`` = 1)."""

    def cc1(v):
        return ((_A + 2) * v - (_A + 3)) * v * v + 1

    def cc2(v):
        return ((_A * v - 5 * _A) * v + 8 * _A) * v - 4 * _A

    s = one - t
    return [cc2(t + one), cc1(t), cc1(s), cc2(s + one)]


class Axis:
    """One dim's resampling: its taps (index and weight arrays, one pair per tap), its
    dense matrix and the row blocks of the matrix and of its transpose."""

    def __init__(self, n_in, n_out, sf, align_corners, cubic, dtype):
        import numpy as np  # host-ok: the small weight matrices are built on the host

        store = np.dtype(dtype)  # NOTE: PyTorch keeps the weights in the input's dtype
        dt = np.dtype(np.float32) if store.itemsize == 2 else store
        scale = _scale(n_in, n_out, align_corners, sf, dt)
        dst = np.arange(n_out, dtype=dt)
        if align_corners:
            src = scale * dst
        elif dt == np.float32:  # NOTE: one rounding, as PyTorch's fused multiply-add (the
            # float64 product of float32 values, and its difference with 0.5, are exact)
            src = (np.float64(scale) * (dst + dt.type(0.5)) - 0.5).astype(dt)
        else:
            src = scale * (dst + dt.type(0.5)) - dt.type(0.5)
        if cubic:
            i = np.floor(src)
            ws = _cubic((src - i).astype(dt), dt.type(1))
            i = i.astype(np.int64)
            idx = [np.clip(i + k - 1, 0, n_in - 1) for k in range(4)]
        else:
            src = np.maximum(src, dt.type(0))
            i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
            w1 = np.clip(src - i0.astype(dt), 0, 1).astype(dt)
            idx = [i0, np.minimum(i0 + 1, n_in - 1)]
            ws = [dt.type(1) - w1, w1]
        ws = [w.astype(store).astype(dt) for w in ws]
        self.taps = list(zip(idx, ws))
        self.lerp = None  # NOTE: the C kernel's arrays (``_native.lerp_plan``), made on use
        mat = np.zeros((n_out, n_in), dt)
        rows = np.arange(n_out)
        for i, w in self.taps:
            np.add.at(mat, (rows, i), w)
        self.identity = n_in == n_out and bool((mat == np.eye(n_in, dtype=dt)).all())
        self.mat, self.mat_t = mat, np.ascontiguousarray(mat.T)
        self.blocks, self.blocks_t = _blocks(mat), _blocks(self.mat_t)
        for a in (mat, self.mat_t, *idx, *ws):
            a.flags.writeable = False


def _blocks(mat):
    """(r0, r1, c0, c1): the rows r0:r1 of ``mat`` read only its columns c0:c1 (c0 == c1:
    rows without weights)."""
    m, n = mat.shape
    if n <= _DENSE:
        return [(0, m, 0, n)]
    nz = mat != 0
    has = nz.any(axis=1)
    lo = nz.argmax(axis=1)
    hi = n - nz[:, ::-1].argmax(axis=1)
    step = max(1, round(_BAND * m / n))
    out = []
    for r0 in range(0, m, step):
        r1 = min(r0 + step, m)
        h = has[r0:r1]
        c0, c1 = (int(lo[r0:r1][h].min()), int(hi[r0:r1][h].max())) if h.any() else (0, 0)
        out.append((r0, r1, c0, c1))
    return out


@functools.lru_cache(maxsize=64)
def axis(n_in: int, n_out: int, sf, align_corners: bool, cubic: bool, dtype) -> Axis:
    """The ``Axis`` of one dim (cached: a model resamples the same sizes every step)."""
    return Axis(n_in, n_out, sf, align_corners, cubic, dtype)


def _product(xp, a, d, mat, blocks, out=None):
    """``a`` (C-contiguous) times ``mat`` (m, n) along dim ``d``, into ``out`` if given."""
    shape = a.shape
    p, n = 1, shape[d]
    for v in shape[:d]:
        p *= v
    q = a.size // max(p * n, 1)
    m = mat.shape[0]
    res = xp.empty(shape[:d] + (m,) + shape[d + 1 :], a.dtype) if out is None else out
    if q == 1:  # the last dim: rows of the batch times mat^T
        a2, o2 = a.reshape(p, n), res.reshape(p, m)
        for r0, r1, c0, c1 in blocks:
            if c0 == c1:
                o2[:, r0:r1] = 0
            else:
                xp.matmul(a2[:, c0:c1], mat[r0:r1, c0:c1].T, out=o2[:, r0:r1])
    else:  # a middle dim: mat times each (n, q) matrix of the batch
        a3, o3 = a.reshape(p, n, q), res.reshape(p, m, q)
        for r0, r1, c0, c1 in blocks:
            if c0 == c1:
                o3[:, r0:r1] = 0
            else:
                xp.matmul(mat[r0:r1, c0:c1], a3[:, c0:c1], out=o3[:, r0:r1])
    return res


def _products(xp, a, passes, out_shape):
    """``a`` through ``passes`` ((dim, matrix, blocks), dims counted in an (N * C, ...)
    view), a chunk of images at a time: a chunk's intermediate results stay in the cache."""
    p = out_shape[0] * out_shape[1]
    src = a.reshape((p,) + a.shape[2:])
    if not passes:
        return src.reshape(out_shape).copy()
    out = xp.empty((p,) + out_shape[2:], a.dtype)
    step = max(1, _CHUNK // max(out[:1].nbytes, 1))
    for i in range(0, p, step):
        b = src[i : i + step]
        for k, (d, mat, blocks) in enumerate(passes):
            b = _product(xp, b, d, mat, blocks, out[i : i + step] if k == len(passes) - 1 else None)
    return out.reshape(out_shape)


def _taps(xp, a, d, ax):
    """``a`` resampled along dim ``d`` tap by tap, as PyTorch's kernels: w0 * a[i0] + ..."""
    bshape = (1,) * d + (-1,) + (1,) * (a.ndim - d - 1)
    out = None
    for i, w in ax.taps:
        term = xp.take(a, i, axis=d) * w.reshape(bshape)
        out = term if out is None else out + term
    return out


def _taps_t(xp, g, d, ax):
    """The transpose of ``_taps``: each tap's weighted values added back at its source."""
    bshape = (1,) * d + (-1,) + (1,) * (g.ndim - d - 1)
    shape = g.shape[:d] + (ax.mat.shape[1],) + g.shape[d + 1 :]
    out = xp.zeros(shape, g.dtype)
    for i, w in ax.taps:
        backend.index_add(out, (slice(None),) * d + (i,), g * w.reshape(bshape))
    return out


def _lerp(a, ax):
    """``a`` (..., n) resampled along its last dim by the linear ``ax`` in C (PyTorch's
    fma(x0, w0, x1 w1) for each value, NaN and inf as there), or None where the kernels do
    not take ``a`` (not a float32 NumPy array, no compiler)."""
    if not _native.takes(a):
        return None
    if ax.lerp is None:
        (i0, w0), (i1, w1) = ax.taps
        ax.lerp = _native.lerp_plan(i0, i1, w0, w1, ax.mat.shape[1])
    y = _native.lerp_last(a.reshape(-1, a.shape[-1]), ax.lerp)
    return None if y is None else y.reshape(a.shape[:-1] + (y.shape[1],))


def run(xp, a, axes, transposed: bool):
    """``a`` (N, C, *spatial) resampled by ``axes`` (one ``Axis`` per spatial dim), or by
    their transposes (the gradient) with ``transposed``."""
    dt = a.dtype
    a = xp.ascontiguousarray(a, dtype=xp.float32 if dt.itemsize == 2 else dt)
    order = list(enumerate(axes, 2))
    order = order if transposed else order[::-1]  # NOTE: innermost first, as PyTorch
    out_shape = a.shape[:2] + tuple(ax.mat.shape[1 if transposed else 0] for ax in axes)
    passes = [
        (d - 1, *((ax.mat_t, ax.blocks_t) if transposed else (ax.mat, ax.blocks)))
        for d, ax in order
        if not ax.identity
    ]
    if not transposed and len(passes) == 1 == len(axes) and len(axes[0].taps) == 2:
        out = _lerp(a, axes[0])  # NOTE: 1-d linear: one C pass, as PyTorch's arithmetic
        if out is not None:
            return out if out.dtype == dt else out.astype(dt)
    # NOTE: inf or NaN in ``a`` show in the products' result too: the smaller is checked
    pre = a.size <= math.prod(out_shape)
    out = None
    with backend.quiet_float_errors():  # NOTE: inf - inf and 0 * inf, silent as PyTorch's
        if not pre or xp.isfinite(a).all():
            out = _products(xp, a, passes, out_shape)
            if not pre and not xp.isfinite(out).all():
                out = None
        if out is None:
            out = a
            for d, ax in order:
                if not ax.identity:  # NOTE: an unchanged dim keeps its inf and NaN in place
                    out = _taps_t(xp, out, d, ax) if transposed else _taps(xp, out, d, ax)
    return out if out.dtype == dt else out.astype(dt)


class _Upsample(Function):
    """The linear and cubic modes, one node: linear in the input, so its gradient is the
    transposed resampling, and that one's the resampling (``axes``: one ``Axis`` a dim)."""

    def forward(self, x, axes, transposed=False):
        self.axes, self.transposed = axes, transposed
        return run(backend.array_module(x), x, axes, transposed)

    def backward(self, g):
        return run(backend.array_module(g), g, self.axes, not self.transposed)

    def backward_graph(self, g):
        return type(self).apply(g, self.axes, not self.transposed)


class UpsampleLinear1D(_Upsample):
    pass


class UpsampleBilinear2D(_Upsample):
    pass


class UpsampleBicubic2D(_Upsample):
    pass


class UpsampleTrilinear3D(_Upsample):
    pass


NODES = {"linear": UpsampleLinear1D, "bilinear": UpsampleBilinear2D,
          "bicubic": UpsampleBicubic2D, "trilinear": UpsampleTrilinear3D}  # fmt: skip
