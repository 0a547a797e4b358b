"""Builders of small real data files (IDX, images, video) for the data tests."""

import gzip
import struct

import numpy as np


def write_idx(path, arr: np.ndarray, code: int = 0x08, gz: bool = False) -> str:
    """An IDX file written byte by byte: magic, big-endian dims, big-endian data."""
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    data = bytes([0, 0, code, arr.ndim])
    data += b"".join(struct.pack(">I", d) for d in arr.shape)
    data += arr.astype(big).tobytes()
    path = str(path)
    with gzip.open(path, "wb") if gz else open(path, "wb") as f:
        f.write(data)
    return path


def image_array(k: int, size=(8, 6)) -> np.ndarray:
    """A deterministic RGB test pattern of height size[0], width size[1]."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx * 20 + k * 7) % 256, (yy * 25 + k * 3) % 256,
                     np.full((h, w), (k * 40) % 256)], -1).astype(np.uint8)  # fmt: skip


def write_video(path, frames: list, fps: int = 10, codec: str = "mpeg4") -> str:
    """Encode frames (H, W, 3) uint8 into a video file with PyAV."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"qscale": "1"} if codec == "mpeg4" else {"crf": "0"}
        s.codec_context.gop_size = 4
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return str(path)


def gray_frames(n: int, base: int, size=(16, 16)) -> list:
    """Frame k is uniformly grey with value base + 10 k: easy to recognise after decoding."""
    return [np.full(size + (3,), base + 10 * k, np.uint8) for k in range(n)]
