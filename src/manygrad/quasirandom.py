"""Quasi-random (low-discrepancy) sequences, as ``torch.quasirandom``: ``SobolEngine``.

The engine runs on the host, as PyTorch's does: its state and its draws are CPU tensors
(move a draw with ``.to(device)``).
"""

from __future__ import annotations

import functools
import operator
import pathlib

import numpy as np

from .tensor import Tensor

__all__ = ["SobolEngine"]

_TABLE = pathlib.Path(__file__).parent / "_data" / "sobol_directions.npz"
_MAXBIT = 30
_MAXDIM = 21201
_DRAW_DTYPES = ("float32", "float64")  # the dtypes PyTorch's Sobol' kernel writes


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """The primitive polynomials (MAXDIM,) and initial direction numbers (MAXDIM, 18) of
    the Joe & Kuo new-joe-kuo-6.21201 set, unpacked from the file that
    scripts/make_sobol_directions.py writes."""
    with np.load(_TABLE) as f:
        poly = np.cumsum(f["poly_delta"].astype(np.int64))
        deg = np.frexp(poly.astype(np.float64))[1] - 1  # NOTE: exact: poly < 2**53
        init = np.ones((len(poly), int(deg.max())), np.int64)  # m_1 = 1 for every dimension
        for i in range(1, init.shape[1]):
            bits = np.unpackbits(f[f"m{i}"])[: int((deg > i).sum()) * i].reshape(-1, i)
            init[deg > i, i] = 1 + ((bits.astype(np.int64) << np.arange(i)).sum(1) << 1)
    return poly, init


def _direction_numbers(dimension: int) -> np.ndarray:
    """The (dimension, MAXBIT) direction numbers ``v[d, j] = m_{j+1} * 2**(29 - j)``, the
    recurrence of Bratley & Fox (1988) run from each dimension's initial numbers."""
    poly, init = _tables()
    poly = poly[:dimension]
    deg = np.frexp(poly.astype(np.float64))[1] - 1
    m = np.zeros((dimension, _MAXBIT), np.int64)
    m[:, : init.shape[1]] = init[:dimension]
    m[0] = 1  # NOTE: the first dimension is van der Corput's sequence: every m_j is 1
    rows = np.arange(dimension)
    for j in range(1, _MAXBIT):
        todo = rows[(deg <= j) & (rows > 0)]
        s, p = deg[todo], poly[todo]
        new = m[todo, j - s]
        for k in range(1, int(s.max(initial=0)) + 1):
            # a_k (bit s-k of the polynomial) adds m_{j-k} * 2**k; a_s is always set
            use = (k <= s) & (((p >> np.maximum(s - k, 0)) & 1) == 1)
            new ^= np.where(use, m[todo, np.maximum(j - k, 0)] << k, 0)
        m[todo, j] = new
    return m << (_MAXBIT - 1 - np.arange(_MAXBIT))


def _gray(i: int) -> int:
    return i ^ (i >> 1)


def _xor_columns(v: np.ndarray, bits: int) -> np.ndarray:
    """XOR of the columns ``v[:, b]`` for the set bits b of ``bits``."""
    pick = [b for b in range(_MAXBIT) if bits >> b & 1]
    return np.bitwise_xor.reduce(v[:, pick], axis=1) if pick else np.zeros(len(v), np.int64)


