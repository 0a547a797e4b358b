"""Hostile data files and folders: walks end, declared sizes are checked before reading,
image sizes are chosen from the data, decompression bombs are refused."""

import gzip
import os
import struct
import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad.data.sources import limits
from manygrad.data.sources.walk import NotRegularFileError, check_regular, find_files


def _png(path, size=(8, 8), color=0):
    from PIL import Image

    Image.new("RGB", size, (color, color, color)).save(path)


# ------------------------------------------------------------------ walks


def test_symlink_loop_ends_and_is_named(tmp_path):
    d = tmp_path / "cat"
    (d / "sub").mkdir(parents=True)
    _png(d / "a.png")
    os.symlink(d, d / "sub" / "back")  # sub/back -> cat: a loop
    with pytest.warns(UserWarning, match="loop back"):
        files = find_files(str(d), (".png",))
    assert files == [str(d / "a.png")]


def test_a_file_reached_twice_through_links_counts_once(tmp_path):
    d = tmp_path / "cat"
    d.mkdir()
    _png(d / "a.png")
    os.symlink(d / "a.png", d / "b.png")
    with pytest.warns(UserWarning, match="reached twice"):
        assert find_files(str(d), (".png",)) == [str(d / "a.png")]


def test_fifo_and_socket_are_skipped_with_a_warning(tmp_path):
    import socket

    d = tmp_path / "cat"
    d.mkdir()
    _png(d / "a.png")
    os.mkfifo(d / "pipe.png")
    s = socket.socket(socket.AF_UNIX)
    short = f"/tmp/mg-sock-{os.getpid()}.png"
    try:
        s.bind(short)
        os.symlink(short, d / "sock.png")
        with pytest.warns(UserWarning, match="FIFO") as rec:
            assert find_files(str(d), (".png",)) == [str(d / "a.png")]
        assert "socket" in str(rec[0].message)
    finally:
        s.close()
        os.unlink(short)
    with pytest.raises(NotRegularFileError, match="FIFO"):
        check_regular(str(d / "pipe.png"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_files_are_named(tmp_path):
    d = tmp_path / "cat"
    d.mkdir()
    _png(d / "a.png")
    _png(d / "b.png")
    os.chmod(d / "b.png", 0)
    with pytest.warns(UserWarning, match="b.png"):
        assert find_files(str(d), (".png",)) == [str(d / "a.png")]


def test_image_folder_with_a_loop_and_a_fifo_loads(tmp_path):
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        _png(tmp_path / c / "1.png", color=10)
    os.symlink(tmp_path, tmp_path / "cat" / "loop")
    os.mkfifo(tmp_path / "dog" / "2.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = mg.data.ImageFolder(str(tmp_path))
    assert len(ds) == 2


# ------------------------------------------------------------------ declared sizes


def _idx(path, dims, payload=b"", gz=False):
    head = bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    data = head + payload
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_that_declares_more_than_it_holds(tmp_path, gz):
    p = tmp_path / ("x-idx3-ubyte" + (".gz" if gz else ""))
    _idx(p, (1000, 28, 28), b"\0" * 100, gz)
    with pytest.raises(ValueError, match="truncated"):
        mg.data.sources.read_idx(str(p))


def test_idx_dims_that_overflow_int64(tmp_path):
    p = tmp_path / "x-idx3-ubyte"
    _idx(p, (2**32 - 1,) * 4, b"\0" * 16)
    with pytest.raises(ValueError, match="truncated"):
        mg.data.sources.read_idx(str(p))


def test_gzip_bomb_idx_is_refused_before_inflating(tmp_path, monkeypatch):
    p = tmp_path / "x-idx3-ubyte.gz"
    _idx(p, (4096, 64, 64), b"\0" * (4096 * 64 * 64), gz=True)
    monkeypatch.setattr(limits, "available_memory", lambda: 1 << 20)
    with pytest.raises(MemoryError, match="needs 16.0 MiB in memory"):
        mg.data.sources.read_idx(str(p))


def test_hdf5_with_unwritten_chunks(tmp_path):
    h5py = pytest.importorskip("h5py")
    p = tmp_path / "d.h5"
    with h5py.File(p, "w") as f:
        x = f.create_dataset("x", shape=(10**9, 64), chunks=(1000, 64), dtype="f4")
        x[:1000] = 1.0
        f.create_dataset("y", data=np.zeros(10**9 // 10**6, np.int64))
    with pytest.raises(MemoryError, match="1 of its 1000000 chunks were ever written"):
        mg.data.HDF5(str(p), x="x")


def test_zarr_with_unwritten_chunks(tmp_path):
    zarr = pytest.importorskip("zarr")
    p = tmp_path / "d.zarr"
    z = zarr.open(str(p), mode="w", shape=(10**8, 16), chunks=(10**4, 16), dtype="f4")
    z[:10] = 1.0
    with pytest.raises(MemoryError, match="chunks were ever written"):
        mg.data.Zarr(str(p))


def test_data_larger_than_memory_suggests_stream(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match="--stream"):
        limits.check_fits(10_000, "big.npy")
    limits.check_fits(100, "small.npy")


def test_npz_that_inflates_beyond_memory(tmp_path, monkeypatch, capsys):
    from manygrad.cli.main import main

    p = tmp_path / "bomb.npz"
    np.savez_compressed(p, x=np.zeros((4000, 256), np.float32), y=np.zeros(4000, np.int64))
    monkeypatch.setattr(limits, "available_memory", lambda: 1 << 20)
    assert main(["train", "--data", str(p), "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and "in memory" in err


# ------------------------------------------------------------------ images


def _folder(root, sizes):
    for i, (c, size) in enumerate(sizes):
        (root / c).mkdir(exist_ok=True)
        _png(root / c / f"{i:03d}.png", size)


def test_mixed_sizes_resize_to_the_most_common(tmp_path):
    # the first file by name is the odd one out: the old choice (first file) would be 5x3
    _folder(tmp_path, [("a", (3, 5))] + [("a", (8, 6))] * 3 + [("b", (8, 6))] * 3)
    ds, text = mg.data.describe(str(tmp_path))
    assert "resized to 6x8" in text and "most common" in text
    assert tuple(ds[0][0].shape) == (3, 6, 8)


def test_image_size_option_wins(tmp_path):
    _folder(tmp_path, [("a", (8, 8))] * 2 + [("b", (8, 8))] * 2)
    ds, text = mg.data.describe(str(tmp_path), image_size=(4, 5))
    assert tuple(ds[0][0].shape) == (3, 4, 5) and "--image-size" in text


def test_decompression_bomb_is_refused_naming_the_file(tmp_path, monkeypatch):
    from PIL import Image

    _folder(tmp_path, [("a", (64, 64)), ("b", (64, 64))])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 now counts as a bomb
    ds = mg.data.ImageFolder(str(tmp_path), check_sizes=False)
    with pytest.raises(ValueError, match=r"000\.png.*decompression bomb"):
        ds[0]
    with pytest.raises(ValueError, match="decompression bomb"):
        mg.data.ImageFolder(str(tmp_path))


def test_fifos_named_like_data_files_do_not_block(tmp_path):
    imgs = tmp_path / "train-images-idx3-ubyte"
    os.mkfifo(imgs)
    with pytest.raises(NotRegularFileError, match="FIFO"):
        mg.data.sources.read_idx(str(imgs))
    np.save(tmp_path / "x.npy", np.zeros((4, 2), np.float32))
    os.mkfifo(tmp_path / "y.npy")
    with pytest.raises(NotRegularFileError, match="FIFO"):
        mg.data.Npy(str(tmp_path / "x.npy"), str(tmp_path / "y.npy"))
