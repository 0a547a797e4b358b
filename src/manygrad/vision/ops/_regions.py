"""The sampling plans of the region ops (roi_align, roi_pool and their position-sensitive
kinds) on raw arrays, and the weighted gather / scatter that run them.

A plan lists, for each output cell r = (k, ph, pw), S taps into the feature map laid out
channels-last as rows of C values (row = n * H * W + y * W + x), with one weight per tap:
the output row is ``sum_s weight[r, s] * rows[tap[r, s]]``. Bilinear sampling is
separable, so the taps are built from per-(k, ph) rows and per-(k, pw) columns (merged
per distinct pixel where that costs no GPU sync) and no Python loop runs per box or per
sample; the gather runs in chunks of taps so that its temporary stays within
``_GATHER_BUDGET`` elements, and roi_align plans at most ``_PLAN_BUDGET`` taps of boxes
at a time. On the CPU, with SciPy at hand,
the plan becomes a sparse matrix instead (one streaming product, no temporary: 512 boxes
of 7x7 bins on 256 channels, 40 ms against 470 ms for the gathers).
"""

from __future__ import annotations

import numpy as np  # host-ok: only to recognise host arrays (the sparse-matrix path)

from manygrad import _native, backend

_GATHER_BUDGET = 1 << 24
_PLAN_BUDGET = 1 << 24  # taps of the boxes planned at a time (large outputs go in chunks)


def channels_last_rows(x):
    """``x`` (N, C, H, W) as (N * H * W, C) rows."""
    n, c, h, w = x.shape
    xp = backend.array_module(x)
    return xp.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(n * h * w, c)


def rows_to_nchw(rows, k: int, ph: int, pw: int):
    """Output rows (K * PH * PW, C) as (K, C, PH, PW)."""
    xp = backend.array_module(rows)
    return xp.ascontiguousarray(rows.reshape(k, ph, pw, rows.shape[1]).transpose(0, 3, 1, 2))


