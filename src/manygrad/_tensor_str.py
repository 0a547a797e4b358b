"""``repr(tensor)`` laid out as PyTorch prints it.

Floats print with ``precision`` digits after the point (4 by default); a float tensor whose
finite values are all integers prints them as ``1.``; scientific notation is chosen when
the finite non-zero magnitudes span more than a factor of 1000, exceed 1e8 or fall below
1e-4. Every element is right-aligned to the widest one, lines wrap at ``linewidth`` and
tensors of more than ``threshold`` elements show ``edgeitems`` at each end of every dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import backend


@dataclass
class PrintOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


PRINT_OPTS = PrintOptions()


class _Formatter:
    """Chooses one layout (integer, fixed or scientific) and one width for all values."""

    def __init__(self, values: np.ndarray, e8m0: bool = False):
        self.floating = values.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.max_width = True, False, 1
        flat = values.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(str(v)))
            return
        prec = PRINT_OPTS.precision
        if e8m0:  # NOTE: as PyTorch: its 0 is 2**-127 there, and its isfinite true on NaN
            finite = flat[flat != 2.0**-127].astype(np.float64)
        else:
            finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size:
            mags = np.abs(finite)
            lo, hi = float(mags.min()), float(mags.max())
            self.int_mode = bool(np.all(finite == np.ceil(finite)))
            wide = hi / lo > 1000.0 or hi > 1.0e8
            self.sci_mode = wide if self.int_mode else (wide or lo < 1.0e-4)
            if PRINT_OPTS.sci_mode is not None:
                self.sci_mode = PRINT_OPTS.sci_mode
            fmt = f"{{:.{prec}e}}" if self.sci_mode else (
                "{:.0f}." if self.int_mode else f"{{:.{prec}f}}")  # fmt: skip
            self.max_width = max(len(fmt.format(v)) for v in finite.tolist())

    def width(self) -> int:
        return self.max_width

    def format(self, value) -> str:
        if self.floating:
            prec = PRINT_OPTS.precision
            if self.sci_mode:
                s = f"{value:{self.max_width}.{prec}e}"
            elif self.int_mode:
                s = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
            else:
                s = f"{value:.{prec}f}"
        else:
            s = str(value)
        return s.rjust(self.max_width)


def _summarized(a, xp):
    """The corner values shown when a tensor is summarised (on its own device)."""
    e = PRINT_OPTS.edgeitems
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return xp.concatenate([a[:e], a[-e:]]) if a.shape[0] > 2 * e else a
    rows = list(range(e)) + list(range(a.shape[0] - e, a.shape[0])) if a.shape[0] > 2 * e else (
        range(a.shape[0]))  # fmt: skip
    return xp.stack([_summarized(a[i], xp) for i in rows])


def _value_str(v, f1: _Formatter, f2: _Formatter | None) -> str:
    if f2 is None:
        return f1.format(v)
    real = f1.format(v.real)
    imag = (f2.format(v.imag) + "j").lstrip()
    return real + imag if imag[0] in "+-" else real + "+" + imag


def _vector_str(a: np.ndarray, indent: int, cut: bool, f1, f2) -> str:
    """One dim of values; ``cut``: ``a`` holds the 2 * edgeitems corner values of a longer
    dim, shown with " ..." between them."""
    width = f1.width() + 2 if f2 is None else f1.width() + f2.width() + 3
    per_line = max(1, (PRINT_OPTS.linewidth - indent) // width)
    data = [_value_str(v, f1, f2) for v in a.tolist()]
    if cut:
        data.insert(len(data) // 2, " ...")
    lines = [", ".join(data[i : i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(a: np.ndarray, shape: tuple, indent: int, f1, f2) -> str:
    """``a``'s values laid out; ``shape`` is the full tensor's (``a`` may hold only the
    corners of dims longer than 2 * edgeitems)."""
    if a.ndim == 0:
        return _value_str(a.item(), f1, f2)
    cut = a.shape[0] < shape[0]
    if a.ndim == 1:
        return _vector_str(a, indent, cut, f1, f2)
    parts = [_nested_str(a[i], shape[1:], indent + 1, f1, f2) for i in range(a.shape[0])]
    if cut:
        parts.insert(len(parts) // 2, "...")
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def _host(a) -> np.ndarray:
    a = backend.to_numpy(a)
    if a.dtype.name in ("bfloat16", "float16") or a.dtype.name.startswith("float8"):
        a = a.astype(np.float32)
    return a


def tensor_str(data, indent: int) -> str:
    """The bracketed values of a raw array, as PyTorch lays them out (only the corners of
    a summarised tensor are read back from its device)."""
    if data.size == 0:
        return "[]"
    if data.size > PRINT_OPTS.threshold:
        data = _summarized(data, backend.array_module(data)), data.shape
    else:
        data = data, data.shape
    shown, shape = _host(data[0]), data[1]
    if shown.dtype.kind == "c":
        f1, f2 = _Formatter(shown.real.copy()), _Formatter(shown.imag.copy())
    else:
        f1, f2 = _Formatter(shown, data[0].dtype.name == "float8_e8m0fnu"), None
    return _nested_str(shown, shape, indent, f1, f2)


def add_suffixes(text: str, suffixes: list, indent: int) -> str:
    """``text`` + ``, suffix`` for each, wrapping before one that would pass the line width."""
    out = [text]
    last = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > PRINT_OPTS.linewidth:
            out.append(",\n" + " " * indent + s)
            last = indent + len(s)
        else:
            out.append(", " + s)
            last += len(s) + 2
    out.append(")")
    return "".join(out)
