"""Group norm of an (N, C, ...) array, in blocks of groups that stay in cache on the CPU
(``ops/norm.py``'s GroupNorm calls these for every array: CPU arrays block by block, other
arrays, GPU ones included, as one block of whole-array formulas).

The forward keeps the input and a mean and 1/std per group, no full-size xhat: the backward
centres the input again block by block. The affine is folded into a scale and a shift per
(sample, channel): ``y = (x - mean) * (w rstd) + (b - ...)``, one multiply and one add.
"""

from __future__ import annotations

from .. import backend

# NOTE: values per block of groups. The passes over a block (forward: centre, two row
# sums, scale, shift; backward: centre, two row sums, scale, shift, scale, add) read it
# from cache, not from memory; each block also costs ~12 us of small NumPy calls, so that
# the largest blocks that stay in cache ran fastest: 1 MiB of float32 (2 MiB with y's, past
# a 1 MiB L2, in a 32 MiB L3): 32x64x56x56 fwd+bwd 9.5 / 9.3 / 9.1 ms for 2^17 / 2^18 / 2^19
_BLOCK = 1 << 18


def _dims(x, groups):
    """(N, C, L, rows N * G, channels per group, values per group M) of x (N, C, ...)."""
    n, c = x.shape[:2]
    ell = 1
    for d in x.shape[2:]:
        ell *= d
    cpg = c // groups
    return n, c, ell, n * groups, cpg, cpg * ell


