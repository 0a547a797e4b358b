"""describe(): what `manygrad train --data PATH` reports for each format."""

import os

import numpy as np
import pytest

import manygrad.data  # noqa: F401
from datafiles import gray_frames, image_array, write_idx, write_video
from manygrad.data import describe


def test_image_folder_summary(image_folder):
    ds, text = describe(image_folder[0])
    assert type(ds).__name__ == "ImageFolder"
    assert "samples: 6" in text and "cat: 3, dog: 3" in text and "(3, 8, 6)" in text


def test_mixed_size_folder_is_resized(image_folder):
    from PIL import Image

    Image.fromarray(image_array(1, (4, 4))).save(os.path.join(image_folder[0], "cat", "z.png"))
    ds, text = describe(image_folder[0])
    assert "resized to 8x6" in text and ds[6][0].shape == (3, 8, 6)


def test_idx_pair_summary(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((6, 4, 4), np.uint8), gz=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([0, 1, 1, 2, 2, 2], np.uint8),
              gz=True)  # fmt: skip
    for path in (tmp_path, tmp_path / "train-images-idx3-ubyte.gz"):
        ds, text = describe(path)
        assert type(ds).__name__ == "IDX" and "IDX pair" in text
        assert "0: 1, 1: 2, 2: 3" in text and "(1, 4, 4)" in text


def test_array_files(tmp_path):
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")
    x, y = np.ones((5, 2, 3), np.float32), np.array([1, 0, 1, 1, 0])
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    _, text = describe(tmp_path / "x.npy", y_key=str(tmp_path / "y.npy"))
    assert "samples: 5" in text and "0: 2, 1: 3" in text and "float32" in text
    np.savez(tmp_path / "d.npz", images=x, labels=y)
    _, text = describe(tmp_path / "d.npz")
    assert "npz" in text and "0: 2, 1: 3" in text
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["a/inp"], f["a/out"] = x, y
    with pytest.raises(ValueError, match=r"pass --x KEY"):
        describe(tmp_path / "d.h5")
    ds, text = describe(tmp_path / "d.h5", x_key="a/inp", y_key="a/out")
    assert "hdf5" in text and "sample shape: (2, 3)" in text and len(ds) == 5
    g = zarr.open_group(str(tmp_path / "d.zarr"), mode="w")
    g.create_array("x", shape=x.shape, dtype="f4")[:] = x
    g.create_array("y", shape=y.shape, dtype="i8")[:] = y
    _, text = describe(tmp_path / "d.zarr")
    assert "zarr" in text and "0: 2, 1: 3" in text


def test_video_folder_and_unknown(tmp_path):
    pytest.importorskip("av")
    os.makedirs(tmp_path / "v" / "jump")
    write_video(tmp_path / "v" / "jump" / "a.mp4", gray_frames(16, 10))
    ds, text = describe(tmp_path / "v")
    assert "video folder" in text and "jump: 2" in text and "(8, 3, 16, 16)" in text
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="unknown data format"):
        describe(tmp_path / "notes.txt")


def test_idx_file_finds_its_own_labels(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 2, 2), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 2, 2), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.ones(2, np.uint8))
    ds, text = describe(tmp_path / "t10k-images-idx3-ubyte")
    assert len(ds) == 2 and "1: 2" in text
