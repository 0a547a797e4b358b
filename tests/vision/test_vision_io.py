"""manygrad.vision.io (torchvision.io's image functions) against Pillow + NumPy.

torchvision's own io functions are compiled C++ ops (``torchvision::image``) that PyPI's
CUDA wheel cannot load on this CPU-only oracle (``_has_image_ops()`` is False), so the
reference here is Pillow decoding the same bytes, plus libpng's grey conversion written
out; where torchvision's ops do load, the tests compare with them as well.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

import manygrad as mg
from manygrad.vision import io as vio
from manygrad.vision.io import ImageReadMode

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def tv_io(tv):
    """torchvision.io when its compiled image ops load, else None."""
    from torchvision.io import image

    return tv.io if image._has_image_ops() else None


def png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def as_tensor(b: bytes):
    return mg.from_numpy(np.frombuffer(b, np.uint8).copy())


def chw(img: Image.Image) -> np.ndarray:
    a = np.asarray(img)
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)).copy()


def libpng_gray(rgb_chw: np.ndarray) -> np.ndarray:
    """png_set_rgb_to_gray(1, 0.2989, 0.587): 15-bit fixed point, truncated."""
    r, g, b = rgb_chw[:3].astype(np.int64)
    rc, gc = 29890 * 32768 // 100000, 58700 * 32768 // 100000
    y = (rc * r + gc * g + (32768 - rc - gc) * b) >> 15
    return np.where((r == g) & (g == b), r, y).astype(np.uint8)[None]


def images():
    rgba = Image.fromarray(RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8))
    p = rgba.convert("RGB").quantize(16)
    p_t = p.copy()
    p_t.info["transparency"] = 3
    return {
        "L": rgba.convert("L"),
        "LA": rgba.convert("LA"),
        "RGB": rgba.convert("RGB"),
        "RGBA": rgba,
        "P": p,
        "P+tRNS": p_t,
        "1": rgba.convert("1"),
    }


EXPECT = {  # the channels each mode yields, from each stored colour type (as libpng's)
    "L": dict(UNCHANGED=1, GRAY=1, GRAY_ALPHA=2, RGB=3, RGB_ALPHA=4),
    "LA": dict(UNCHANGED=2, GRAY=1, GRAY_ALPHA=2, RGB=3, RGB_ALPHA=4),
    "RGB": dict(UNCHANGED=3, GRAY=1, GRAY_ALPHA=2, RGB=3, RGB_ALPHA=4),
    "RGBA": dict(UNCHANGED=4, GRAY=1, GRAY_ALPHA=2, RGB=3, RGB_ALPHA=4),
    "1": dict(UNCHANGED=1, GRAY=1, GRAY_ALPHA=2, RGB=3, RGB_ALPHA=4),
}


@pytest.mark.parametrize("kind", sorted(images()))
@pytest.mark.parametrize("mode", ["UNCHANGED", "GRAY", "GRAY_ALPHA", "RGB", "RGB_ALPHA"])
def test_decode_png_modes(tv_io, kind, mode):
    img = images()[kind]
    data = png_bytes(img)
    ours = vio.decode_png(as_tensor(data), ImageReadMode[mode])
    assert isinstance(ours, mg.Tensor) and ours.dtype == mg.uint8
    got = ours.numpy()
    stored = Image.open(io.BytesIO(data))
    stored.load()
    if stored.mode == "P":  # decoded as their RGB(A) colours
        stored = stored.convert("RGBA" if "transparency" in stored.info else "RGB")
    if stored.mode == "1":  # 1-bit grey: 0 / 255
        stored = stored.convert("L")
    ref = chw(stored)
    c = ref.shape[0]
    has_alpha = c in (2, 4)
    color = ref[:3] if c >= 3 else ref[:1]
    alpha = ref[-1:] if has_alpha else np.full((1,) + ref.shape[1:], 255, np.uint8)
    gray = libpng_gray(color) if color.shape[0] == 3 else color
    rgb = color if color.shape[0] == 3 else np.repeat(color, 3, 0)
    want = {
        "UNCHANGED": ref,
        "GRAY": gray,
        "GRAY_ALPHA": np.concatenate([gray, alpha]),
        "RGB": rgb,
        "RGB_ALPHA": np.concatenate([rgb, alpha]),
    }[mode]
    np.testing.assert_array_equal(got, want)
    if kind in EXPECT:
        assert got.shape[0] == EXPECT[kind][mode]
    if mode == "RGB":
        np.testing.assert_array_equal(got, chw(Image.open(io.BytesIO(data)).convert("RGB")))
    if mode == "GRAY" and kind == "RGB":  # libpng's weights, within 1 of Pillow's 601 luma
        diff = got.astype(int) - chw(img.convert("L")).astype(int)
        assert np.abs(diff).max() <= 1
    if tv_io is not None:
        import torch

        theirs = tv_io.decode_png(torch.from_numpy(np.frombuffer(data, np.uint8).copy()), mode)
        np.testing.assert_array_equal(got, theirs.numpy())
    # names work as the enum does, and decode_image and read_image agree
    np.testing.assert_array_equal(vio.decode_image(as_tensor(data), mode.lower()).numpy(), got)


def test_sixteen_bit_png_is_uint16(tmp_path):
    a = RNG.integers(0, 65536, (4, 6), dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = vio.read_image(tmp_path / "g16.png")
    assert out.dtype == mg.uint16 and out.shape == (1, 4, 6)
    np.testing.assert_array_equal(out.numpy()[0], a)


def png16(a: np.ndarray, ctype: int) -> bytes:
    """A 16-bit PNG of ``a`` (H, W, C), its rows filtered None / Sub / Up in turn."""
    import struct
    import zlib

    h, w, c = a.shape
    rows = a.astype(">u2").view(np.uint8).reshape(h, w * c * 2).astype(np.int64)
    bpp, out = c * 2, []
    for i, row in enumerate(rows):
        kind = i % 3
        if kind == 1:  # Sub: minus the byte one pixel left
            row = row - np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
        elif kind == 2:  # Up: minus the byte above
            row = row - rows[i - 1]
        out.append(bytes([kind]) + (row % 256).astype(np.uint8).tobytes())

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    head = struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head)
            + chunk(b"IDAT", zlib.compress(b"".join(out))) + chunk(b"IEND", b""))  # fmt: skip


@pytest.mark.parametrize("ctype,c", [(2, 3), (6, 4), (4, 2)])
def test_sixteen_bit_colour_png_is_uint16(ctype, c):
    a = RNG.integers(0, 65536, (5, 7, c), dtype=np.uint16)
    a[0, 0] = 0xFF01  # a high and a low byte that differ
    data = as_tensor(png16(a, ctype))
    out = vio.decode_png(data)
    assert out.dtype == mg.uint16
    np.testing.assert_array_equal(out.numpy(), a.transpose(2, 0, 1))
    rgba = vio.decode_image(data, "RGB_ALPHA").numpy()
    assert rgba.dtype == np.uint16 and rgba.shape[0] == 4
    if c == 3:
        assert (rgba[3] == 65535).all()
    else:
        np.testing.assert_array_equal(rgba[3], a[..., -1])


def test_decode_jpeg_equals_pillow_and_gray_is_luma(tv_io):
    rgb = Image.fromarray(RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    data = jpeg_bytes(rgb, quality=90)
    t = as_tensor(data)
    np.testing.assert_array_equal(vio.decode_jpeg(t).numpy(), chw(Image.open(io.BytesIO(data))))
    ycc = Image.open(io.BytesIO(data))
    ycc.draft("YCbCr", ycc.size)  # libjpeg's output before its colour conversion
    gray = vio.decode_jpeg(t, mode=ImageReadMode.GRAY).numpy()
    np.testing.assert_array_equal(gray, chw(ycc)[:1])
    ga = vio.decode_jpeg(t, mode="GRAY_ALPHA").numpy()
    np.testing.assert_array_equal(ga, np.concatenate([gray, np.full_like(gray, 255)]))
    both = vio.decode_jpeg([t, t])
    assert len(both) == 2 and both[1].shape == (3, 16, 24)
    gray_file = jpeg_bytes(rgb.convert("L"))
    g3 = vio.decode_jpeg(as_tensor(gray_file), mode="RGB").numpy()
    np.testing.assert_array_equal(g3, np.repeat(chw(Image.open(io.BytesIO(gray_file))), 3, 0))
    if tv_io is not None:
        import torch

        theirs = tv_io.decode_jpeg(torch.from_numpy(np.frombuffer(data, np.uint8).copy()))
        np.testing.assert_array_equal(vio.decode_jpeg(t).numpy(), theirs.numpy())


def test_exif_orientation():
    img = Image.fromarray(RNG.integers(0, 256, (4, 9, 3), dtype=np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotated 90 degrees clockwise
    for write in (jpeg_bytes, png_bytes):
        data = as_tensor(write(img, exif=exif.tobytes()))
        assert vio.decode_image(data).shape == (3, 4, 9)
        turned = vio.decode_image(data, apply_exif_orientation=True)
        assert turned.shape == (3, 9, 4)
        if write is png_bytes:  # lossless: the pixels are the image turned clockwise
            np.testing.assert_array_equal(turned.numpy(), np.rot90(chw(img), -1, (1, 2)))


def test_encode_and_write_png_round_trip(tmp_path):
    for c in (1, 3, 4):
        a = RNG.integers(0, 256, (c, 6, 5), dtype=np.uint8)
        enc = vio.encode_png(mg.from_numpy(a))
        assert enc.dtype == mg.uint8 and enc.ndim == 1
        np.testing.assert_array_equal(chw(Image.open(io.BytesIO(enc.numpy().tobytes()))), a)
        vio.write_png(mg.from_numpy(a), tmp_path / f"x{c}.png", compression_level=0)
        np.testing.assert_array_equal(vio.read_image(tmp_path / f"x{c}.png").numpy(), a)
    flat = mg.from_numpy(np.zeros((1, 64, 64), np.uint8))
    assert vio.encode_png(flat, 9).numel() < vio.encode_png(flat, 0).numel()
    hw = RNG.integers(0, 256, (3, 4), dtype=np.uint8)  # (H, W) is a grey image
    np.testing.assert_array_equal(vio.decode_png(vio.encode_png(mg.from_numpy(hw))).numpy()[0], hw)
    assert sorted(os.listdir(tmp_path)) == ["x1.png", "x3.png", "x4.png"]  # no temporaries


def test_encode_and_write_jpeg(tmp_path):
    smooth = np.broadcast_to(np.arange(32, dtype=np.uint8)[None, None] * 8, (3, 32, 32)).copy()
    t = mg.from_numpy(smooth)
    lo, hi = vio.encode_jpeg(t, 10), vio.encode_jpeg(t, 95)
    assert lo.numel() < hi.numel()
    ref = jpeg_bytes(Image.fromarray(smooth.transpose(1, 2, 0)), quality=95)
    assert hi.numpy().tobytes() == ref  # Pillow's libjpeg, torchvision's defaults
    back = vio.decode_jpeg(hi).numpy().astype(int)
    assert np.abs(back - smooth).mean() < 2
    vio.write_jpeg(t, tmp_path / "s.jpg", quality=95)
    assert (tmp_path / "s.jpg").read_bytes() == ref
    assert len(vio.encode_jpeg([t, t])) == 2
    with pytest.raises(ValueError, match="between 1 and 100"):
        vio.encode_jpeg(t, 0)


def test_read_and_write_file(tmp_path):
    data = RNG.integers(0, 256, 1000, dtype=np.uint8)
    vio.write_file(tmp_path / "blob", mg.from_numpy(data))
    assert (tmp_path / "blob").read_bytes() == data.tobytes()
    back = vio.read_file(str(tmp_path / "blob"))
    assert back.dtype == mg.uint8 and back.shape == (1000,)
    np.testing.assert_array_equal(back.numpy(), data)
    assert os.listdir(tmp_path) == ["blob"]
    with pytest.raises(FileNotFoundError, match="no folder .*nowhere"):
        vio.write_png(mg.zeros((1, 2, 2), dtype=mg.uint8), tmp_path / "nowhere" / "x.png")


def test_gif_and_webp(tmp_path):
    frames = [Image.fromarray(RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    gif = vio.read_image(tmp_path / "a.gif")
    assert gif.shape == (3, 3, 6, 5)
    with Image.open(tmp_path / "a.gif") as im:
        im.seek(1)
        np.testing.assert_array_equal(gif.numpy()[1], chw(im.convert("RGB")))
    frames[0].save(tmp_path / "one.gif")
    one = vio.read_image(tmp_path / "one.gif")
    assert one.shape == (3, 6, 5)
    np.testing.assert_array_equal(one.numpy(), chw(Image.open(tmp_path / "one.gif").convert("RGB")))
    assert vio.read_image(tmp_path / "one.gif", "GRAY").shape == (1, 6, 5)
    frames[0].save(tmp_path / "a.webp", lossless=True)
    np.testing.assert_array_equal(vio.decode_webp(vio.read_file(tmp_path / "a.webp")).numpy(),
                                  chw(frames[0]))  # fmt: skip


def test_bad_input_errors():
    png = as_tensor(png_bytes(images()["RGB"]))
    with pytest.raises(RuntimeError, match="expected a uint8 tensor"):
        vio.decode_png(mg.zeros(10))
    with pytest.raises(RuntimeError, match="non empty 1-dimensional"):
        vio.decode_image(mg.zeros((2, 5), dtype=mg.uint8))
    with pytest.raises(RuntimeError, match="not a readable image"):
        vio.decode_image(mg.from_numpy(np.arange(50, dtype=np.uint8)))
    with pytest.raises(RuntimeError, match="PNG image, not JPEG"):
        vio.decode_jpeg(png)
    with pytest.raises(ValueError, match="unknown image read mode 'CMYK'"):
        vio.decode_image(png, "CMYK")
    with pytest.raises(RuntimeError, match=r"C in \(1, 3\)"):
        vio.encode_jpeg(mg.zeros((4, 3, 3), dtype=mg.uint8))
    with pytest.raises(ValueError, match="compression_level"):
        vio.encode_png(mg.zeros((1, 3, 3), dtype=mg.uint8), 10)
    assert ImageReadMode.RGBA is ImageReadMode.RGB_ALPHA and ImageReadMode.RGB.value == 3
