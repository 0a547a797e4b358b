"""Argument types for the commands: numbers that must be finite, positive, or in a range.

Each is an argparse ``type=``: a bad value ends in argparse's usual
``manygrad train: error: argument --epochs: ...`` naming the option, with exit status 2.
"""

from __future__ import annotations

import argparse
import math

_SEED_MAX = 2**63 - 1


def _number(text: str, kind):
    try:
        v = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def positive_int(text: str) -> int:
    """A whole number of at least 1 (``--epochs``, ``--batch-size``)."""
    v = _number(text, int)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def count_int(text: str) -> int:
    """A whole number of at least 0 (``--workers``)."""
    v = _number(text, int)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {v}")
    return v


def positive_float(text: str) -> float:
    """A finite number above 0 (``--lr``, ``--temperature``)."""
    v = _number(text, float)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return v


def seed_int(text: str) -> int:
    """A seed: a whole number in ``[0, 2**63 - 1]``."""
    v = _number(text, int)
    if not 0 <= v <= _SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**63 - 1, got {v}")
    return v


def image_size(text: str) -> str:
    """``N`` or ``HxW`` (``--image-size 32``, ``--image-size 48x64``), as ``"HxW"``."""
    parts = text.lower().split("x")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected N or HxW, got {text!r}")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or HxW, got {text!r}") from None
    if any(not 1 <= d <= 16384 for d in dims):
        raise argparse.ArgumentTypeError(f"sizes must be between 1 and 16384, got {text!r}")
    return f"{dims[0]}x{dims[-1]}"


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"HxW"`` -> ``(H, W)``."""
    if not text:
        return None
    h, w = image_size(text).split("x")
    return int(h), int(w)
