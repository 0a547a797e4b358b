"""Write src/manygrad/_data/sobol_directions.npz, the Sobol' direction numbers behind
``manygrad.quasirandom.SobolEngine`` (run once; the file ships in the package).

Usage: ``PYTHONPATH=src python scripts/make_sobol_directions.py`` (needs PyTorch).

The numbers are the Joe & Kuo ``new-joe-kuo-6.21201`` set (21,201 dimensions), the one
PyTorch's ``SobolEngine`` uses; they are read back from the state that PyTorch builds
(``torch._sobol_engine_initialize_state_``) and stored compactly:

- ``poly_delta`` (uint16): differences of the primitive polynomials, each written with its
  leading and constant terms (``x^2 + x + 1`` is ``0b111``; dimension 1 has ``1``);
- ``m{i}`` (uint8, bit-packed), i = 1..17: bit j-1 of the initial direction number
  ``m_{i+1} >> 1`` for each dimension whose polynomial has degree > i, j = 1..i (every
  ``m_k`` is odd and below ``2**k``, so its low bit is implied; ``m_1`` is always 1).

The script then rebuilds every dimension's direction numbers from the file with manygrad's
own loader and checks them against PyTorch's, bit for bit.
"""

from __future__ import annotations

import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "manygrad" / "_data" / "sobol_directions.npz"
MAXBIT, MAXDIM = 30, 21201


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        if n % p == 0:
            out.append(p)
            while n % p == 0:
                n //= p
        p += 1
    return out + ([n] if n > 1 else [])


def _primitive_count(s: int) -> int:
    """The number of primitive polynomials of degree s over GF(2): phi(2^s - 1) / s."""
    n = 2**s - 1
    phi = n
    for p in _prime_factors(n):
        phi = phi // p * (p - 1)
    return phi // s


def _degrees() -> np.ndarray:
    """Each dimension's degree: the table lists polynomials by degree, all of each."""
    deg, s = [0], 1
    while len(deg) < MAXDIM:
        deg += [s] * _primitive_count(s)
        s += 1
    assert len(deg) == MAXDIM, len(deg)
    return np.array(deg)


def _torch_directions() -> np.ndarray:
    import torch

    state = torch.zeros(MAXDIM, MAXBIT, dtype=torch.long)
    torch._sobol_engine_initialize_state_(state, MAXDIM)
    return state.numpy()


def main() -> None:
    v = _torch_directions()
    shift = MAXBIT - 1 - np.arange(MAXBIT)
    m = v >> shift  # m[d, j] = m_{j+1} of dimension d
    assert (m << shift == v).all() and (m % 2 == 1).all()
    deg = _degrees()
    poly = np.ones(MAXDIM, np.int64)
    for s in range(1, deg.max() + 1):
        rows = deg == s
        # NOTE: m_{s+1} = m_1 ^ (m_1 << s) ^ XOR_k a_k (m_{s+1-k} << k); m_{s+1-k} is odd, so
        # bit k of the right side fixes a_k once a_1..a_{k-1} are known
        rest = m[rows, s] ^ m[rows, 0] ^ (m[rows, 0] << s)
        p = np.ones(rows.sum(), np.int64) | (1 << s)
        for k in range(1, s):
            a = (rest >> k) & 1
            rest ^= a * (m[rows, s - k] << k)
            p |= a << (s - k)
        poly[rows] = p
    delta = np.diff(poly, prepend=0)
    assert delta.min() >= 0 and delta.max() < 2**16
    arrays = {"poly_delta": delta.astype(np.uint16)}
    for i in range(1, deg.max()):
        rows = deg > i
        bits = ((m[rows, i][:, None] >> 1) >> np.arange(i)) & 1
        arrays[f"m{i}"] = np.packbits(bits.astype(np.uint8).ravel())
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size:,} bytes)")

    from manygrad import quasirandom

    quasirandom._tables.cache_clear()
    got = quasirandom._direction_numbers(MAXDIM)
    assert (got == v).all(), "the stored table does not rebuild PyTorch's direction numbers"
    print(f"checked: all {MAXDIM} dimensions equal PyTorch's direction numbers")


if __name__ == "__main__":
    main()
