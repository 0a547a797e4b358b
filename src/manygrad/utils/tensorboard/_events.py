"""TensorBoard's event files written without TensorFlow or protobuf: the few protocol
buffer messages a training log needs (Event, Summary, HistogramProto, Image, a string
TensorProto), encoded by hand, in TFRecord framing with masked CRC-32C checksums.

Field numbers are those of tensorboard/compat/proto/{event,summary,tensor}.proto.
"""

from __future__ import annotations

import struct
import zlib

# ---------------------------------------------------------------------------- CRC-32C


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord framing uses."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, its masked CRC."""
    n = struct.pack("<Q", len(data))
    return n + struct.pack("<I", _masked(n)) + data + struct.pack("<I", _masked(data))


# ---------------------------------------------------------------------------- protobuf


def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # NOTE: negative int64 values take ten bytes, as protobuf's
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def f_varint(field: int, v: int) -> bytes:
    return _key(field, 0) + _varint(int(v))


def f_double(field: int, v: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", float(v))


def f_float(field: int, v: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", float(v))


def f_bytes(field: int, v: bytes | str) -> bytes:
    v = v.encode("utf-8") if isinstance(v, str) else v
    return _key(field, 2) + _varint(len(v)) + v


def f_packed_doubles(field: int, values) -> bytes:
    return f_bytes(field, b"".join(struct.pack("<d", float(x)) for x in values))


# ---------------------------------------------------------------------------- messages


def event(wall_time: float, step: int | None = None, summary: bytes | None = None,
          file_version: str | None = None) -> bytes:  # fmt: skip
    """An ``Event``: wall_time (1), step (2), file_version (3), summary (5)."""
    out = f_double(1, wall_time)
    if step is not None:
        out += f_varint(2, step)
    if file_version is not None:
        out += f_bytes(3, file_version)
    if summary is not None:
        out += f_bytes(5, summary)
    return out


def summary(*values: bytes) -> bytes:
    """A ``Summary`` of ``Summary.Value`` messages (field 1)."""
    return b"".join(f_bytes(1, v) for v in values)


def scalar_value(tag: str, value: float) -> bytes:
    """``Summary.Value`` with tag (1) and simple_value (2)."""
    return f_bytes(1, tag) + f_float(2, value)


def histogram_value(tag: str, lo, hi, num, total, squares, limits, counts) -> bytes:
    """``Summary.Value`` with a ``HistogramProto`` (field 5)."""
    histo = (f_double(1, lo) + f_double(2, hi) + f_double(3, num) + f_double(4, total)
             + f_double(5, squares) + f_packed_doubles(6, limits)
             + f_packed_doubles(7, counts))  # fmt: skip
    return f_bytes(1, tag) + f_bytes(5, histo)


def image_value(tag: str, height: int, width: int, channels: int, png: bytes) -> bytes:
    """``Summary.Value`` with an ``Image`` (field 4)."""
    img = f_varint(1, height) + f_varint(2, width) + f_varint(3, channels) + f_bytes(4, png)
    return f_bytes(1, tag) + f_bytes(4, img)


def text_value(tag: str, text: str) -> bytes:
    """``Summary.Value`` for the text plugin: metadata (9) naming it, a string tensor (8)."""
    meta = f_bytes(1, f_bytes(1, "text"))  # SummaryMetadata.plugin_data.plugin_name
    shape = f_bytes(2, f_varint(1, 1))  # TensorShapeProto.dim { size: 1 }
    tensor = f_varint(1, 7) + f_bytes(2, shape) + f_bytes(8, text)  # DT_STRING, string_val
    return f_bytes(1, tag) + f_bytes(9, meta) + f_bytes(8, tensor)


# ---------------------------------------------------------------------------- PNG


def png(pixels) -> bytes:
    """A PNG of an (H, W, C) uint8 array (C 1, 3 or 4), with only the standard library."""
    h, w, c = pixels.shape
    kind = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + pixels[i].tobytes() for i in range(h))

    def chunk(name: bytes, data: bytes) -> bytes:
        body = name + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    head = struct.pack(">IIBBBBB", w, h, 8, kind, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))  # fmt: skip
