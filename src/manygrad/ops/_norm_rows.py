"""Layer norm over the last axis of CPU arrays, block of rows by block of rows
(``ops/norm.py``'s LayerNorm takes these for NumPy float32/float64 arrays; other arrays,
GPU ones included, take its whole-array formulas, which these follow pass for pass)."""

from __future__ import annotations

from .. import backend

# NOTE: values per block of rows: the five passes of the forward (mean, centre, variance,
# scale, affine) and the six of the backward each run over a block still in L2 (1 MiB of
# float32 on 2 MiB L2 parts) instead of streaming the whole array from memory each time
_ROWS_BLOCK = 1 << 18


def rows_path(x, w, b):
    """Whether a layer norm of ``x`` takes the block loop: a C-contiguous float32/float64
    NumPy array of 32k values and more, with weight and bias (or None) of its dtype."""
    return (
        backend.device_of(x).type == "cpu"
        and x.dtype.char in "fd"
        and x.size >= 1 << 15
        and x.flags.c_contiguous
        and all(p is None or p.dtype == x.dtype for p in (w, b))
    )


def _blocks(rows, n):
    step = max(1, _ROWS_BLOCK // n)
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


def forward(xp, x2, w, b, eps):
    """``(y, xhat, rstd)`` of the rows of ``x2`` (rows, D); w, b: (D,) or None."""
    rows, n = x2.shape
    y, xhat = xp.empty_like(x2), xp.empty_like(x2)
    rstd = xp.empty((rows, 1), x2.dtype)
    ones = xp.ones(n, x2.dtype)
    inv_n = 1.0 / max(n, 1)
    with backend.row_loops(n):
        for s in _blocks(rows, n):
            xb, hb, r = x2[s], xhat[s], rstd[s]
            mean = xp.matmul(xb, ones)[:, None]
            mean *= inv_n
            xp.subtract(xb, mean, out=hb)
            xp.einsum("ij,ij->i", hb, hb, out=r[:, 0])
            r *= inv_n
            r += eps
            xp.sqrt(r, out=r)
            xp.divide(1.0, r, out=r)
            hb *= r
            yb = y[s]
            if w is not None:
                xp.multiply(hb, w, out=yb)
            else:
                yb[...] = hb
            if b is not None:
                yb += b
    return y, xhat, rstd


def backward(xp, g2, xhat, rstd, w, need_w, need_b):
    """``(dx, dw, db)`` for the rows of ``g2`` (rows, D), given the forward's xhat and rstd;
    dw, db are None unless asked for."""
    rows, n = g2.shape
    gx = xp.empty_like(g2)
    dt = g2.dtype
    gw = xp.zeros(n, dt) if need_w else None
    gb = xp.zeros(n, dt) if need_b else None
    inv_n = 1.0 / max(n, 1)
    ones_n, ones_r = xp.ones(n, dt), xp.ones(min(rows, max(1, _ROWS_BLOCK // n)), dt)
    with backend.row_loops(n):
        for s in _blocks(rows, n):
            gb_, hb, ob = g2[s], xhat[s], gx[s]
            gh = gb_ * hb
            # NOTE: column and row sums as GEMVs with ones, several times faster than sum()
            k = ones_r[: gb_.shape[0]]
            if need_w:
                gw += xp.matmul(k, gh)
            if need_b:
                gb += xp.matmul(k, gb_)
            if w is not None:
                xp.multiply(gb_, w, out=ob)
                m2 = xp.matmul(gh, w)[:, None]
            else:
                ob[...] = gb_
                m2 = xp.matmul(gh, ones_n)[:, None]
            m1 = xp.matmul(ob, ones_n)[:, None]  # NOTE: the sum of g*w, already in ob
            m1 *= inv_n
            m2 *= inv_n
            ob -= m1
            xp.multiply(hb, m2, out=gh)
            ob -= gh
            ob *= rstd[s]
    return gx, gw, gb
