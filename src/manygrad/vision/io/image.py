"""Image files to and from uint8 (C, H, W) tensors (``torchvision.io``), through Pillow.

torchvision decodes with libpng / libjpeg-turbo / libwebp / giflib; Pillow wraps the same
libraries, so decoded pixels agree. Where torchvision converts colours itself, this module
does the same arithmetic: ``GRAY`` from a colour PNG uses libpng's ``rgb_to_gray`` with
torchvision's weights (0.2989, 0.587), and ``GRAY`` from a JPEG is the decoder's luma
channel; 16-bit PNGs give uint16 tensors. Encoded bytes differ from libpng's and
libjpeg's (chunk order, filters), the pixels they hold do not.
"""

from __future__ import annotations

import io
import os
import uuid
import warnings
from enum import Enum

import numpy as np

from .._pil import Image, ImageOps, ImageSequence

__all__ = ["ImageReadMode", "decode_gif", "decode_image", "decode_jpeg", "decode_png",
           "decode_webp", "encode_jpeg", "encode_png", "read_file", "read_image",
           "write_file", "write_jpeg", "write_png"]  # fmt: skip


class ImageReadMode(Enum):
    """The channels to decode to: ``UNCHANGED`` (as stored), ``GRAY``, ``GRAY_ALPHA``,
    ``RGB``, ``RGB_ALPHA`` (alias ``RGBA``). Strings such as ``"RGB"`` work too."""

    UNCHANGED = 0
    GRAY = 1
    GRAY_ALPHA = 2
    RGB = 3
    RGB_ALPHA = 4
    RGBA = RGB_ALPHA


def _mode(mode) -> ImageReadMode:
    if isinstance(mode, ImageReadMode):
        return mode
    if isinstance(mode, str):
        try:
            return ImageReadMode[mode.upper()]
        except KeyError:
            pass
    raise ValueError(
        f"unknown image read mode {mode!r}; use one of {[m.name for m in ImageReadMode]} "
        "(an ImageReadMode or its name)"
    )


def _tensor(a: np.ndarray):
    from manygrad.tensor import Tensor

    return Tensor._wrap(np.ascontiguousarray(a))


def _host(t, what: str) -> np.ndarray:
    from manygrad import backend
    from manygrad.tensor import Tensor

    if isinstance(t, Tensor):
        return backend.to_numpy(t._data)
    if isinstance(t, np.ndarray):
        return t
    raise TypeError(f"{what}: expected a tensor, got {type(t).__name__}")


def _encoded(input, what: str) -> bytes:
    a = _host(input, what)
    if a.dtype != np.uint8:
        raise RuntimeError(f"{what}: expected a uint8 tensor of the file's bytes, got {a.dtype}")
    if a.ndim != 1 or a.size == 0:
        raise RuntimeError(
            f"{what}: expected a non empty 1-dimensional tensor of the file's bytes, got shape "
            f"{tuple(a.shape)}; read it with read_file(path)"
        )
    return a.tobytes()


def _open(data: bytes, what: str) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:
        raise RuntimeError(f"{what}: the bytes are not a readable image ({e})") from e
    return img


def _png_gray(rgb: np.ndarray) -> np.ndarray:
    # NOTE: libpng's png_set_rgb_to_gray(1, 0.2989, 0.587) in 15-bit fixed point, truncated;
    # equal channels pass through unchanged
    r, g, b = (rgb[..., k].astype(np.int64) for k in range(3))
    y = (9794 * r + 19234 * g + 3740 * b) >> 15
    return np.where((r == g) & (g == b), r, y).astype(rgb.dtype)


def _array(img: Image.Image) -> np.ndarray:
    """The (H, W, C) array of a decoded image, palettes and 1-bit grey expanded."""
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA" if "transparency" in img.info or img.mode == "PA" else "RGB")
    elif img.mode == "1":  # NOTE: libpng expands 1-bit grey to 0 / 255
        img = img.convert("L")
    elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "La"):
        img = img.convert("RGB" if img.mode != "La" else "LA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(img).astype(np.uint16)[..., None]  # 16-bit grey: uint16
    a = np.asarray(img)
    return a[..., None] if a.ndim == 2 else a


_PNG16 = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}


def _png16(data: bytes, apply_exif_orientation: bool) -> np.ndarray | None:
    """A 16-bit colour PNG as uint16 (H, W, C), as torchvision decodes it; None for others.

    Pillow keeps only the high byte of 16-bit colour samples; decoding the file a second
    time with the little-endian unpacker hands over the low bytes instead (grey + alpha,
    4 bytes a pixel, is read once as the 4 raw bytes of an RGBA pixel).
    """
    halves = []
    for k in range(2):
        img = Image.open(io.BytesIO(data))
        tile = img.tile[0] if len(img.tile) == 1 else None
        raw = tile.args if tile is not None and isinstance(tile.args, str) else None
        if raw == "LA;16B":
            img._mode, img.tile = "RGBA", [tile._replace(args="RGBA")]
        elif raw not in _PNG16:
            return None
        elif k:
            img.tile = [tile._replace(args=_PNG16[raw])]
        try:
            img.load()
        except (ValueError, OSError) as e:  # a Pillow without these unpackers: 8 bits
            warnings.warn(f"decode_png: 16-bit colour read as 8-bit ({e})", stacklevel=3)
            return None
        halves.append(_array(ImageOps.exif_transpose(img) if apply_exif_orientation else img))
        if raw == "LA;16B":
            halves = [halves[0][..., 0::2], halves[0][..., 1::2]]
            break
    return (halves[0].astype(np.uint16) << 8) | halves[1]