def _chunks(r: int, s: int, c: int):
    step = max(1, _GATHER_BUDGET // max(1, r * c))
    return [(s0, min(s, s0 + step)) for s0 in range(0, s, step)]


def sparse_plan(tap, weight, n_rows: int):
    """The plan as a SciPy CSR matrix (R, V) for host arrays, else None."""
    if type(tap) is not np.ndarray:
        return None
    try:
        from scipy import sparse
    except ImportError:  # NOTE: SciPy is optional: the gathers below do the same work
        return None
    r, s = tap.shape
    indptr = np.arange(0, r * s + 1, s)
    return sparse.csr_matrix((weight.ravel(), tap.ravel(), indptr), shape=(r, n_rows))


def gather_weighted(rows, tap, weight, plan=None):
    """``out[r] = sum_s weight[r, s] * rows[tap[r, s]]``: (R, C) from rows (V, C)."""
    if plan is not None:
        return np.asarray(plan @ rows, dtype=rows.dtype)
    xp = backend.array_module(rows)
    r, s = tap.shape
    c = rows.shape[1]
    out = xp.zeros((r, c), rows.dtype)
    for s0, s1 in _chunks(r, s, c):
        picked = xp.take(rows, tap[:, s0:s1], axis=0)  # (R, s, C)
        out += xp.einsum("rs,rsc->rc", weight[:, s0:s1], picked)
    return out


def scatter_weighted(grad, tap, weight, n_rows: int, plan=None):
    """The transpose of ``gather_weighted``: (V, C) rows receiving ``weight * grad``."""
    if plan is not None:
        return np.asarray(plan.T @ grad, dtype=grad.dtype)
    xp = backend.array_module(grad)
    r, s = tap.shape
    c = grad.shape[1]
    acc = xp.zeros((n_rows, c), grad.dtype)
    for s0, s1 in _chunks(r, s, c):
        vals = (weight[:, s0:s1, None] * grad[:, None, :]).reshape(-1, c)
        idx = xp.ascontiguousarray(tap[:, s0:s1]).reshape(-1)
        # NOTE: float32 on the CPU: the rows added in one pass in C (embedding's kernel)
        summed = _native.embedding_backward(vals, idx, n_rows)
        if summed is not None:
            acc += summed
        else:
            backend.index_add(acc, idx, vals)
    return acc


def _bilinear_axis(xp, start, bin_size, grid, n_bins: int, n_grid: int, size: int, dtype):
    """Taps and weights of one axis: (K, P, G, 2) indices and weights (low, high) of the
    G sample points of each of the P bins, as torchvision's roi_align kernel places them;
    samples past ``grid`` (adaptive sampling) and outside [-1, size] weigh 0."""
    p = xp.arange(n_bins, dtype=dtype)[None, :, None]
    g = xp.arange(n_grid, dtype=dtype)[None, None, :]
    k = (slice(None), None, None)
    # NOTE: the kernel's order of operations: ((g + .5) * bin) / grid, in the input's dtype
    pos = start[k] + p * bin_size[k] + (g + dtype.type(0.5)) * bin_size[k] / grid[k]
    inside = (pos >= -1.0) & (pos <= size) & (g < grid[k])
    pos = xp.maximum(pos, 0)
    low = pos.astype(xp.int64)
    top = low >= size - 1
    low = xp.where(top, size - 1, low)
    high = xp.where(top, size - 1, low + 1)
    frac = xp.where(top, 0, pos - low).astype(dtype)
    taps = xp.stack([low, high], axis=-1)
    weights = xp.stack([1 - frac, frac], axis=-1) * inside[..., None]
    return taps, weights.astype(dtype)


def _compact_axis(xp, taps, weights, size: int, dtype):
    """One axis's (K, P, G, 2) taps and weights as (K, P, T): the weights summed per
    distinct pixel of each bin's window (T = the widest window, a host sync). Neighbouring
    samples share pixels, so T is about G + 1 against the 2G taps."""
    k, p = taps.shape[:2]
    live = weights != 0
    lo = xp.where(live, taps, size).min(axis=(2, 3))
    hi = xp.where(live, taps, -1).max(axis=(2, 3))
    lo = xp.where(hi < 0, 0, lo)  # NOTE: a bin without samples reads nothing
    t = xp.arange(max(1, int((hi - lo).max()) + 1))
    hit = (taps - lo[:, :, None, None])[..., None] == t  # (K, P, G, 2, T)
    summed = (weights[..., None] * hit).sum(axis=(2, 3))
    return xp.minimum(lo[..., None] + t, size - 1), summed.astype(dtype)


def align_grid_bound(rois, spatial_scale, ph, pw, sampling_ratio, aligned, dtype) -> int:
    """The most sample points any bin of ``rois`` takes (a host sync when adaptive)."""
    if sampling_ratio > 0:
        return sampling_ratio * sampling_ratio
    if rois.shape[0] == 0:
        return 1
    xp = backend.array_module(rois)
    rois = rois.astype(dtype)
    scale = dtype.type(spatial_scale)
    rw = (rois[:, 3] - rois[:, 1]) * scale
    rh = (rois[:, 4] - rois[:, 2]) * scale
    if not aligned:
        rw, rh = xp.maximum(rw, 1), xp.maximum(rh, 1)
    # NOTE: one more than the kernel's ceil at most (float rounding of the differences)
    return int(xp.ceil(rh.max() / ph) + 1) * int(xp.ceil(rw.max() / pw) + 1)


def box_chunks(k: int, per_box: int) -> list[tuple[int, int]]:
    """Ranges of boxes whose plans hold at most ``_PLAN_BUDGET`` taps together."""
    step = max(1, _PLAN_BUDGET // max(1, per_box))
    return [(k0, min(k, k0 + step)) for k0 in range(0, k, step)] or [(0, 0)]


def align_plan(rois, size, spatial_scale, ph, pw, sampling_ratio, aligned, dtype):
    """The taps (R, S) and weights (R, S) of roi_align for ``rois`` (K, 5) on a feature
    map of ``size`` = (N, H, W); R = K * PH * PW."""
    xp = backend.array_module(rois)
    _, h, w = size
    k = rois.shape[0]
    rois = rois.astype(dtype)
    off = dtype.type(0.5 if aligned else 0.0)
    scale = dtype.type(spatial_scale)
    batch = rois[:, 0].astype(xp.int64)
    x0, y0 = rois[:, 1] * scale - off, rois[:, 2] * scale - off
    rw, rh = rois[:, 3] * scale - off - x0, rois[:, 4] * scale - off - y0
    if not aligned:  # NOTE: the legacy kernel makes malformed boxes 1x1
        rw, rh = xp.maximum(rw, 1), xp.maximum(rh, 1)
    bin_h, bin_w = rh / dtype.type(ph), rw / dtype.type(pw)
    if sampling_ratio > 0:
        gh = gw = xp.full((k,), sampling_ratio, dtype)
        ny = nx = sampling_ratio
    else:
        gh, gw = xp.ceil(rh / dtype.type(ph)), xp.ceil(rw / dtype.type(pw))
        # NOTE: the largest adaptive grid sets the plan's width: a host sync, as in any op
        # whose shapes depend on the data
        ny = max(1, int(gh.max())) if k else 1
        nx = max(1, int(gw.max())) if k else 1
    count = xp.maximum(gh * gw, 1).astype(dtype)
    ty, wy = _bilinear_axis(xp, y0, bin_h, gh, ph, ny, h, dtype)  # (K, PH, GY, 2)
    tx, wx = _bilinear_axis(xp, x0, bin_w, gw, pw, nx, w, dtype)  # (K, PW, GX, 2)
    if k and (sampling_ratio <= 0 or type(rois) is np.ndarray):
        # NOTE: fewer taps per bin; it costs a host sync, made already when adaptive and
        # free for host arrays (a fixed ratio on a GPU keeps its plan sync-free)
        ty, wy = _compact_axis(xp, ty, wy, h, dtype)
        tx, wx = _compact_axis(xp, tx, wx, w, dtype)
    else:
        ty, wy = ty.reshape(k, ph, 2 * ny), wy.reshape(k, ph, 2 * ny)
        tx, wx = tx.reshape(k, pw, 2 * nx), wx.reshape(k, pw, 2 * nx)
    base = (batch * (h * w))[:, None, None, None, None]
    tap = base + ty[:, :, None, :, None] * w + tx[:, None, :, None, :]  # (K, PH, PW, TY, TX)
    weight = wy[:, :, None, :, None] * wx[:, None, :, None, :] / count[:, None, None, None, None]
    s = ty.shape[2] * tx.shape[2]
    return tap.reshape(k * ph * pw, s), weight.reshape(k * ph * pw, s)


def _round_half_away(xp, v):
    """C's ``round``: halves away from zero (NumPy's rounds them to even)."""
    v = v.astype(xp.float64)
    return (xp.sign(v) * xp.floor(xp.abs(v) + 0.5)).astype(xp.int64)


def pool_plan(rois, size, spatial_scale, ph, pw, dtype, plus_one=True, clip=0):
    """The taps (R, S) and validity (R, S) of the pooling windows of ``rois`` (K, 5), in
    row-major window order (roi_pool's kernel keeps the first maximum). Box corners are
    rounded to pixels; a box spans ``end - start + 1`` pixels with ``plus_one`` (roi_pool)
    or ``end - start`` (ps_roi_pool), at least 1; windows are clipped to
    [0, size - ``clip``] (ps_roi_pool's kernel clips to size - 1)."""
    xp = backend.array_module(rois)
    _, h, w = size
    k = rois.shape[0]
    rois = rois.astype(dtype)
    scale = dtype.type(spatial_scale)
    batch = rois[:, 0].astype(xp.int64)
    x0, y0 = _round_half_away(xp, rois[:, 1] * scale), _round_half_away(xp, rois[:, 2] * scale)
    x1, y1 = _round_half_away(xp, rois[:, 3] * scale), _round_half_away(xp, rois[:, 4] * scale)
    rh = xp.maximum(y1 - y0 + int(plus_one), 1).astype(dtype)
    rw = xp.maximum(x1 - x0 + int(plus_one), 1).astype(dtype)

    def windows(start, extent, n_bins, limit):
        b = xp.arange(n_bins, dtype=dtype)[None, :]
        bin_size = (extent / dtype.type(n_bins))[:, None]
        lo = xp.floor(b * bin_size).astype(xp.int64) + start[:, None]
        hi = xp.ceil((b + 1) * bin_size).astype(xp.int64) + start[:, None]
        return xp.clip(lo, 0, limit), xp.clip(hi, 0, limit)  # (K, P)

    hs, he = windows(y0, rh, ph, h - clip)
    ws, we = windows(x0, rw, pw, w - clip)
    # NOTE: the widest window sets the plan's width (a host sync: a data-dependent shape)
    ny = max(1, int((he - hs).max())) if k else 1
    nx = max(1, int((we - ws).max())) if k else 1
    yy = hs[:, :, None] + xp.arange(ny)[None, None, :]  # (K, PH, NY)
    xx = ws[:, :, None] + xp.arange(nx)[None, None, :]  # (K, PW, NX)
    vy, vx = yy < he[:, :, None], xx < we[:, :, None]
    yy, xx = xp.minimum(yy, h - 1), xp.minimum(xx, w - 1)
    base = (batch * (h * w))[:, None, None, None, None]
    tap = base + yy[:, :, None, :, None] * w + xx[:, None, :, None, :]
    valid = vy[:, :, None, :, None] & vx[:, None, :, None, :]
    return tap.reshape(k * ph * pw, ny * nx), valid.reshape(k * ph * pw, ny * nx)


def position_sensitive(x, tap, ph: int, pw: int):
    """Rows and taps of the position-sensitive ops: output bin q = (ph, pw) of channel c
    reads input channel ``(c * PH + ph) * PW + pw``. ``x`` (N, C_out * PH * PW, H, W)
    becomes rows (N * H * W * Q, C_out) and each tap of bin q the row ``tap * Q + q``."""
    xp = backend.array_module(x)
    n, c, h, w = x.shape
    q = ph * pw
    rows = xp.ascontiguousarray(x.reshape(n, c // q, q, h, w).transpose(0, 3, 4, 2, 1))
    k = tap.shape[0] // q
    bins = xp.tile(xp.arange(q, dtype=tap.dtype), k)[:, None]
    return rows.reshape(n * h * w * q, c // q), tap * q + bins


def position_sensitive_grad(acc, shape, ph: int, pw: int):
    """``position_sensitive``'s rows (N * H * W * Q, C_out) back to (N, C, H, W)."""
    n, c, h, w = shape
    q = ph * pw
    return acc.reshape(n, h, w, q, c // q).transpose(0, 4, 3, 1, 2).reshape(n, c, h, w)


def gather_max(rows, tap, valid):
    """Windowed max: (R, C) values (0 for an empty window) and, per value, which tap of
    its window holds the maximum (-1: empty). Ties: the first tap wins, as in
    torchvision's kernel. ``max_rows`` turns the taps into rows of ``rows``."""
    xp = backend.array_module(rows)
    r, s = tap.shape
    v_rows, c = rows.shape
    # NOTE: taps outside their window read an extra row of -inf, which never wins
    padded = xp.concatenate([rows, xp.full((1, c), -xp.inf, rows.dtype)])
    tap = xp.where(valid, tap, v_rows)
    best = xp.full((r, c), -xp.inf, rows.dtype)
    which = xp.full((r, c), -1, xp.int32)
    for j in range(s):  # NOTE: one tap of every window at a time: elementwise, no reductions
        v = xp.take(padded, tap[:, j], axis=0)
        xp.copyto(which, j, where=v > best)
        xp.maximum(best, v, out=best)
    return xp.where(which >= 0, best, 0).astype(rows.dtype), which


def max_rows(tap, which):
    """The row of ``rows`` behind each of ``gather_max``'s maxima (-1 where empty)."""
    xp = backend.array_module(tap)
    return xp.where(which >= 0, xp.take_along_axis(tap, xp.maximum(which, 0), axis=1), -1)
