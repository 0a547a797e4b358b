"""TensorBoard event files, written directly (scalars only).

NOTE: tensorboardX imports torch whenever torch is installed (about 5 s and hundreds of MB),
which would dominate a short training run; scalar events are simple enough to write here: a
TFRecord file of ``Event`` protocol buffers (``wall_time``, ``step``, ``summary.value[]``
with ``tag`` and ``simple_value``), each record framed by its length and masked CRC-32C.
"""

from __future__ import annotations

import os
import socket
import struct
import time


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord framing uses."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _event(step: int, wall_time: float, body: bytes) -> bytes:
    # Event: 1 wall_time (double), 2 step (int64), then body (file_version or summary).
    return b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step) + body


def _scalar_value(tag: str, value: float) -> bytes:
    # Summary.Value: 1 tag (string), 2 simple_value (float).
    return _field_bytes(1, tag.encode()) + b"\x15" + struct.pack("<f", value)


class EventWriter:
    """Appends scalar summaries to ``events.out.tfevents.*`` in ``logdir``.

    Args:
        logdir: directory for the event file (created if needed).

    Example:
        >>> w = EventWriter("runs/x"); w.add_scalar("loss/train", 0.5, 1); w.close()
    """

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(logdir, name)
        self._f = open(self.path, "ab")
        self._write(_event(0, time.time(), _field_bytes(3, b"brain.Event:2")))

    def _write(self, data: bytes) -> None:
        header = struct.pack("<Q", len(data))
        self._f.write(header + struct.pack("<I", _masked_crc(header)))
        self._f.write(data + struct.pack("<I", _masked_crc(data)))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """Record ``value`` under ``tag`` at ``step``."""
        self.add_scalars({tag: value}, step)

    def add_scalars(self, values: dict[str, float], step: int) -> None:
        """Record several scalars at one ``step`` in one event."""
        summary = b"".join(_field_bytes(1, _scalar_value(k, float(v))) for k, v in values.items())
        self._write(_event(int(step), time.time(), _field_bytes(5, summary)))

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def read_scalars(path: str) -> list[tuple[int, str, float]]:
    """``(step, tag, value)`` of every scalar in an event file written by :class:`EventWriter`."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        rec = data[pos + 12 : pos + 12 + n]
        (crc,) = struct.unpack_from("<I", data, pos + 12 + n)
        if crc != _masked_crc(rec):
            raise ValueError(f"{path}: corrupt record at byte {pos}")
        pos += 16 + n
        out.extend(_parse_event(rec))
    return out


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def _fields(b: bytes):
    i = 0
    while i < len(b):
        key, i = _read_varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(b, i)
        elif wire == 1:
            v, i = b[i : i + 8], i + 8
        elif wire == 5:
            v, i = b[i : i + 4], i + 4
        else:
            n, i = _read_varint(b, i)
            v, i = b[i : i + n], i + n
        yield num, v


def _parse_event(rec: bytes) -> list[tuple[int, str, float]]:
    step, out = 0, []
    for num, v in _fields(rec):
        if num == 2:
            step = v
        elif num == 5:
            for _, val in _fields(v):
                tag, x = "", 0.0
                for k, w in _fields(val):
                    if k == 1:
                        tag = w.decode()
                    elif k == 2:
                        (x,) = struct.unpack("<f", w)
                out.append((step, tag, x))
    return out