def _channels(a: np.ndarray, mode: ImageReadMode) -> np.ndarray:
    """``a`` (H, W, C) converted to ``mode`` as torchvision's decoders convert."""
    c = a.shape[2]
    if mode is ImageReadMode.UNCHANGED:
        return a
    color = a[..., :3] if c >= 3 else a[..., :1]
    alpha = a[..., c - 1 :] if c in (2, 4) else None
    if mode in (ImageReadMode.GRAY, ImageReadMode.GRAY_ALPHA):
        gray = _png_gray(color)[..., None] if color.shape[2] == 3 else color
        if mode is ImageReadMode.GRAY:
            return gray
        return np.concatenate([gray, alpha if alpha is not None else _opaque(gray)], axis=2)
    rgb = color if color.shape[2] == 3 else np.repeat(color, 3, axis=2)
    if mode is ImageReadMode.RGB:
        return rgb
    return np.concatenate([rgb, alpha if alpha is not None else _opaque(rgb)], axis=2)


def _opaque(like: np.ndarray) -> np.ndarray:
    return np.full(like.shape[:2] + (1,), np.iinfo(like.dtype).max, like.dtype)


def _decode(data: bytes, mode, apply_exif_orientation: bool, what: str, formats=None):
    mode = _mode(mode)
    img = _open(data, what)
    if formats is not None and img.format not in formats:
        raise RuntimeError(
            f"{what}: the bytes hold a {img.format} image, not {' or '.join(formats)}; "
            "use decode_image for any format"
        )
    if img.format == "JPEG" and mode in (ImageReadMode.GRAY, ImageReadMode.GRAY_ALPHA):
        # NOTE: libjpeg decodes a colour JPEG to grey as its luma channel (no RGB round trip)
        img = Image.open(io.BytesIO(data))
        img.draft("L", img.size)
        img.load()
    a = _png16(data, apply_exif_orientation) if img.format == "PNG" else None
    if a is None:
        a = _array(ImageOps.exif_transpose(img) if apply_exif_orientation else img)
    hwc = _channels(a, mode)
    return _tensor(hwc.transpose(2, 0, 1))


def read_file(path: str | os.PathLike):
    """The bytes of a file as a 1-D uint8 tensor.

    Example:
        >>> data = read_file("cat.jpg"); img = decode_image(data)
    """
    with open(os.fspath(path), "rb") as f:
        return _tensor(np.frombuffer(f.read(), np.uint8).copy())


