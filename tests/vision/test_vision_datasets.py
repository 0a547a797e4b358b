"""manygrad.vision.datasets against torchvision's datasets reading the very same small
files, written here in torchvision's on-disk layouts (IDX, CIFAR pickles, image folders,
SVHN .mat)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import pickle
import shutil
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

import manygrad as mg
from manygrad.vision import datasets
from manygrad.vision.datasets.utils import DatasetDownloadError

RNG = np.random.default_rng(0)


def write_idx(path, a: np.ndarray, gz: bool = False) -> None:
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    head = bytes([0, 0, codes[a.dtype.type], a.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in a.shape
    )
    body = head + a.astype(a.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(body)


def mnist_files(root, name, n=7, gz=False, prefixes=("train", "t10k")):
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, prefix in enumerate(prefixes):
        imgs = RNG.integers(0, 256, (n + k, 28, 28), dtype=np.uint8)
        labels = RNG.integers(0, 10, n + k).astype(np.uint8)
        ext = ".gz" if gz else ""
        write_idx(raw / f"{prefix}-images-idx3-ubyte{ext}", imgs, gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{ext}", labels, gz)
        out[prefix] = (imgs, labels)
    return out


def same_item(a, b):
    (ia, ya), (ib, yb) = a, b
    assert type(ya) is type(yb) and ya == yb
    assert ia.mode == ib.mode and ia.size == ib.size
    np.testing.assert_array_equal(np.asarray(ia), np.asarray(ib))


class Named:
    """A transform with a fixed repr, the same for both libraries."""

    def __init__(self, name):
        self.name = name

    def __call__(self, x):
        return x

    def __repr__(self):
        return f"{self.name}(\n  inner=1\n)"


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST", "KMNIST"])
@pytest.mark.parametrize("train", [True, False])
def test_mnist_family_equals_torchvision(tv, tmp_path, name, train):
    mnist_files(tmp_path, name)
    ours = getattr(datasets, name)(str(tmp_path), train=train)
    theirs = getattr(tv.datasets, name)(str(tmp_path), train=train)
    assert len(ours) == len(theirs) and isinstance(ours.data, mg.Tensor)
    assert ours.data.dtype == mg.uint8 and ours.targets.dtype == mg.int64
    np.testing.assert_array_equal(ours.data.numpy(), theirs.data.numpy())
    np.testing.assert_array_equal(ours.targets.numpy(), theirs.targets.numpy())
    assert ours.classes == theirs.classes and ours.class_to_idx == theirs.class_to_idx
    for i in (0, 3, len(ours) - 1):
        same_item(ours[i], theirs[i])
    assert repr(ours) == repr(theirs)
    assert ours.raw_folder == theirs.raw_folder


def test_mnist_transforms_and_repr(tv, tmp_path):
    mnist_files(tmp_path, "MNIST")
    kw = dict(transform=Named("T"), target_transform=lambda y: y + 100)
    ours, theirs = datasets.MNIST(tmp_path, **kw), tv.datasets.MNIST(tmp_path, **kw)
    assert ours[2][1] == theirs[2][1] >= 100
    kw["target_transform"] = Named("U")
    ours, theirs = datasets.MNIST(tmp_path, **kw), tv.datasets.MNIST(tmp_path, **kw)
    assert repr(ours) == repr(theirs) and "Target transform: U(" in repr(ours)


def test_mnist_reads_gz_as_downloaded(tmp_path):
    files = mnist_files(tmp_path, "MNIST", gz=True)
    ds = datasets.MNIST(tmp_path, train=False)
    imgs, labels = files["t10k"]
    np.testing.assert_array_equal(ds.data.numpy(), imgs)
    assert [ds[i][1] for i in range(len(ds))] == labels.tolist()


def test_mnist_missing_files_error(tv, tmp_path):
    with pytest.raises(RuntimeError) as theirs:
        tv.datasets.MNIST(tmp_path)
    with pytest.raises(RuntimeError) as ours:
        datasets.MNIST(tmp_path)
    assert str(ours.value).startswith(str(theirs.value))
    assert os.path.join(str(tmp_path), "MNIST", "raw") in str(ours.value)


def test_emnist_and_qmnist_equal_torchvision(tv, tmp_path):
    mnist_files(tmp_path, "EMNIST", prefixes=("emnist-letters-train", "emnist-letters-test"))
    for train in (True, False):
        ours = datasets.EMNIST(tmp_path, split="letters", train=train)
        theirs = tv.datasets.EMNIST(tmp_path, split="letters", train=train)
        assert ours.classes == theirs.classes and len(ours) == len(theirs)
        same_item(ours[1], theirs[1])
        assert repr(ours) == repr(theirs)
    with pytest.raises(ValueError, match="Unknown value 'bogus' for argument split"):
        datasets.EMNIST(tmp_path, split="bogus")

    raw = tmp_path / "QMNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "qmnist-test-images-idx3-ubyte", RNG.integers(0, 256, (10003, 3, 2), np.uint8))
    write_idx(raw / "qmnist-test-labels-idx2-int", RNG.integers(0, 99999, (10003, 8), np.int32))
    for what in ("test", "test50k"):
        for compat in (True, False):
            ours = datasets.QMNIST(tmp_path, what=what, compat=compat)
            theirs = tv.datasets.QMNIST(tmp_path, what=what, compat=compat)
            assert len(ours) == len(theirs)
            (ia, ya), (ib, yb) = ours[2], theirs[2]
            np.testing.assert_array_equal(np.asarray(ia), np.asarray(ib))
            if compat:
                assert ya == yb
            else:
                np.testing.assert_array_equal(ya.numpy(), yb.numpy())


def cifar_files(root, hundred=False):
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    names = ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    names += [] if hundred else ["test_batch"]
    for k, n in enumerate(names):
        entry = {"data": RNG.integers(0, 256, (3 + k, 3072), dtype=np.uint8)}
        entry["fine_labels" if hundred else "labels"] = RNG.integers(0, 10, 3 + k).tolist()
        with open(folder / n, "wb") as f:
            pickle.dump(entry, f)
    meta = {"fine_label_names" if hundred else "label_names": [f"c{i}" for i in range(10)]}
    with open(folder / ("meta" if hundred else "batches.meta"), "wb") as f:
        pickle.dump(meta, f)
    return folder


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar_equals_torchvision(tv, tmp_path, monkeypatch, hundred):
    cifar_files(tmp_path, hundred)
    # NOTE: torchvision hashes each batch against the real files' MD5s; these are small copies
    monkeypatch.setattr(tv.datasets.cifar, "check_integrity", lambda p, md5=None: os.path.isfile(p))
    name = "CIFAR100" if hundred else "CIFAR10"
    for train in (True, False):
        ours = getattr(datasets, name)(tmp_path, train=train)
        theirs = getattr(tv.datasets, name)(tmp_path, train=train)
        assert isinstance(ours.data, np.ndarray) and ours.data.shape == theirs.data.shape
        np.testing.assert_array_equal(ours.data, theirs.data)
        assert ours.targets == theirs.targets and isinstance(ours.targets, list)
        assert ours.classes == theirs.classes and ours.class_to_idx == theirs.class_to_idx
        for i in (0, len(ours) - 1):
            same_item(ours[i], theirs[i])
        assert repr(ours) == repr(theirs)


def test_cifar_archive_missing_and_refused_pickles(tmp_path):
    folder = cifar_files(tmp_path / "src")
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    ds = datasets.CIFAR10(tmp_path, train=False)  # the archive placed by hand is unpacked
    assert len(ds) == 8 and (tmp_path / "cifar-10-batches-py" / "test_batch").is_file()
    with pytest.raises(RuntimeError, match="Dataset not found or corrupted.*data_batch_1"):
        datasets.CIFAR10(tmp_path / "nowhere")
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": functools.partial(print)}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load functools.partial"):
        datasets.CIFAR10(tmp_path, train=False)


def image_tree(root):
    for k, cls in enumerate(["dog", "cat", "bird"]):
        (root / cls / "sub").mkdir(parents=True)
        for j in range(2 + k):
            a = RNG.integers(0, 256, (5 + j, 4 + k, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / cls / f"{j}.png")
        Image.fromarray(RNG.integers(0, 256, (6, 6), dtype=np.uint8)).save(root / cls / "g.JPG")
        Image.fromarray(RNG.integers(0, 256, (3, 3, 4), np.uint8)).save(root / cls / "sub/x.png")
        (root / cls / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()


def test_image_folder_equals_torchvision(tv, tmp_path):
    image_tree(tmp_path)
    for kw in (dict(allow_empty=True), dict(is_valid_file=lambda p: p.endswith(".png"),
                                            allow_empty=True)):  # fmt: skip
        ours, theirs = datasets.ImageFolder(tmp_path, **kw), tv.datasets.ImageFolder(tmp_path, **kw)
        assert ours.classes == theirs.classes and ours.class_to_idx == theirs.class_to_idx
        assert ours.samples == theirs.samples == ours.imgs and ours.targets == theirs.targets
        for i in range(len(ours)):
            same_item(ours[i], theirs[i])
        assert repr(ours) == repr(theirs)
    with pytest.raises(FileNotFoundError) as theirs:
        tv.datasets.ImageFolder(tmp_path)
    with pytest.raises(FileNotFoundError) as ours:
        datasets.ImageFolder(tmp_path)
    assert str(ours.value) == str(theirs.value)


def test_dataset_folder_helpers_equal_torchvision(tv, tmp_path):
    from manygrad.vision.datasets import folder

    image_tree(tmp_path)
    tvf = tv.datasets.folder
    assert folder.IMG_EXTENSIONS == tvf.IMG_EXTENSIONS
    assert folder.find_classes(tmp_path) == tvf.find_classes(tmp_path)
    c2i = {"cat": 0, "dog": 1}
    assert folder.make_dataset(str(tmp_path), c2i, extensions=".txt") == tvf.make_dataset(
        str(tmp_path), c2i, extensions=".txt"
    )
    for bad in (dict(), dict(extensions=".png", is_valid_file=bool)):
        with pytest.raises(ValueError, match="Both extensions and is_valid_file"):
            folder.make_dataset(str(tmp_path), c2i, **bad)
    kw = dict(loader=lambda p: os.path.getsize(p), extensions=(".png", ".txt"), allow_empty=True)
    ours, theirs = datasets.DatasetFolder(tmp_path, **kw), tv.datasets.DatasetFolder(tmp_path, **kw)
    assert ours.samples == theirs.samples and [ours[i] for i in range(len(ours))] == [
        theirs[i] for i in range(len(theirs))
    ]
    from manygrad.vision.datasets import utils as dutils

    for prefix in (False, True):
        assert sorted(dutils.list_dir(tmp_path, prefix)) == sorted(
            tv.datasets.utils.list_dir(str(tmp_path), prefix)
        )
        assert sorted(dutils.list_files(tmp_path / "cat", ".png", prefix)) == sorted(
            tv.datasets.utils.list_files(str(tmp_path / "cat"), ".png", prefix)
        )
    same_item((folder.default_loader(ours.samples[0][0]), 0),
              (tvf.default_loader(ours.samples[0][0]), 0))  # fmt: skip


def _x86_torch() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


# NOTE: PyTorch's CPU randn runs an AVX2 + FMA Box-Muller on x86 machines, the numbers
# FakeData reproduces; other CPUs (ARM) draw the same uniforms but round differently
x86_only = pytest.mark.skipif(not _x86_torch(), reason="PyTorch's x86 (AVX2) randn is emulated")


@x86_only
def test_torch_generator_emulation():
    import torch

    from manygrad.vision.datasets._torch_rng import randn_bytes_randint, randn_randint

    for seed in (0, 7, 2**32 + 3):
        for n in (1, 5, 15, 16, 17, 1000, 3 * 64 * 64 + 5):
            torch.manual_seed(seed)
            t, k = torch.randn(n), torch.randint(0, 13, (1,)).item()
            a, ka = randn_randint(seed, n, 13)
            np.testing.assert_array_equal(a, t.numpy())
            b, kb = randn_bytes_randint(seed, n, 13)
            np.testing.assert_array_equal(b, t.mul(255).byte().numpy())
            assert ka == kb == k


@x86_only
@pytest.mark.parametrize(
    "size,offset", [((3, 17, 9), 0), ((1, 8, 8), 5), ((3, 2, 2), 2), ((4, 5, 7), 1), ((6, 6), 0)]
)
def test_fakedata_equals_torchvision(tv, size, offset):
    import torch

    torch.manual_seed(123)
    mg.manual_seed(123)
    before_t, before_mg = torch.rand(1), mg.rand(1)
    torch.manual_seed(123)
    mg.manual_seed(123)
    ours = datasets.FakeData(size=6, image_size=size, num_classes=7, random_offset=offset)
    theirs = tv.datasets.FakeData(size=6, image_size=size, num_classes=7, random_offset=offset)
    assert len(ours) == 6
    for i in range(6):
        same_item(ours[i], theirs[i])
    # neither generator moved: FakeData draws from its own
    assert torch.rand(1).item() == before_t.item() and mg.rand(1).item() == before_mg.item()
    with pytest.raises(IndexError, match="FakeData index out of range"):
        ours[6]
    t = datasets.FakeData(size=2, image_size=size, target_transform=lambda y: y * 2)
    assert t[1][1] == tv.datasets.FakeData(2, size, target_transform=lambda y: y * 2)[1][1]
    assert repr(ours) == repr(theirs)


@x86_only
def test_fakedata_default_size_equals_torchvision(tv):
    same_item(datasets.FakeData()[7], tv.datasets.FakeData()[7])


def test_svhn_equals_torchvision(tv, tmp_path, monkeypatch):
    sio = pytest.importorskip("scipy.io")
    x = RNG.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    sio.savemat(tmp_path / "test_32x32.mat", {"X": x, "y": np.array([[10], [1], [2], [10], [9]])})
    monkeypatch.setattr(tv.datasets.svhn, "check_integrity", lambda p, md5=None: os.path.isfile(p))
    ours, theirs = datasets.SVHN(tmp_path, split="test"), tv.datasets.SVHN(tmp_path, split="test")
    np.testing.assert_array_equal(ours.labels, theirs.labels)
    for i in range(5):
        same_item(ours[i], theirs[i])
    assert repr(ours) == repr(theirs)


def test_vision_dataset_base_equals_torchvision(tv):
    class Ours(datasets.VisionDataset):
        def __len__(self):
            return 3

    class Theirs(tv.datasets.VisionDataset):
        def __len__(self):
            return 3

    for kw in (dict(), dict(root="~/data", transforms=Named("Both")),
               dict(root="r", transform=Named("T"))):  # fmt: skip
        a, b = Ours(**kw), Theirs(**kw)
        assert repr(a).replace("Ours", "X") == repr(b).replace("Theirs", "X")
        assert a.root == b.root
    with pytest.raises(ValueError, match="Only transforms or transform/target_transform"):
        Ours(transforms=Named("A"), transform=Named("B"))


# ------------------------------------------------------------------ downloads


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_mnist_download_from_mirror(tmp_path, server, capsys):
    served, url = server
    files = mnist_files(served / "src", "MNIST", gz=True)
    resources = []
    for f in sorted((served / "src" / "MNIST" / "raw").iterdir()):
        (served / f.name).write_bytes(f.read_bytes())
        resources.append((f.name, hashlib.md5(f.read_bytes()).hexdigest()))

    class Local(datasets.MNIST):
        mirrors = ["http://127.0.0.1:1/", url]  # the first one refuses: the next serves

    Local.resources = resources
    root = tmp_path / "root"
    ds = Local(root, train=True, download=True)
    np.testing.assert_array_equal(ds.data.numpy(), files["train"][0])
    raw = sorted(os.listdir(root / "Local" / "raw"))
    assert raw == sorted([n for n, _ in resources] + [n[:-3] for n, _ in resources])
    (served / resources[0][0]).unlink()  # present locally: nothing is fetched again
    Local(root, train=False, download=True)

    class Corrupt(Local):
        pass

    Corrupt.resources = [(resources[0][0], "0" * 32)]

    (served / resources[0][0]).write_bytes(b"not the data")
    with pytest.raises(DatasetDownloadError, match="MD5") as e:
        Corrupt(tmp_path / "bad", download=True)
    assert os.listdir(tmp_path / "bad" / "Corrupt" / "raw") == []  # nothing half-written
    assert url in str(e.value)


def test_download_unreachable_names_urls_and_folder(tmp_path):
    class Offline(datasets.MNIST):
        mirrors = ["http://127.0.0.1:1/a/", "http://127.0.0.1:1/b/"]

    with pytest.raises(DatasetDownloadError) as e:
        Offline(tmp_path, download=True)
    msg = str(e.value)
    raw = os.path.join(str(tmp_path), "Offline", "raw")
    assert "http://127.0.0.1:1/a/train-images-idx3-ubyte.gz" in msg
    assert "http://127.0.0.1:1/b/train-images-idx3-ubyte.gz" in msg and raw in msg
    assert os.listdir(raw) == []


def test_emnist_download_unpacks_the_zip(tmp_path, server):
    import zipfile

    served, url = server
    files = mnist_files(tmp_path / "src", "EMNIST", gz=True,
                        prefixes=("emnist-digits-train", "emnist-digits-test"))  # fmt: skip
    with zipfile.ZipFile(served / "gzip.zip", "w") as zf:
        for f in (tmp_path / "src" / "EMNIST" / "raw").iterdir():
            zf.write(f, f"gzip/{f.name}")

    class Local(datasets.EMNIST):
        pass

    Local.url, Local.md5 = (
        url + "gzip.zip",
        hashlib.md5((served / "gzip.zip").read_bytes()).hexdigest(),
    )
    ds = Local(tmp_path / "root", split="digits", train=False, download=True)
    np.testing.assert_array_equal(ds.data.numpy(), files["emnist-digits-test"][0])
    raw = tmp_path / "root" / "Local" / "raw"
    assert (raw / "emnist-digits-train-labels-idx1-ubyte").is_file() and not (raw / "gzip").exists()


def test_cifar_download_unreachable_names_url_and_place(tmp_path):
    class Offline(datasets.CIFAR10):
        url = "http://127.0.0.1:1/cifar-10-python.tar.gz"

    with pytest.raises(OSError) as e:
        Offline(tmp_path, download=True)
    assert Offline.url in str(e.value)
    assert os.path.join(str(tmp_path), "cifar-10-python.tar.gz") in str(e.value)
    assert os.listdir(tmp_path) == []


def test_mnist_reads_torchvisions_legacy_processed_files(tmp_path):
    torch = pytest.importorskip("torch")
    folder = tmp_path / "MNIST" / "processed"
    folder.mkdir(parents=True)
    data = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    torch.save((data, torch.arange(5)), folder / "training.pt")
    torch.save((data[:2], torch.arange(2)), folder / "test.pt")
    ds = datasets.MNIST(tmp_path)
    assert len(ds) == 5 and ds[3][1] == 3 and len(datasets.MNIST(tmp_path, train=False)) == 2
    np.testing.assert_array_equal(np.asarray(ds[4][0]), data[4].numpy())


def test_under_the_import_hook(tmp_path):
    import subprocess
    import sys
    import textwrap

    mnist_files(tmp_path, "MNIST")
    code = f"""
        import manygrad.compat as c; c.install()
        import torch, torchvision
        from torchvision import datasets
        from torchvision.datasets.folder import IMG_EXTENSIONS, default_loader
        from torchvision.datasets.utils import download_url, check_integrity
        from torchvision.io.image import ImageReadMode
        from torchvision.utils import make_grid
        import manygrad.vision as v
        assert datasets.MNIST is v.datasets.MNIST and ImageReadMode is v.io.ImageReadMode
        ds = datasets.MNIST({str(tmp_path)!r})
        assert isinstance(ds, torch.utils.data.Dataset)
        x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=list)))[0]
        print(type(x).__name__, make_grid(torch.rand(3, 1, 4, 4)).shape)
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Image", "torch.Size([3,", "8,", "20])"]


