"""``torch.version``: the version strings ported programs print and compare.

Under ``manygrad run`` (and ``manygrad.compat`` imports) ``torch.__version__`` is the
PyTorch release whose API manygrad follows, with manygrad's own version as the local part
(``2.13.0+manygrad.0.1.0``), so that a program's version gates (``if torch.__version__ >=
"2.0": model = torch.compile(model)``, ``packaging.version.parse(torch.__version__)``) take
the path written for that API. ``manygrad.__version__`` stays manygrad's own.
"""

from __future__ import annotations

import re

API = "2.13.0"  # NOTE: the PyTorch release whose names and semantics manygrad follows

cuda = None  # manygrad reaches CUDA through CuPy; see manygrad.cuda.is_available()
hip = None
git_version = "unknown"
debug = False

_RELEASE = re.compile(r"\s*v?(\d+(?:\.\d+)*)")


def _release(v) -> tuple[int, ...]:
    """The numeric release of a version given as a string, a tuple/list or an object with
    a ``release`` (packaging's Version), without trailing zeros."""
    if isinstance(v, (tuple, list)):
        parts = tuple(int(x) for x in v)
    elif hasattr(v, "release"):
        parts = tuple(v.release)
    elif isinstance(v, str):
        m = _RELEASE.match(v)
        if m is None:
            raise ValueError(f"not a version: {v!r} (write it as '2.1' or (2, 1))")
        parts = tuple(int(x) for x in m.group(1).split("."))
    else:
        raise TypeError(f"a version compares with a string or a tuple, not {type(v).__name__}")
    while parts and parts[-1] == 0:
        parts = parts[:-1]
    return parts


class TorchVersion(str):
    """A version string that compares as a version (``"2.13.0" > "2.9"``) with strings,
    tuples (``>= (2, 0)``) and packaging's Version, as ``torch.__version__`` does.

    NOTE: the release numbers compare; a local part (``+manygrad.0.1.0``) ranks after
    the bare release, as PEP 440 orders them."""

    def _key(self) -> tuple:
        return _release(str(self)), "+" in self

    @staticmethod
    def _other(other) -> tuple:
        return _release(other), isinstance(other, str) and "+" in other

    def __lt__(self, other):
        return self._key() < self._other(other)

    def __le__(self, other):
        return self._key() <= self._other(other)

    def __gt__(self, other):
        return self._key() > self._other(other)

    def __ge__(self, other):
        return self._key() >= self._other(other)

    def __eq__(self, other):
        if isinstance(other, str):
            return str.__eq__(self, other) or (self._key() == self._other(other))
        try:
            return self._key() == self._other(other)
        except (TypeError, ValueError):
            return NotImplemented

    __hash__ = str.__hash__


def _version() -> TorchVersion:
    from .. import __version__ as own

    return TorchVersion(f"{API}+manygrad.{own}")


__version__ = _version()
