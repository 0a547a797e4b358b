"""Generator states as uint8 tensors, as PyTorch hands them out (``torch.get_rng_state()``,
``Generator.get_state()``, ``torch.cuda.get_rng_state()``): opaque bytes that ``set_state``
turns back into the same stream position. manygrad's streams are not PyTorch's, so the
bytes are manygrad's own and PyTorch's states are refused (and the other way round).

Layout (little-endian), ``_HEAD`` then the part of the generator's kind:

- head: the magic ``b"MGRNG"``, the format version, the kind, whether a seed was given, the
  seed (128 bits), and the ``(seed, offset)`` counter of the counter-based kernels;
- kind 0, NumPy's PCG64 (``cpu``, ``fakegpu``): its 128-bit state and increment, and the
  buffered 32-bit half (``has_uint32``, ``uinteger``);
- kind 1, CuPy's cuRAND generator (``cuda``): the byte count of its per-thread states,
  then those bytes (none when CuPy hides them: the stream then restarts from the seed).

Older manygrad versions handed out the state as a dict (NumPy's ``bit_generator.state``,
or ``{"seed", "counter", "curand"}`` on GPUs); ``load`` still accepts those, so that saved
training checkpoints resume.
"""

from __future__ import annotations

import numbers
import struct

import numpy as np

from . import backend
from .errors import ManygradError

_MAGIC, _VERSION = b"MGRNG", 1
_NUMPY, _CURAND = 0, 1
_HEAD = struct.Struct("<5sBB?QQQQ")  # magic, version, kind, has seed, seed lo/hi, counter
_PCG = struct.Struct("<QQQQ?I")  # state lo/hi, inc lo/hi, has_uint32, uinteger
_LEN = struct.Struct("<Q")
_M64 = (1 << 64) - 1


class RandomError(ManygradError, ValueError, RuntimeError):
    """A random call that can't draw as asked (``randint``'s bounds), or a generator state
    that does not fit the generator it is loaded into (also a ``RuntimeError``, which
    PyTorch raises)."""


def check_seed(seed, where: str, strict: bool = False) -> int:
    """``seed`` as PyTorch takes it: an integer in [-2**63, 2**64), negatives wrapping to
    ``seed + 2**64``; ``strict`` refuses floats and strings (``Generator.manual_seed``)
    where ``torch.manual_seed`` converts them with ``int()``."""
    if strict and not isinstance(seed, numbers.Integral):
        raise TypeError(f"{where}: expected an int seed, got {type(seed).__name__}")
    try:
        s = int(seed)
    except (TypeError, ValueError):
        raise TypeError(
            f"{where}: expected an int seed, got {type(seed).__name__} {seed!r}"
        ) from None
    if not -(1 << 63) <= s <= _M64:
        raise ValueError(f"{where}: seed {s} is out of range; use an int in [-2**63, 2**64)")
    return s & _M64  # NOTE: PyTorch keeps the seed as uint64, so -1 is 2**64 - 1


def seed_of(g) -> int | None:
    """The seed ``g`` was last seeded with (None: from the operating system's entropy)."""
    s = g.initial_seed
    return s() if callable(s) else s  # NOTE: ``mg.Generator`` makes it a method


def _split(v: int) -> tuple[int, int]:
    return v & _M64, (v >> 64) & _M64


def encode(g: backend.Generator) -> bytes:
    """The bytes of ``g``'s stream position."""
    seed = seed_of(g)
    if seed is not None and not 0 <= seed < 1 << 128:
        raise RandomError(f"get_state: the generator's seed {seed} does not fit 128 bits")
    counter = g._counter
    head = _HEAD.pack(_MAGIC, _VERSION, _CURAND if g.device.type == "cuda" else _NUMPY,
                      seed is not None, *_split(seed or 0), counter[0] & _M64,
                      counter[1] & _M64)  # fmt: skip
    if g.device.type == "cuda":
        saved = backend.Generator.get_state(g).get("curand")
        blob = b"" if saved is None else np.ascontiguousarray(saved).tobytes()
        return head + _LEN.pack(len(blob)) + blob
    st = g._g.bit_generator.state
    if st["bit_generator"] != "PCG64":  # NOTE: internal invariant: default_rng is PCG64
        raise RandomError(f"get_state: can't encode a {st['bit_generator']} generator")
    inner = st["state"]
    return head + _PCG.pack(*_split(inner["state"]), *_split(inner["inc"]),
                            bool(st["has_uint32"]), int(st["uinteger"]))  # fmt: skip


