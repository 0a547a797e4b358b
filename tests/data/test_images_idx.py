"""IDX files written byte by byte, image folders/lists with Pillow, and transforms."""

import json
import os
import warnings

import numpy as np
import pytest

import manygrad as mg
import manygrad.data  # noqa: F401
from datafiles import image_array, write_idx
from manygrad.data import IDX, DataLoader, ImageFolder, ImageList, SkippedSamplesWarning
from manygrad.data import transforms as T
from manygrad.errors import ShapeError

PIL = pytest.importorskip("PIL.Image")


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_pair_end_to_end(tmp_path, gz):
    imgs = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3) * 4
    labs = np.array([3, 1, 4, 1, 5], np.uint8)
    ext = ".gz" if gz else ""
    ds = IDX(write_idx(tmp_path / f"i-images-idx3-ubyte{ext}", imgs, gz=gz),
             write_idx(tmp_path / f"i-labels-idx1-ubyte{ext}", labs, gz=gz))  # fmt: skip
    assert len(ds) == 5 and ds.classes == [1, 3, 4, 5]
    x, y = ds[2]
    assert x.shape == (1, 4, 3) and y == 4
    np.testing.assert_allclose(x.numpy()[0], imgs[2] / 255.0, rtol=1e-6)
    for nw in (0, 2):
        xb, yb = next(iter(DataLoader(ds, batch_size=5, num_workers=nw)))
        assert xb.shape == (5, 1, 4, 3) and yb.dtype == mg.int64
        assert yb.tolist() == labs.tolist()
        np.testing.assert_allclose(xb.numpy()[:, 0], imgs / 255.0, rtol=1e-6)


def test_idx_other_dtypes_and_transform(tmp_path):
    a = np.array([[1.5, -2.0], [3.25, 0.0]], np.float32)
    ds = IDX(write_idx(tmp_path / "f-images-idx3", a[:, None, :], code=0x0D),
             transform=lambda v: v * 2)  # fmt: skip
    np.testing.assert_array_equal(ds[1], a[1][None] * 2)
    s = np.array([-300, 7], np.int16)
    assert mg.data.sources.read_idx(write_idx(tmp_path / "s", s, code=0x0B)).tolist() == [-300, 7]


def test_idx_bad_files(tmp_path):
    imgs = np.zeros((4, 2, 2), np.uint8)
    good = write_idx(tmp_path / "a-images-idx3", imgs)
    with pytest.raises(ShapeError, match="4 images.*3 labels"):
        IDX(good, write_idx(tmp_path / "a-labels-idx1", np.zeros(3, np.uint8)))
    raw = open(good, "rb").read()
    cut = tmp_path / "cut-images-idx3"
    cut.write_bytes(raw[:-3])
    with pytest.raises(ValueError, match=r"cut-images-idx3 is truncated.*\(4, 2, 2\)"):
        IDX(str(cut))
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x01\x02\x03\x04hello")
    with pytest.raises(ValueError, match="not an IDX file"):
        IDX(str(junk))


# ---------------------------------------------------------------- image folders


@pytest.mark.parametrize("nw", [0, 2])
def test_image_folder_png_values(image_folder, nw):
    root, arrays = image_folder
    ds = ImageFolder(root)
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert len(ds) == 6 and ds.targets == [0, 0, 0, 1, 1, 1]
    xs, ys = [], []
    for x, y in DataLoader(ds, batch_size=4, num_workers=nw):
        xs.append(x.numpy())
        ys += y.tolist()
    x = np.concatenate(xs)
    assert x.shape == (6, 3, 8, 6) and x.dtype == np.float32 and ys == [0, 0, 0, 1, 1, 1]
    for k, (path, _) in enumerate(ds.samples):
        np.testing.assert_allclose(x[k], arrays[path][0].transpose(2, 0, 1) / 255.0, atol=1e-6)


def test_jpeg_and_formats_decode(tmp_path):
    root = tmp_path / "r"
    for ext in ("jpg", "bmp", "webp", "png"):
        os.makedirs(root / ext)
        PIL.fromarray(np.full((6, 6, 3), 120, np.uint8)).save(root / ext / f"a.{ext}")
    ds = ImageFolder(root)
    for k in range(4):
        x, _ = ds[k]
        assert np.abs(x.numpy() * 255 - 120).max() <= 3  # lossy JPEG/WebP: close values


def test_image_errors_before_training(tmp_path, image_folder):
    root, _ = image_folder
    PIL.fromarray(image_array(0, (5, 5))).save(os.path.join(root, "dog", "odd.png"))
    with pytest.raises(ShapeError, match=r"different sizes.*odd.png.*Resize"):
        ImageFolder(root)
    ds = ImageFolder(root, transform=T.Compose([T.Resize((4, 4)), T.ToTensor()]))
    assert ds[6][0].shape == (3, 4, 4)
    empty = tmp_path / "e"
    os.makedirs(empty / "a")
    os.makedirs(empty / "b")
    PIL.fromarray(image_array(0)).save(empty / "a" / "x.png")
    with pytest.raises(FileNotFoundError, match=r"\['b'\].*hold no images"):
        ImageFolder(empty)
    with pytest.raises(FileNotFoundError, match="no class folders"):
        ImageFolder(empty / "b")


