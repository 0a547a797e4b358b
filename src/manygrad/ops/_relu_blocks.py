"""ReLU and leaky ReLU of CPU float32/float64 arrays: float32 through the CPU kernels
(``_native``, one pass), float64 (and float32 without the kernels) block by block
(``elementwise.py``'s Relu and LeakyRelu take these for C-contiguous NumPy arrays; other
arrays, GPU ones included, take their plain formulas). The values are PyTorch's bit for bit: NaN, -0.0, inf
and the gradient at 0 included.

NOTE: two things make these faster than the plain formulas on CPUs. NumPy's maximum,
minimum and fmax have no SIMD loop for a scalar operand (65k float32 values: 21 against
3.7 us with an array operand), so constants come as read-only arrays of a block's length;
and each step runs over one block at a time, whose temporaries stay in the L2 cache.
"""

from __future__ import annotations

from .. import _native, backend

_BLOCK = 1 << 16  # NOTE: 256 KiB of float32: a block and its temporaries stay in L2
_CONSTS: dict = {}


def fast(*arrays) -> bool:
    """Whether the block loops take these arrays: C-contiguous float32/float64 CPU arrays
    of one shape and dtype."""
    a = arrays[0]
    if backend.device_of(a).type != "cpu" or a.dtype.char not in "fd":
        return False
    return all(b.flags.c_contiguous and b.dtype == a.dtype and b.shape == a.shape for b in arrays)


def _const(xp, dt, value):
    """A read-only block of ``value`` (the operand of maximum, minimum and fmax)."""
    key = (dt.char, float(value))
    c = _CONSTS.get(key)
    if c is None:
        if len(_CONSTS) > 16:  # NOTE: a few slopes per model; bounded all the same
            _CONSTS.clear()
        c = _CONSTS[key] = xp.full(_BLOCK, value, dt)
        c.flags.writeable = False
    return c


def _blocks(n: int):
    return ((i, min(i + _BLOCK, n)) for i in range(0, n, _BLOCK))


def relu(xp, x, out=None):
    """``max(x, 0)`` as PyTorch's (-0.0 stays -0.0, NaN stays NaN) into ``out`` (new if None;
    may be ``x``)."""
    if (fast := _native.relu(x, out)) is not None:
        return fast  # NOTE: float32: one pass of the CPU kernels
    y = xp.empty_like(x) if out is None else out
    xf, yf = x.reshape(-1), y.reshape(-1)
    zero = _const(xp, x.dtype, 0.0)
    stage = xf.size > _BLOCK and y is not x
    for i, j in _blocks(xf.size):
        xb, yb = xf[i:j], yf[i:j]
        if stage:  # NOTE: maximum(0, x) reading x from memory runs slower than a copy
            xp.copyto(yb, xb)  # and maximum(x, 0) (4M float32: 0.93 against 0.65 ms); with
            xb = yb  # x copied into the cache first, 0.68 ms
        # NOTE: NumPy's maximum gives its second operand on ties: x's -0.0, as PyTorch
        xp.maximum(zero[: j - i], xb, out=yb)
    return y


def relu_grad(xp, g, y):
    """PyTorch's threshold_backward: ``0 where y <= 0, else g`` (a select: inf or NaN in
    ``g`` where y <= 0 give 0, and NaN in ``y`` passes ``g``), for ``y`` relu's output.

    NOTE: relu's output holds no value below zero but -0.0, so y <= 0 is y's bits without
    the sign being 0: ``g``'s bits times ``min(y's bits << 1, 1)``, all in integers (32k
    float32 values: 5.9 against 7.5 us for comparing, negating and multiplying by the
    booleans)."""
    if (fast := _native.relu_backward(g, y)) is not None:
        return fast
    it = xp.uint32 if g.dtype.itemsize == 4 else xp.uint64
    out = xp.empty_like(g)
    gf, yf, of = g.reshape(-1).view(it), y.reshape(-1).view(it), out.reshape(-1).view(it)
    keep = xp.empty(min(gf.size, _BLOCK), it)
    one = _const(xp, xp.dtype(it), 1)
    for i, j in _blocks(gf.size):
        k = keep[: j - i]
        xp.left_shift(yf[i:j], 1, out=k)
        xp.minimum(k, one[: j - i], out=k)
        xp.multiply(gf[i:j], k, out=of[i:j])
    return out


def leaky(xp, x, slope: float, out=None):
    """``x > 0 ? x : x * slope`` for ``slope > 0`` as ``max(x * slope, x)`` (``min`` for
    ``slope > 1``), into ``out`` (new if None; may be ``x``).

    NOTE: the same values as the select, NaN, inf and -0.0 included: for 0 < slope <= 1,
    ``x * slope`` lies between 0 and ``x`` (rounding can't pass ``x``), and at +-0 both
    operands are the same zero. A slope <= 0 breaks this (inf * 0, ties of -0.0 and 0.0)."""
    if (fast := _native.relu(x, out, slope)) is not None:
        return fast
    y = xp.empty_like(x) if out is None else out
    xf, yf = x.reshape(-1), y.reshape(-1)
    pick = xp.maximum if slope <= 1 else xp.minimum
    tmp = xp.empty(min(xf.size, _BLOCK), x.dtype) if y is x else None
    s = x.dtype.type(slope)
    with backend.quiet_float_errors():  # NOTE: x * slope overflows for slope > 1, silently
        for i, j in _blocks(xf.size):
            xb, yb = xf[i:j], yf[i:j]
            t = yb if tmp is None else tmp[: j - i]
            xp.multiply(xb, s, out=t)
            pick(t, xb, out=yb)
    return y


def leaky_grad(xp, g, a, slope: float):
    """``a > 0 ? g : g * slope`` (``a``: leaky ReLU's input, or its output when slope >= 0)
    as ``g * factor``, the factor 1 or ``slope`` from float steps without a select.

    NOTE: for slope <= 1, ``fmax(minimum(a * inf, 1), slope)``: a * inf is inf for a > 0,
    -inf for a < 0 and NaN at +-0 and NaN; minimum keeps the NaN, fmax drops it. For
    slope > 1, ``maximum(fmin(a * -inf, slope), 1)``. ``g * 1`` is ``g`` exactly."""
    if (fast := _native.relu_backward(g, a, slope)) is not None:
        return fast
    out = xp.empty_like(g)
    gf, af, of = g.reshape(-1), a.reshape(-1), out.reshape(-1)
    dt = g.dtype
    one, s = _const(xp, dt, 1.0), _const(xp, dt, slope)
    big = dt.type(float("inf") if slope <= 1 else -float("inf"))
    clip, pick = (xp.minimum, xp.fmax) if slope <= 1 else (xp.fmin, xp.maximum)
    lo, hi = (one, s) if slope <= 1 else (s, one)
    with backend.quiet_float_errors():  # NOTE: 0 * inf is NaN on purpose
        for i, j in _blocks(gf.size):
            f, k = of[i:j], j - i
            xp.multiply(af[i:j], big, out=f)
            clip(f, lo[:k], out=f)
            pick(f, hi[:k], out=f)
            f *= gf[i:j]
    return out