def write_file(filename: str | os.PathLike, data) -> None:
    """Write a 1-D uint8 tensor's bytes to ``filename`` (through a temporary file, renamed
    once complete)."""
    a = _host(data, "write_file")
    if a.dtype != np.uint8 or a.ndim != 1:
        raise RuntimeError(
            f"write_file: expected a 1-dimensional uint8 tensor, got {a.dtype} of shape "
            f"{tuple(a.shape)}"
        )
    filename = os.fspath(filename)
    folder = os.path.dirname(filename) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"write_file: no folder {folder} to write {filename} in; create it first"
        )
    tmp = os.path.join(folder, f".{uuid.uuid4().hex}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(a.tobytes())
        os.replace(tmp, filename)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def decode_png(input, mode=ImageReadMode.UNCHANGED, apply_exif_orientation: bool = False):
    """Decode PNG bytes (a 1-D uint8 tensor) to a (C, H, W) tensor: uint8, or uint16 for a
    16-bit PNG.

    Args:
        input: the file's bytes, e.g. ``read_file(path)``.
        mode: an ``ImageReadMode`` or its name (default ``UNCHANGED``).
        apply_exif_orientation: rotate / flip as the EXIF orientation says (default False).
    """
    return _decode(_encoded(input, "decode_png"), mode, apply_exif_orientation, "decode_png",
                   ("PNG",))  # fmt: skip


def decode_jpeg(input, mode=ImageReadMode.UNCHANGED, device="cpu",
                apply_exif_orientation: bool = False):  # fmt: skip
    """Decode JPEG bytes (a 1-D uint8 tensor, or a list of them) to uint8 (C, H, W)
    tensors on ``device`` (decoded on the CPU).

    Args:
        input: the file's bytes, or a list of such tensors.
        mode: an ``ImageReadMode`` or its name (default ``UNCHANGED``).
        device: where the results go (default ``"cpu"``).
        apply_exif_orientation: rotate / flip as the EXIF orientation says (default False).
    """
    if isinstance(input, list):
        if not input:
            raise ValueError("Input list must contain at least one element")
        return [decode_jpeg(x, mode, device, apply_exif_orientation) for x in input]
    out = _decode(_encoded(input, "decode_jpeg"), mode, apply_exif_orientation, "decode_jpeg",
                  ("JPEG", "MPO"))  # fmt: skip
    return out if str(device) == "cpu" else out.to(device)


def decode_webp(input, mode=ImageReadMode.UNCHANGED):
    """Decode WebP bytes to a uint8 (C, H, W) tensor (``UNCHANGED``, ``RGB`` or ``RGBA``)."""
    return _decode(_encoded(input, "decode_webp"), mode, False, "decode_webp", ("WEBP",))


def decode_gif(input):
    """Decode GIF bytes to a uint8 RGB tensor: (3, H, W), or (N, 3, H, W) for N frames."""
    img = _open(_encoded(input, "decode_gif"), "decode_gif")
    if img.format != "GIF":
        raise RuntimeError(f"decode_gif: the bytes hold a {img.format} image, not GIF")
    frames = [np.asarray(f.convert("RGB")).transpose(2, 0, 1) for f in ImageSequence.Iterator(img)]
    return _tensor(frames[0] if len(frames) == 1 else np.stack(frames))


def decode_image(input, mode=ImageReadMode.UNCHANGED, apply_exif_orientation: bool = False):
    """Decode an image (JPEG, PNG, GIF, WebP, ...) from its bytes or its path to a (C, H, W)
    tensor (uint8; uint16 for 16-bit PNGs).

    Args:
        input: a 1-D uint8 tensor of the file's bytes, or a path.
        mode: an ``ImageReadMode`` or its name (default ``UNCHANGED``).
        apply_exif_orientation: rotate / flip as the EXIF orientation says (default False).

    Example:
        >>> img = decode_image("cat.png", mode="RGB")   # (3, H, W) uint8
    """
    if isinstance(input, (str, os.PathLike)):
        input = read_file(input)
    data = _encoded(input, "decode_image")
    if data[:6] in (b"GIF87a", b"GIF89a") and _mode(mode) in (
        ImageReadMode.UNCHANGED,
        ImageReadMode.RGB,
    ):
        return decode_gif(input)  # NOTE: RGB frames, as torchvision decodes GIFs
    return _decode(data, mode, apply_exif_orientation, "decode_image")


def read_image(path: str | os.PathLike, mode=ImageReadMode.UNCHANGED,
               apply_exif_orientation: bool = False):  # fmt: skip
    """``decode_image(read_file(path), mode, apply_exif_orientation)``."""
    return decode_image(read_file(path), mode, apply_exif_orientation=apply_exif_orientation)


def _image_of(input, what: str, channels=(1, 3)) -> Image.Image:
    a = _host(input, what)
    if a.dtype != np.uint8:
        raise RuntimeError(f"{what}: expected a uint8 image tensor, got {a.dtype}")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in channels:
        raise RuntimeError(
            f"{what}: expected a (C, H, W) image with C in {channels}, got shape {tuple(a.shape)}"
        )
    hwc = np.ascontiguousarray(a.transpose(1, 2, 0))
    return Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc)


def encode_png(input, compression_level: int = 6):
    """Encode a uint8 (C, H, W) image (C = 1 or 3; 2 and 4 carry alpha) as PNG bytes, a
    1-D uint8 tensor.

    Args:
        input: the image tensor.
        compression_level: zlib level from 0 to 9 (default 6).
    """
    if not 0 <= compression_level <= 9:
        raise ValueError(
            f"encode_png: compression_level must be between 0 and 9, got {compression_level}"
        )
    buf = io.BytesIO()
    _image_of(input, "encode_png", (1, 2, 3, 4)).save(buf, "PNG", compress_level=compression_level)
    return _tensor(np.frombuffer(buf.getvalue(), np.uint8).copy())


def encode_jpeg(input, quality: int = 75):
    """Encode a uint8 (C, H, W) image (C = 1 or 3), or a list of them, as JPEG bytes.

    Args:
        input: the image tensor, or a list of them.
        quality: from 1 to 100 (default 75).
    """
    if quality < 1 or quality > 100:
        raise ValueError("Image quality should be a positive number between 1 and 100")
    if isinstance(input, list):
        if not input:
            raise ValueError("encode_jpeg requires at least one input tensor when a list is passed")
        return [encode_jpeg(x, quality) for x in input]
    buf = io.BytesIO()
    _image_of(input, "encode_jpeg").save(buf, "JPEG", quality=quality)
    return _tensor(np.frombuffer(buf.getvalue(), np.uint8).copy())


def write_png(input, filename: str | os.PathLike, compression_level: int = 6) -> None:
    """Save a uint8 (C, H, W) or (H, W) image as a PNG file."""
    write_file(filename, encode_png(input, compression_level))


def write_jpeg(input, filename: str | os.PathLike, quality: int = 75) -> None:
    """Save a uint8 (C, H, W) image (C = 1 or 3) as a JPEG file."""
    write_file(filename, encode_jpeg(input, quality))