class SobolEngine:
    """An engine for (scrambled) Sobol' sequences, low-discrepancy quasi-random points in
    the unit cube ``[0, 1)^dimension``, as ``torch.quasirandom.SobolEngine``.

    Unscrambled points are PyTorch's, bit for bit: the direction numbers of Joe & Kuo
    (2008, new-joe-kuo-6.21201, up to 21,201 dimensions), drawn in Gray-code order with
    30-bit integers scaled by ``2**-30``. ``scramble=True`` applies Owen's (1998) random
    linear matrix scrambling and a random digital shift, drawn from manygrad's generator
    (seeded by ``seed``, else the global one): the points differ from PyTorch's but keep
    the balance of a Sobol' sequence.

    Args:
        dimension: the number of coordinates of each point, 1 to 21201.
        scramble: scramble the sequence. Default: False.
        seed: the seed of the scrambling. Default: None (the global generator).

    Example:
        >>> eng = mg.quasirandom.SobolEngine(dimension=2)
        >>> eng.draw(3)  # [[0, 0], [0.5, 0.5], [0.75, 0.25]]
    """

    MAXBIT = _MAXBIT
    MAXDIM = _MAXDIM

    def __init__(self, dimension: int, scramble: bool = False, seed: int | None = None):
        if isinstance(dimension, bool) or not hasattr(dimension, "__index__"):
            raise TypeError(f"SobolEngine: dimension must be an int, got {dimension!r}")
        dimension = operator.index(dimension)
        if dimension > self.MAXDIM or dimension < 1:
            raise ValueError(
                f"Supported range of dimensionality for SobolEngine is [1, {self.MAXDIM}]"
            )
        from .dtypes import get_default_dtype

        self.seed = seed
        self.scramble = scramble
        self.dimension = dimension
        self.sobolstate = Tensor._wrap(_direction_numbers(dimension))
        if scramble:
            self._scramble()
        else:
            self.shift = Tensor._wrap(np.zeros(dimension, np.int64))
        self.quasi = self.shift.clone()
        first = self.quasi.numpy().astype(get_default_dtype().np) / 2**self.MAXBIT
        self._first_point = Tensor._wrap(first.reshape(1, -1))
        self.num_generated = 0

    def _scramble(self) -> None:
        from .creation import randint
        from .ops.random import Generator

        g = None
        if self.seed is not None:
            g = Generator()
            g.manual_seed(self.seed)
        d, nb = self.dimension, self.MAXBIT
        bits = randint(2, (d, nb), generator=g, device="cpu").numpy()
        self.shift = Tensor._wrap(bits @ (1 << np.arange(nb, dtype=np.int64)))
        lower = np.tril(randint(2, (d, nb, nb), generator=g, device="cpu").numpy())
        lower[:, np.arange(nb), np.arange(nb)] = 1
        # NOTE: bit k counted from the most significant one (of 30): row p of each
        # dimension's unit lower-triangular matrix mixes bits 0..p into bit p, mod 2
        msb = nb - 1 - np.arange(nb)
        rows = (lower << msb).sum(-1)  # (dimension, p): row p as an integer
        v = self.sobolstate.numpy()
        mixed = np.bitwise_count(v[:, :, None] & rows[:, None, :]) & 1  # (dimension, j, p)
        self.sobolstate = Tensor._wrap((mixed.astype(np.int64) << msb).sum(-1))

    def _advance(self, n: int, counter: int) -> np.ndarray:
        """The next ``n`` points as integers (n, dimension), from the point after number
        ``counter``; the state moves to the last of them."""
        if counter + n >= 2**self.MAXBIT:
            raise ValueError(
                f"SobolEngine: a sequence has at most 2**{self.MAXBIT} points; "
                f"{counter + 1} drawn and {n} more asked; call reset() to start over"
            )
        v = self.sobolstate.numpy()
        step = np.arange(counter + 1, counter + n + 1, dtype=np.int64)
        # NOTE: the step after point i flips bit b = the lowest zero bit of i (Gray code)
        col = np.frexp((step & -step).astype(np.float64))[1] - 1
        pts = np.bitwise_xor.accumulate(v[:, col].T, axis=0) ^ self.quasi.numpy()
        if n:
            self.quasi = Tensor._wrap(pts[-1].copy())
        return pts

    def draw(self, n: int = 1, out: Tensor | None = None, dtype=None) -> Tensor:
        """The next ``n`` points of the sequence, a CPU tensor (n, dimension).

        Args:
            n: the number of points. Default: 1.
            out: a tensor to resize and write the points into (keeping its dtype).
            dtype: the dtype of the points (float32 or float64). Default: the default dtype.

        Example:
            >>> mg.quasirandom.SobolEngine(3).draw(4, dtype=mg.float64)
        """
        from . import dtypes

        n = operator.index(n)
        dtype = dtypes.get_default_dtype() if dtype is None else dtypes.from_any(dtype)
        if n < (1 if self.num_generated == 0 else 0):
            raise RuntimeError(
                f"SobolEngine.draw: n must be positive, got {n}; draw(n) gives n points"
            )
        first = self.num_generated == 0
        if first and n == 1:
            result = self._first_point.to(dtype)
        else:
            if dtype.name not in _DRAW_DTYPES:
                raise NotImplementedError(
                    f"SobolEngine.draw: points are drawn as float32 or float64, not {dtype}; "
                    "draw them as float32 and cast, e.g. draw(n).to(dtype)"
                )
            pts = self._advance(n - 1 if first else n, max(self.num_generated - 1, 0))
            pts = pts.astype(dtype.np) * dtype.np.type(2.0**-self.MAXBIT)
            if first:
                pts = np.concatenate([self._first_point.numpy().astype(dtype.np), pts])
            result = Tensor._wrap(pts)
        self.num_generated += n
        if out is not None:
            out.resize_as_(result).copy_(result)
            return out
        return result

    def draw_base2(self, m: int, out: Tensor | None = None, dtype=None) -> Tensor:
        """The next ``2**m`` points, keeping the balance of the sequence: the points drawn
        so far plus these must number a power of 2.

        Args:
            m: the base-2 exponent of the number of points.
            out: a tensor to resize and write the points into.
            dtype: the dtype of the points. Default: the default dtype.

        Example:
            >>> mg.quasirandom.SobolEngine(2).draw_base2(3).shape  # (8, 2)
        """
        n = 2 ** operator.index(m)
        total = self.num_generated + n
        if total & (total - 1) != 0:
            raise ValueError(
                "The balance properties of Sobol' points require n to be a power of 2. "
                f"{self.num_generated} points have been previously generated, then: "
                f"n={self.num_generated}+2**{m}={total}. If you still want to do this, "
                "please use 'SobolEngine.draw()' instead."
            )
        return self.draw(n=n, out=out, dtype=dtype)

    def reset(self) -> SobolEngine:
        """Go back to the first point of the sequence (the scrambling is kept)."""
        self.quasi.copy_(self.shift)
        self.num_generated = 0
        return self

    def fast_forward(self, n: int) -> SobolEngine:
        """Skip ``n`` points, as if drawn and thrown away (without computing them).

        Example:
            >>> eng = mg.quasirandom.SobolEngine(2).fast_forward(4)  # next draw is point 4
        """
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"SobolEngine.fast_forward: n must be >= 0, got {n}")
        # NOTE: point i is shift ^ XOR of the direction numbers at the set bits of i's
        # Gray code, so skipping from point a to point b flips gray(a) ^ gray(b)
        a = max(self.num_generated - 1, 0)
        b = self.num_generated + n - 1
        if b > a:
            if b >= 2**self.MAXBIT:
                raise ValueError(
                    f"SobolEngine.fast_forward: a sequence has at most 2**{self.MAXBIT} "
                    f"points, got to point {b}; call reset() to start over"
                )
            flip = _xor_columns(self.sobolstate.numpy(), _gray(a) ^ _gray(b))
            self.quasi = Tensor._wrap(self.quasi.numpy() ^ flip)
        self.num_generated += n
        return self

    def __repr__(self) -> str:
        parts = [f"dimension={self.dimension}"]
        if self.scramble:
            parts.append("scramble=True")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return f"{type(self).__name__}({', '.join(parts)})"
