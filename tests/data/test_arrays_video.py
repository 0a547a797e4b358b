"""Scientific arrays (.npy, .npz, HDF5, Zarr, windows) and video clips (PyAV)."""

import os

import numpy as np
import pytest

import manygrad as mg
import manygrad.data  # noqa: F401
from datafiles import gray_frames, write_video
from manygrad.data import HDF5, DataLoader, Npy, Npz, VideoFolder, VideoList, Zarr
from manygrad.data import device_transforms as DT
from manygrad.data.sources import ArrayDataset
from manygrad.errors import DTypeError, ShapeError

X = np.arange(10 * 3 * 4, dtype=np.float32).reshape(10, 3, 4)
Y = np.arange(10, dtype=np.int32) % 3


def _all(loader):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in loader])
    return np.concatenate(xs), np.concatenate(ys)


def test_npy_memmap_end_to_end(tmp_path):
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    ds = Npy(tmp_path / "x.npy", tmp_path / "y.npy")
    assert isinstance(ds.x.get(), np.memmap)
    for kw in ({}, {"shuffle": True, "seed": 0}, {"num_workers": 2, "worker_type": "process"}):
        x, y = _all(DataLoader(ds, batch_size=4, **kw))
        order = np.argsort(y * 100 + x[:, 0, 0])  # undo any shuffle
        np.testing.assert_array_equal(x[order], X[np.argsort(Y * 100 + X[:, 0, 0])])
        assert y.dtype == np.int64
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))  # contiguous batch: one slice read
    np.testing.assert_array_equal(xb.numpy(), X[:4])
    assert yb.tolist() == Y[:4].tolist()


def test_npz_and_keys(tmp_path):
    np.savez(tmp_path / "d.npz", images=X, labels=Y)
    ds = Npz(tmp_path / "d.npz", x="images", y="labels")
    x, y = _all(DataLoader(ds, batch_size=3, num_workers=2))
    np.testing.assert_array_equal(x, X)
    assert y.tolist() == Y.tolist()
    with pytest.raises(KeyError, match=r"no array 'nope'.*images"):
        Npz(tmp_path / "d.npz", x="nope", y="labels")


def test_hdf5_process_workers_open_their_own_handle(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("group/frames", data=X, chunks=(2, 3, 4))
        f.create_dataset("group/energy", data=Y.astype(np.float32))
    ds = HDF5(tmp_path / "d.h5", x="group/frames", y="group/energy")
    ds.x.get()  # a handle in the main process must not travel to the workers
    ld = DataLoader(ds, batch_size=3, shuffle=True, seed=1, num_workers=2, worker_type="process")
    x, y = _all(ld)
    order = np.argsort(x[:, 0, 0])
    np.testing.assert_array_equal(x[order], X)
    np.testing.assert_array_equal(y[order], Y.astype(np.float32))
    with pytest.raises(KeyError, match=r"no dataset 'frames'.*group/frames"):
        HDF5(tmp_path / "d.h5", x="frames")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match=r"cannot open .*bad.h5"):
        HDF5(tmp_path / "bad.h5", x="a")


def test_zarr_lazy_chunks(tmp_path):
    zarr = pytest.importorskip("zarr")
    g = zarr.open_group(str(tmp_path / "d.zarr"), mode="w")
    g.create_array("x", shape=X.shape, chunks=(2, 3, 4), dtype=X.dtype)[:] = X
    g.create_array("y", shape=Y.shape, chunks=(5,), dtype=Y.dtype)[:] = Y
    ds = Zarr(tmp_path / "d.zarr", x="x", y="y")
    x, y = _all(DataLoader(ds, batch_size=4, num_workers=2))
    np.testing.assert_array_equal(x, X)
    assert y.tolist() == Y.tolist()
    single = zarr.open_array(str(tmp_path / "one.zarr"), mode="w", shape=(4, 2), dtype="f4")
    single[:] = 1.5
    assert Zarr(tmp_path / "one.zarr")[3].tolist() == [1.5, 1.5]


def test_windows_patches_and_targets():
    vol = np.arange(6 * 8, dtype=np.float32).reshape(6, 8)
    ds = ArrayDataset(vol, window=(4, 4), stride=(2, 4))
    assert len(ds) == 2 * 2
    np.testing.assert_array_equal(ds[3], vol[2:6, 4:8])
    seg = (vol > 20).astype(np.int64)
    ds = ArrayDataset(vol, seg, window=(4, 4), stride=(2, 4))  # dense targets windowed too
    x, y = ds[1]
    np.testing.assert_array_equal(y, seg[0:4, 4:8])
    imgs = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    ds = ArrayDataset(imgs, window=(None, 2, 2), target=lambda w, o: float(w.mean()))
    assert len(ds) == 8
    x, y = ds[5]  # image 1, patch (0, 1)
    np.testing.assert_array_equal(x, imgs[1, 0:2, 2:4])
    assert y == imgs[1, 0:2, 2:4].mean()
    series = np.arange(20, dtype=np.float32)[:, None] * np.ones(3, np.float32)
    ds = ArrayDataset(series, np.arange(7), window=(8,), stride=(2,))
    assert len(ds) == 7 and ds[6][0][0, 0] == 12 and ds[6][1] == 6