def get(g: backend.Generator):
    """``g``'s state as a 1-d uint8 CPU tensor (a copy: later draws don't change it)."""
    from .tensor import Tensor

    return Tensor._wrap(np.frombuffer(encode(g), np.uint8).copy(), backend.CPU)


def _bytes_of(state, where: str) -> bytes:
    from .tensor import Tensor

    if isinstance(state, Tensor):
        if state.dtype.name != "uint8":
            raise TypeError(
                f"{where}: the state must be a uint8 tensor (what get_state() returned), got "
                f"a {state.dtype.name} tensor"
            )
        return backend.to_numpy(state._data).tobytes()
    if isinstance(state, np.ndarray) and state.dtype == np.uint8:
        return state.tobytes()
    if isinstance(state, (bytes, bytearray, memoryview)):
        return bytes(state)
    raise TypeError(
        f"{where}: expected the uint8 tensor that get_state() / get_rng_state() returned, "
        f"got {type(state).__name__}"
    )


def load(g: backend.Generator, state, where: str) -> None:
    """Put ``g`` where ``state`` (from :func:`get`, or an older manygrad's dict) says."""
    if isinstance(state, dict):
        backend.Generator.set_state(g, state)
        return
    data = _bytes_of(state, where)
    if len(data) < _HEAD.size or data[:5] != _MAGIC:
        raise RandomError(
            f"{where}: these {len(data)} bytes are not a manygrad generator state; pass what "
            "get_state() / get_rng_state() returned (PyTorch's states can't be loaded: "
            "manygrad's random streams are its own)"
        )
    _, version, kind, has_seed, s_lo, s_hi, c_seed, c_off = _HEAD.unpack_from(data)
    if version != _VERSION or kind not in (_NUMPY, _CURAND):
        raise RandomError(
            f"{where}: generator state of format {version}, kind {kind}, written by a newer "
            "manygrad; load it with that version"
        )
    gpu = g.device.type == "cuda"
    if (kind == _CURAND) != gpu:
        made = "a CUDA (cuRAND)" if kind == _CURAND else "a NumPy (cpu or fakegpu)"
        raise RandomError(
            f"{where}: the state comes from {made} generator and can't be loaded into the "
            f"{g.device} generator; load it into a generator of the device it came from"
        )
    seed = (s_hi << 64 | s_lo) if has_seed else None
    body = data[_HEAD.size :]
    if gpu:
        (n,) = _LEN.unpack_from(body) if len(body) >= _LEN.size else (-1,)
        if n != len(body) - _LEN.size:
            raise RandomError(f"{where}: the cuRAND state is cut short ({len(data)} bytes)")
        curand = np.frombuffer(body[_LEN.size :], np.uint8) if n else None
        backend.Generator.set_state(g, {"seed": seed, "counter": [c_seed, c_off], "curand": curand})
        return
    if len(body) != _PCG.size:
        raise RandomError(
            f"{where}: expected {_HEAD.size + _PCG.size} bytes of a cpu generator's state, "
            f"got {len(data)}"
        )
    st_lo, st_hi, inc_lo, inc_hi, has_uint32, uinteger = _PCG.unpack(body)
    g._g.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": st_hi << 64 | st_lo, "inc": inc_hi << 64 | inc_lo},
        "has_uint32": int(has_uint32),
        "uinteger": uinteger,
    }
    g.initial_seed = seed
    g._counter = [c_seed, c_off]