def test_stl10_equals_torchvision(tv, tmp_path, monkeypatch):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    sizes = {"train": 12, "test": 5, "unlabeled": 4}
    for name, n in sizes.items():
        RNG.integers(0, 256, n * 3 * 96 * 96, dtype=np.uint8).tofile(folder / f"{name}_X.bin")
        if name != "unlabeled":
            RNG.integers(1, 11, n, dtype=np.uint8).tofile(folder / f"{name}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    (folder / "fold_indices.txt").write_text("\n".join(" ".join(map(str, RNG.permutation(12)[:4]))
                                                      for _ in range(10)) + "\n")  # fmt: skip
    monkeypatch.setattr(tv.datasets.stl10, "check_integrity", lambda p, md5=None: os.path.isfile(p))
    for split, folds in (("train", None), ("train", 3), ("test", None), ("unlabeled", None),
                         ("train+unlabeled", 1)):  # fmt: skip
        ours = datasets.STL10(tmp_path, split=split, folds=folds)
        theirs = tv.datasets.STL10(tmp_path, split=split, folds=folds)
        assert len(ours) == len(theirs) and ours.classes == theirs.classes
        np.testing.assert_array_equal(ours.labels, theirs.labels)
        for i in (0, len(ours) - 1):
            same_item(ours[i], theirs[i])
        assert repr(ours) == repr(theirs)
    with pytest.raises(ValueError, match=r"range \[0, 10\)"):
        datasets.STL10(tmp_path, folds=10)
    (folder / "test_y.bin").unlink()
    with pytest.raises(RuntimeError, match="Dataset not found or corrupted.*test_y.bin"):
        datasets.STL10(tmp_path, split="test")