def test_array_errors_before_training(tmp_path):
    with pytest.raises(ShapeError, match="10 samples.*9 targets"):
        ArrayDataset(X, Y[:9])
    with pytest.raises(DTypeError, match="float128.*dtype='float32'"):
        ArrayDataset(np.zeros((4, 2), np.longdouble))
    ds = ArrayDataset(np.ones((4, 2), np.uint16), dtype="float32")
    assert ds[0].dtype == np.float32
    with pytest.raises(ShapeError, match="does not fit axis 0"):
        ArrayDataset(X, window=(20,))
    np.save(tmp_path / "t.npy", X)
    raw = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cannot read .*t.npy"):
        Npy(tmp_path / "t.npy")


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
def test_device_transforms(device):
    rng = np.random.default_rng(0)
    a = rng.random((6, 3, 5, 5)).astype(np.float32)
    x = mg.tensor(a, device=device)
    n = DT.Normalize([0.5, 0.4, 0.3], [0.2, 0.1, 0.5])(x)
    ref = (a - np.array([0.5, 0.4, 0.3])[:, None, None]) / np.array([0.2, 0.1, 0.5])[:, None, None]
    np.testing.assert_allclose(mg.backend.to_numpy(n._data), ref, rtol=1e-5, atol=1e-6)
    assert n.device == device
    f = mg.backend.to_numpy(DT.RandomHorizontalFlip(0.5)(x)._data)
    for k in range(6):
        assert np.array_equal(f[k], a[k]) or np.array_equal(f[k], a[k, ..., ::-1])
    c = mg.backend.to_numpy(DT.RandomCrop(3, padding=1)(x)._data)
    assert c.shape == (6, 3, 3, 3)
    pad = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for k in range(6):
        assert any(np.array_equal(c[k], pad[k, :, i : i + 3, j : j + 3])
                   for i in range(5) for j in range(5))  # fmt: skip
    u8 = mg.tensor((a * 255).astype(np.uint8), device=device)
    assert DT.ToFloat()(u8).dtype == mg.float32
    if device == "fakegpu":
        mg.backend.fake_stats.reset()
        DT.RandomCrop(3)(DT.RandomHorizontalFlip()(x))
        assert mg.backend.fake_stats.syncs == 0  # no host sync on the device path


# ---------------------------------------------------------------- video


@pytest.fixture
def video_folder(tmp_path):
    pytest.importorskip("av")
    root = tmp_path / "vids"
    for c, base in (("run", 20), ("walk", 140)):
        os.makedirs(root / c)
        write_video(root / c / "a.mp4", gray_frames(12, base))
    return root


def _gray(clip):
    return np.round(np.asarray(clip).mean(axis=(1, 2, 3)) * 255).astype(int)


def test_video_clips_values_and_labels(video_folder):
    ds = VideoFolder(video_folder, clip_len=4)
    assert ds.classes == ["run", "walk"] and len(ds) == 6  # 3 clips of 4 per 12-frame video
    clip, y = ds[1]
    assert clip.shape == (4, 3, 16, 16) and clip.dtype == np.float32 and y == 0
    np.testing.assert_allclose(_gray(clip), [60, 70, 80, 90], atol=4)  # frames 4..7
    clip, y = ds[5]
    np.testing.assert_allclose(_gray(clip), [220, 230, 240, 250], atol=4)
    assert y == 1
    ds = VideoFolder(video_folder, clip_len=3, stride=2, step_between_clips=1)
    np.testing.assert_allclose(_gray(ds[2][0]), [40, 60, 80], atol=4)  # frames 2, 4, 6
    ds = VideoFolder(video_folder, clip_len=3, frame_rate=5)  # 10 fps -> every 2nd frame
    np.testing.assert_allclose(_gray(ds[0][0]), [20, 40, 60], atol=4)
    x, yb = next(iter(DataLoader(VideoFolder(video_folder, clip_len=4, size=(8, 8),
                                             mean=[0.5] * 3, std=[0.5] * 3, layout="CTHW"),
                                 batch_size=6, num_workers=2)))  # fmt: skip
    assert x.shape == (6, 3, 4, 8, 8) and yb.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(x.numpy()[0, 0, 0, 0, 0], (20 / 255 - 0.5) / 0.5, atol=0.04)


def test_video_list_and_errors(video_folder, tmp_path):
    f = tmp_path / "v.csv"
    f.write_text("run/a.mp4,3\nwalk/a.mp4,7\n")
    ds = VideoList(f, root=video_folder, clip_len=6)
    assert len(ds) == 4 and [ds[k][1] for k in range(4)] == [3, 3, 7, 7]
    write_video(video_folder / "walk" / "b.mp4", gray_frames(12, 30, size=(8, 8)))
    with pytest.raises(ShapeError, match="different frame sizes.*size="):
        VideoFolder(video_folder, clip_len=4)
    os.remove(video_folder / "walk" / "b.mp4")
    (video_folder / "walk" / "c.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match=r"cannot read video .*c.mp4"):
        VideoFolder(video_folder, clip_len=4)
    with pytest.warns(UserWarning, match="c.mp4"):
        assert len(VideoFolder(video_folder, clip_len=4, skip_unreadable=True)) == 6
    with pytest.raises(ShapeError, match="shorter than one clip"), pytest.warns(UserWarning):
        VideoFolder(video_folder, clip_len=40, skip_unreadable=True)


def test_truncated_video_names_file_and_index(video_folder):
    p = video_folder / "walk" / "a.mp4"
    raw = p.read_bytes()
    ds = VideoFolder(video_folder, clip_len=4)
    p.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ValueError, match=r"walk/a.mp4 \(sample index 5\)"):
        ds[5]


def test_shuffled_batches_from_memmap_match_per_sample_reads(tmp_path):
    np.save(tmp_path / "x.npy", X)
    ds = Npy(tmp_path / "x.npy", Y)
    idx = [7, 2, 9, 0]
    x, y = ds.get_batch(idx)
    np.testing.assert_array_equal(x, X[idx])
    assert y.dtype == np.int64 and y.tolist() == Y[idx].tolist()
    assert ArrayDataset(X, window=(1,)).get_batch([0, 1]) is None  # keeps its axis: no fast path