def test_corrupt_image_named_and_skipped(image_folder):
    root, _ = image_folder
    bad = os.path.join(root, "cat", "1.png")
    data = open(bad, "rb").read()
    with open(bad, "wb") as f:
        f.write(data[: len(data) // 2])  # truncated PNG
    ds = ImageFolder(root)
    with pytest.raises(ValueError, match=r"cannot decode image .*cat/1.png \(sample index 1\)"):
        list(DataLoader(ds, batch_size=2, num_workers=2))
    ld = DataLoader(ds, batch_size=2, num_workers=2, on_error="skip")
    with pytest.warns(SkippedSamplesWarning, match=r"skipped 1 sample.*index 1.*1.png"):
        n = sum(len(y) for _, y in ld)
    assert n == 5


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_image_list(image_folder, tmp_path, kind):
    root, arrays = image_folder
    paths = sorted(arrays)
    rel = [os.path.relpath(p, root) for p in paths]
    names = ["cat" if arrays[p][1] == 0 else "dog" for p in paths]
    if kind == "csv":
        f = tmp_path / "list.csv"
        f.write_text("path,label\n" + "".join(f"{r},{n}\n" for r, n in zip(rel, names)))
    else:
        f = tmp_path / "list.json"
        f.write_text(json.dumps([{"path": r, "label": n} for r, n in zip(rel, names)]))
    ds = ImageList(f, root=root)
    assert ds.classes == ["cat", "dog"] and len(ds) == 6
    x, y = ds[4]
    np.testing.assert_allclose(x.numpy(), arrays[paths[4]][0].transpose(2, 0, 1) / 255, atol=1e-6)
    assert y == arrays[paths[4]][1]
    bad = tmp_path / "bad.csv"
    bad.write_text("missing.png,0\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        ImageList(bad)


# ---------------------------------------------------------------- transforms


def test_transforms_values():
    a = image_array(3, (8, 10))
    img = PIL.fromarray(a)
    t = T.ToTensor()(img).numpy()
    np.testing.assert_allclose(t, a.transpose(2, 0, 1) / 255.0, atol=1e-7)
    assert T.CenterCrop(4)(img).size == (4, 4)
    np.testing.assert_array_equal(np.asarray(T.CenterCrop((4, 6))(img)), a[2:6, 2:8])
    assert T.Resize(4)(img).size == (5, 4)  # smaller edge to 4, aspect kept (w, h)
    np.testing.assert_array_equal(np.asarray(T.Resize((4, 5))(img)),
                                  np.asarray(img.resize((5, 4), 2)))  # fmt: skip
    np.testing.assert_array_equal(np.asarray(T.RandomHorizontalFlip(p=1.0)(img)), a[:, ::-1])
    assert T.RandomHorizontalFlip(p=0.0)(img) is img
    norm = T.Normalize([0.5, 0.5, 0.5], [0.25, 0.5, 1.0])(T.ToTensor()(img)).numpy()
    ref = (a.transpose(2, 0, 1) / 255.0 - 0.5) / np.array([0.25, 0.5, 1.0])[:, None, None]
    np.testing.assert_allclose(norm, ref, rtol=1e-5, atol=1e-6)
    tt = T.ToTensor()(img)
    crop = T.RandomCrop(6, padding=2)(tt)
    assert crop.shape == (3, 6, 6)
    flipped = T.RandomHorizontalFlip(1.0)(tt).numpy()
    np.testing.assert_array_equal(flipped, tt.numpy()[..., ::-1])
    assert T.Resize((4, 4))(tt).shape == (3, 4, 4)
    with pytest.raises(ValueError, match="larger than the image"):
        T.RandomCrop(20)(img)


def test_random_crop_is_a_window_of_the_padded_image():
    x = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    for _ in range(5):
        c = T.RandomCrop(3)(x)
        hits = [(i, j) for i in range(4) for j in range(4)
                if np.array_equal(x[0, i : i + 3, j : j + 3], c[0])]  # fmt: skip
        assert len(hits) == 1


def test_augmentation_repeats_for_a_seed_whatever_the_workers(image_folder):
    root, _ = image_folder
    tf = T.Compose([T.RandomCrop(4), T.RandomHorizontalFlip(), T.ToTensor()])
    runs = []
    for nw in (0, 2):
        ds = ImageFolder(root, transform=tf)
        runs.append([x.numpy() for x, _ in DataLoader(ds, batch_size=3, num_workers=nw, seed=5)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_no_pillow_message(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("PIL"):
            raise ImportError("no PIL")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"pip install 'manygrad\[images\]'"):
        T.require_pillow()


def test_images_quiet(image_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(DataLoader(ImageFolder(image_folder[0]), batch_size=6))