def _blocks(cpu, rows, m):
    """Slices of the rows (groups of m values): cache-sized on the CPU, else one."""
    if not cpu:
        return [slice(0, rows)]
    step = max(1, _BLOCK // max(m, 1))
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


def _rowdot(xp, cpu, a, b, out):
    """``a[..., i, :] . b[i, :]`` for each row i of 2-d ``b`` (into ``out`` if given).

    NOTE: as a stack of (1, n) @ (n, 1) products: on NumPy as fast as ``vecdot`` (which
    CuPy lacks) and 1.7x einsum's speed on rows of 200 values and more."""
    a, b = a[..., None, :], b[..., :, None]
    if cpu and out is not None:
        xp.matmul(a, b, out=out[..., None, None])
        return out
    r = xp.matmul(a, b)[..., 0, 0]
    if out is None:
        return r
    out[...] = r
    return out


def _matvec(xp, cpu, a, v, out):
    if cpu:
        return xp.matmul(a, v, out=out)
    out[...] = xp.matmul(a, v)
    return out


def _per_row(p, n, rows, cpg):
    """A (C,) parameter as (N * G, C / G): one row per group of each sample; or None."""
    return None if p is None else p.reshape(1, -1).repeat(n, 0).reshape(rows, cpg)


def forward(xp, x, groups, w, b, eps):
    """``(y, mean, rstd)`` of the group norm of C-contiguous ``x`` (N, C, ...); w, b: (C,) or
    None, of x's dtype; rstd: (N * G,), one per group of each sample; mean: (2, N * G), the
    mean of each group in x's dtype and what that rounding left out (mean = sum of both)."""
    n, c, ell, rows, cpg, m = _dims(x, groups)
    cpu, dt = backend.device_of(x).type == "cpu", x.dtype
    y = xp.empty_like(x)
    xg, yg = x.reshape(rows, m), y.reshape(rows, m)
    mean, rstd, st = xp.empty((2, rows), dt), xp.empty(rows, dt), xp.empty((2, rows), dt)
    wt, bt = _per_row(w, n, rows, cpg), _per_row(b, n, rows, cpg)
    # NOTE: 0-d arrays of x's dtype: a NumPy ufunc takes them in half the time of a scalar
    c0, c1, inv_m, e = (xp.asarray(v, dt) for v in (0.0, 1.0, 1.0 / max(m, 1), eps))
    # NOTE: a shift (a first mean) from the first k values of each group; the sums of
    # t = x - shift then give the mean and the variance (the shifted, corrected two-pass of
    # Chan, Golub and LeVeque, 1983): exact for any shift, a shift s std devs off adds ~s^2
    # eps to the variance's relative error; s^2 < M / k <= 16 at worst, ~0 on usual data
    k = min(m, max(1024, m // 16))
    ones, inv_k = xp.ones(m, dt), xp.asarray(1.0 / max(k, 1), dt)
    with backend.row_loops(ell):
        for s in _blocks(cpu, rows, m):
            # NOTE: y's block holds x - shift first: two blocks in cache (x's, y's), not three
            xb, t, mu, rs, sb = xg[s], yg[s], mean[0, s], rstd[s], st[:, s]
            r = t.shape[0]
            _matvec(xp, cpu, xb[:, :k], ones[:k], mu)
            mu *= inv_k
            xp.subtract(xb, mu[:, None], out=t)
            _matvec(xp, cpu, t, ones, sb[0])
            _rowdot(xp, cpu, t, t, sb[1])
            sb *= inv_m
            d = sb[0]  # mean - shift
            # rstd = 1 / sqrt(max(E[t^2] - d^2, 0) + eps), PyTorch's formula
            xp.multiply(d, d, out=rs)
            xp.subtract(sb[1], rs, out=rs)
            xp.maximum(rs, c0, out=rs)
            rs += e
            xp.sqrt(rs, out=rs)
            xp.divide(c1, rs, out=rs)
            # y = t * a + (b - d * a), a = w * rstd
            a = rs[:, None] if wt is None else wt[s] * rs[:, None]
            sh = a * d[:, None]
            if bt is None:
                xp.negative(sh, out=sh)
            else:
                sh = xp.subtract(bt[s], sh, out=sh if sh.shape[1] == cpg else None)
            if sh.shape[1] == 1:  # NOTE: one scale a group: rows of M values, not of L
                t *= a
                t += sh
            else:
                t3 = t.reshape(r, cpg, ell)
                t3 *= a[:, :, None]
                t3 += sh[:, :, None]
    # NOTE: mean = shift + d as a rounded sum and its error (Knuth's two-sum): backward
    # corrects its x - mean[0] by mean[1] in its per-row sums, with no extra pass
    shift, d = mean[0].copy(), st[0]
    xp.add(shift, d, out=mean[0])
    sb = mean[0] - shift
    xp.add(shift - (mean[0] - sb), d - sb, out=mean[1])
    return y, mean, rstd


def backward(xp, g, x, mean, rstd, groups, w, need_x, need_w, need_b):
    """``(dx, dw, db)`` of the group norm of ``x`` (N, C, ...) for the gradient ``g`` of its
    output, from forward's ``mean`` and ``rstd``; each is None unless asked for."""
    n, c, ell, rows, cpg, m = _dims(x, groups)
    cpu, dt = backend.device_of(x).type == "cpu", x.dtype
    xg, gg = x.reshape(rows, m), g.reshape(rows, m)
    dx = xp.empty_like(x) if need_x else None
    dxg = None if dx is None else dx.reshape(rows, m)
    # per (n, c): sums over L of g and of g * (x - mean)
    sums = xp.empty((2, n * c), dt)
    wt = _per_row(w, n, rows, cpg)
    blocks = _blocks(cpu, rows, m)
    ones, neg_inv_m = xp.ones(ell, dt), xp.asarray(-1.0 / max(m, 1), dt)
    step = blocks[0].stop - blocks[0].start if blocks else 0
    buf = xp.empty((step, m), dt)
    # NOTE: a broadcast or strided gradient (``y.sum().backward()``): copied block by block
    gbuf = xp.empty((step, m), dt) if cpu and not gg.flags.c_contiguous else None
    with backend.row_loops(ell):
        for s in blocks:
            xb, gb, rs = xg[s], gg[s], rstd[s]
            r = xb.shape[0]
            if gbuf is not None:
                gb = gbuf[:r]
                gb[...] = gg[s]
            t = buf[:r]
            xp.subtract(xb, mean[0, s][:, None], out=t)
            cs = slice(s.start * cpg, s.stop * cpg)
            gc = gb.reshape(r * cpg, ell)
            _matvec(xp, cpu, gc, ones, sums[0, cs])
            _rowdot(xp, cpu, gc, t.reshape(r * cpg, ell), sums[1, cs])
            # NOTE: t = x - mean[0], off by mean[1] (x + 1000: dw off by 2e-5 without)
            sb, lo = sums[:, cs].reshape(2, r, cpg), mean[1, s]
            sb[1] -= sb[0] * lo[:, None]
            if dxg is None:
                continue
            # NOTE: dx = rstd (g w - mean(g w) - xhat mean(g w xhat)) over each group
            #  = g (w rstd) + t k[1] + k[0], t = x - mean, with the group sums over c of
            #  w sum_L g (k[0]) and w sum_L g t (k[1]): k[0] * -rstd / M, k[1] * -rstd^3 / M
            k = sb.sum(2) if wt is None else _rowdot(xp, cpu, sb, wt[s], None)
            k *= rs
            k *= neg_inv_m
            k[1] *= rs
            k[1] *= rs
            k[0] -= k[1] * lo
            t *= k[1][:, None]
            t += k[0][:, None]
            out = dxg[s]
            if wt is None:
                xp.multiply(gb, rs[:, None], out=out)
            else:
                a = wt[s] * rs[:, None]
                xp.multiply(gb.reshape(r, cpg, ell), a[:, :, None], out=out.reshape(r, cpg, ell))
            out += t
    dw = db = None
    if need_w:
        sx = sums[1].reshape(n, groups, cpg)
        dw = xp.einsum("ngk,ng->gk", sx, rstd.reshape(n, groups)).reshape(c)
    if need_b:
        db = sums[0].reshape(n, c).sum(0)
    return dx, dw, db