def test_voc_equals_torchvision(tv, tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for d in ("JPEGImages", "SegmentationClass", "Annotations", "ImageSets/Segmentation",
              "ImageSets/Main"):  # fmt: skip
        (voc / d).mkdir(parents=True)
    names = ["2008_000001", "2008_000002"]
    for k, name in enumerate(names):
        Image.fromarray(RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(
            voc / "JPEGImages" / f"{name}.jpg"
        )
        mask = Image.fromarray(RNG.integers(0, 21, (12, 10), dtype=np.uint8)).convert("P")
        mask.save(voc / "SegmentationClass" / f"{name}.png")
        objects = "".join(
            f"<object><name>c{j}</name><difficult>0</difficult><bndbox><xmin>{j}</xmin>"
            f"<ymin>1</ymin><xmax>5</xmax><ymax>6</ymax></bndbox></object>"
            for j in range(k + 1)
        )
        (voc / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>10</width>"
            f"<height>12</height></size>{objects}</annotation>"
        )
    for sub in ("Segmentation", "Main"):
        (voc / "ImageSets" / sub / "val.txt").write_text("\n".join(names) + "\n")
    both = Named("Both")
    for cls in ("VOCSegmentation", "VOCDetection"):
        ours = getattr(datasets, cls)(tmp_path, image_set="val")
        theirs = getattr(tv.datasets, cls)(tmp_path, image_set="val")
        assert ours.images == theirs.images and ours.targets == theirs.targets
        for i in range(2):
            (io_, to), (it, tt) = ours[i], theirs[i]
            np.testing.assert_array_equal(np.asarray(io_), np.asarray(it))
            if cls == "VOCDetection":
                assert to == tt and isinstance(to["annotation"]["object"], list)
            else:
                assert to.mode == tt.mode == "P"
                np.testing.assert_array_equal(np.asarray(to), np.asarray(tt))
        assert repr(ours) == repr(theirs)
        wrapped = getattr(datasets, cls)(tmp_path, image_set="val", transforms=both)
        assert repr(wrapped) == repr(getattr(tv.datasets, cls)(tmp_path, image_set="val",
                                                               transforms=both))  # fmt: skip
    with pytest.raises(RuntimeError, match="Dataset not found or corrupted"):
        datasets.VOCSegmentation(tmp_path, year="2007")
    with pytest.raises(ValueError, match="Unknown value 'test' for argument image_set"):
        datasets.VOCSegmentation(tmp_path, image_set="test")


def test_usps_equals_torchvision(tv, tmp_path):
    import bz2

    for name, n in (("usps.bz2", 6), ("usps.t.bz2", 3)):
        vals = RNG.uniform(-1, 1, (n, 256)).astype(np.float32)
        vals[0, :4] = [-1, 1, 0, 0.5]
        lines = [
            f"{RNG.integers(1, 11)} " + " ".join(f"{j + 1}:{v:.6f}" for j, v in enumerate(row))
            for row in vals
        ]
        (tmp_path / name).write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    for train in (True, False):
        ours, theirs = datasets.USPS(tmp_path, train=train), tv.datasets.USPS(tmp_path, train=train)
        np.testing.assert_array_equal(ours.data, theirs.data)
        assert ours.targets == theirs.targets and len(ours) == len(theirs)
        same_item(ours[0], theirs[0])
        assert repr(ours) == repr(theirs)
    with pytest.raises(RuntimeError, match="Dataset not found"):
        datasets.USPS(tmp_path / "none")


def celeba_files(root, n=7):
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        Image.fromarray(RNG.integers(0, 256, (9, 8, 3), dtype=np.uint8)).save(
            folder / "img_align_celeba" / name
        )
    parts = [0, 1, 2, 0, 0, 2, 1][:n]

    def table(path, header, cols, values):
        lines = [str(n)] + ([" ".join(header)] if header else [])
        lines += [f"{name} " + "  ".join(str(v) for v in row) for name, row in zip(names, values)]
        (folder / path).write_text("\n".join(lines[0 if header else 1 :]) + "\n")

    table("list_eval_partition.txt", None, 1, [[p] for p in parts])
    table("identity_CelebA.txt", None, 1, RNG.integers(1, 100, (n, 1)).tolist())
    table("list_bbox_celeba.txt", ["image_id", "x_1", "y_1", "width", "height"], 4,
          RNG.integers(0, 200, (n, 4)).tolist())  # fmt: skip
    table("list_landmarks_align_celeba.txt", [f"l{i}" for i in range(10)], 10,
          RNG.integers(0, 200, (n, 10)).tolist())  # fmt: skip
    attrs = [f"A{i}" for i in range(40)]
    table("list_attr_celeba.txt", attrs, 40, (RNG.integers(0, 2, (n, 40)) * 2 - 1).tolist())


def test_celeba_equals_torchvision(tv, tmp_path, monkeypatch):
    celeba_files(tmp_path)
    monkeypatch.setattr(
        tv.datasets.celeba, "check_integrity", lambda p, md5=None: os.path.isfile(p)
    )
    for split, target_type in (("train", "attr"), ("valid", ["identity", "bbox", "landmarks"]),
                               ("all", []), ("test", "identity")):  # fmt: skip
        ours = datasets.CelebA(tmp_path, split=split, target_type=target_type)
        theirs = tv.datasets.CelebA(tmp_path, split=split, target_type=target_type)
        assert ours.filename == theirs.filename and ours.attr_names == theirs.attr_names
        np.testing.assert_array_equal(ours.attr.numpy(), theirs.attr.numpy())
        for i in range(len(theirs)):
            (xo, yo), (xt, yt) = ours[i], theirs[i]
            np.testing.assert_array_equal(np.asarray(xo), np.asarray(xt))
            yo, yt = (yo, yt) if isinstance(yt, tuple) else ((yo,), (yt,))
            for a, b in zip(yo, yt):
                assert (a is None and b is None) or np.array_equal(a.numpy(), b.numpy())
        assert repr(ours) == repr(theirs)
    with pytest.raises(RuntimeError, match="Dataset not found or corrupted"):
        datasets.CelebA(tmp_path / "none")


def imagenet_archives(root):
    sio = pytest.importorskip("scipy.io")
    src = root / "src"
    data = src / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    fields = [(f, "O") for f in ("ILSVRC2012_ID", "WNID", "words", "gloss", "num_children")]
    synsets = np.array([(1, "n01", "tench, Tinca tinca", "g", 0), (2, "n02", "goldfish", "g", 0),
                        (3, "n09", "fish", "g", 2)], dtype=fields)  # fmt: skip
    sio.savemat(data / "meta.mat", {"synsets": synsets})
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("2\n1\n2\n")
    with tarfile.open(root / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tar:
        tar.add(src / "ILSVRC2012_devkit_t12", arcname="ILSVRC2012_devkit_t12")
    for i in range(3):
        img = Image.fromarray(RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8))
        img.save(src / f"ILSVRC2012_val_{i + 1:08d}.JPEG")
    with tarfile.open(root / "ILSVRC2012_img_val.tar", "w") as tar:
        for i in range(3):
            tar.add(
                src / f"ILSVRC2012_val_{i + 1:08d}.JPEG", arcname=f"ILSVRC2012_val_{i + 1:08d}.JPEG"
            )
    for wnid in ("n01", "n02"):
        with tarfile.open(src / f"{wnid}.tar", "w") as tar:
            tar.add(src / "ILSVRC2012_val_00000001.JPEG", arcname=f"{wnid}_1.JPEG")
    with tarfile.open(root / "ILSVRC2012_img_train.tar", "w") as tar:
        for wnid in ("n01", "n02"):
            tar.add(src / f"{wnid}.tar", arcname=f"{wnid}.tar")
    shutil.rmtree(src)


def test_imagenet_equals_torchvision(tv, tmp_path, monkeypatch):
    pytest.importorskip("scipy.io")
    mine, theirs_root = tmp_path / "a", tmp_path / "b"
    mine.mkdir()
    imagenet_archives(mine)
    shutil.copytree(mine, theirs_root)
    monkeypatch.setattr(
        tv.datasets.imagenet, "check_integrity", lambda p, md5=None: os.path.isfile(p)
    )
    for split in ("val", "train"):
        ours = datasets.ImageNet(mine, split=split)
        theirs = tv.datasets.ImageNet(theirs_root, split=split)
        assert ours.classes == theirs.classes == [("tench", "Tinca tinca"), ("goldfish",)]
        assert ours.wnids == theirs.wnids and ours.class_to_idx == theirs.class_to_idx
        assert [(os.path.relpath(p, mine), y) for p, y in ours.samples] == [
            (os.path.relpath(p, theirs_root), y) for p, y in theirs.samples
        ]
        for i in range(len(ours)):
            same_item(ours[i], theirs[i])
        assert repr(ours).replace(str(mine), "R") == repr(theirs).replace(str(theirs_root), "R")
    # the meta.bin each wrote is readable by the other
    assert tv.datasets.imagenet.load_meta_file(str(mine)) == datasets.imagenet.load_meta_file(
        str(theirs_root)
    )
    with pytest.raises(RuntimeError, match="ILSVRC2012_devkit_t12.tar.gz is not present"):
        datasets.ImageNet(tmp_path / "none")
