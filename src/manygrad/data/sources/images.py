"""Image datasets decoded with Pillow: class folders, or a CSV/JSON list of files."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import warnings
from collections import Counter

from manygrad.data.dataset import Dataset
from manygrad.data.transforms import ToTensor, fixes_size, require_pillow
from manygrad.errors import ShapeError

from .walk import find_files

__all__ = ["IMG_EXTENSIONS", "ImageFolder", "ImageList", "load_image"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff", ".gif")
_SIZE_CHECK_LIMIT = 5000


class CorruptFileError(ValueError):
    """A file could not be decoded; the message names the file and the sample index."""


def load_image(path: str, mode: str | None = "RGB", index: int | None = None):
    """Decode an image file fully with Pillow (``mode`` e.g. "RGB", "L"; None keeps it).

    Example:
        >>> img = load_image("cat.jpg")
    """
    pil_image = require_pillow()
    try:
        with _no_bombs(pil_image), pil_image.open(path) as img:
            img.load()  # NOTE: decode now, so truncated files fail here and not later
            return img.convert(mode) if mode is not None and img.mode != mode else img.copy()
    except FileNotFoundError:
        raise
    except Exception as e:
        at = f" (sample index {index})" if index is not None else ""
        raise CorruptFileError(f"cannot decode image {path}{at}: {_why(e, pil_image)}") from e


@contextlib.contextmanager
def _no_bombs(pil_image):
    """Pillow's decompression-bomb warning (an image of more pixels than
    ``Image.MAX_IMAGE_PIXELS``) raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pil_image.DecompressionBombWarning)
        yield


def _why(e: Exception, pil_image) -> str:
    if isinstance(e, (pil_image.DecompressionBombWarning, pil_image.DecompressionBombError)):
        return (
            f"it declares more pixels than the limit of {pil_image.MAX_IMAGE_PIXELS:,} "
            "(a decompression bomb, or a huge scan: shrink it first)"
        )
    return f"{type(e).__name__}: {e}"


def common_size(samples, limit: int = _SIZE_CHECK_LIMIT) -> tuple[tuple[int, int], int, int]:
    """The most common image size ``(H, W)`` among the first ``limit`` files (headers
    only), with how many have it and how many were read."""
    pil_image = require_pillow()
    sizes: Counter = Counter()
    for path, _ in samples[:limit]:
        try:
            with _no_bombs(pil_image), pil_image.open(path) as img:
                w, h = img.size
        except Exception:  # noqa: BLE001  (unreadable: reported, with its index, when loaded)
            continue
        sizes[(h, w)] += 1
    if not sizes:
        raise CorruptFileError(f"none of the images ({samples[0][0]}, ...) can be read")
    # NOTE: ties go to the larger image, then the taller one, so the choice is stable
    size, n = max(sizes.items(), key=lambda kv: (kv[1], kv[0][0] * kv[0][1], kv[0]))
    return size, n, sum(sizes.values())


class _ImageDataset(Dataset):
    def _setup(self, transform, target_transform, mode, check_sizes, what: str):
        self.transform = transform if transform is not None else ToTensor()
        self.target_transform = target_transform
        self.mode = mode
        self.targets = [t for _, t in self.samples]
        self.imgs = self.samples
        if check_sizes and not fixes_size(transform):
            self._check_sizes(what)

    def _check_sizes(self, what: str) -> None:
        """Read image headers (no decoding) and fail early if sizes differ."""
        pil_image = require_pillow()
        first = None
        for path, _ in self.samples[:_SIZE_CHECK_LIMIT]:
            try:
                with _no_bombs(pil_image), pil_image.open(path) as img:
                    size = img.size
            except Exception as e:  # unreadable: reported, with its index, when it is loaded
                if isinstance(e, pil_image.DecompressionBombError) or isinstance(
                    e, pil_image.DecompressionBombWarning
                ):
                    raise CorruptFileError(f"{what}: {path}: {_why(e, pil_image)}") from None
                continue
            if first is None:
                first = (size, path)
            elif size != first[0]:
                raise ShapeError(
                    f"{what}: images have different sizes, {first[0][0]}x{first[0][1]} "
                    f"({first[1]}) and {size[0]}x{size[1]} ({path}), so batches cannot be "
                    "stacked; add transforms.Resize((H, W)) or a crop to the transform (or pass "
                    "check_sizes=False if your transform makes the sizes equal)"
                )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        img = load_image(path, self.mode, index)
        x = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return x, target


class ImageFolder(_ImageDataset):
    """Images in one subfolder per class: ``root/cat/1.jpg``, ``root/dog/2.png``...

    A sample is ``(transform(image), class_index)``; class indices follow the sorted
    folder names (``classes``, ``class_to_idx``). Without a transform images become float32
    (C, H, W) Tensors in [0, 1], and all images must then have one size.

    Args:
        root: the folder of class folders.
        transform: callable on the PIL image (default ``transforms.ToTensor()``).
        target_transform: callable on the class index.
        extensions: file endings to include (default jpg, png, bmp, webp, ...).
        mode: Pillow mode to convert to (default "RGB"; "L" for grey; None keeps it).
        check_sizes: read headers and fail early on mixed sizes without a resize/crop.

    Example:
        >>> tf = transforms.Compose([transforms.Resize((64, 64)), transforms.ToTensor()])
        >>> ds = mg.data.ImageFolder("data/train", transform=tf)
    """

    def __init__(self, root, transform=None, target_transform=None,
                 extensions=IMG_EXTENSIONS, mode: str | None = "RGB",
                 check_sizes: bool = True):  # fmt: skip
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"ImageFolder: {self.root} is not a folder")
        classes = sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        if not classes:
            raise FileNotFoundError(
                f"ImageFolder: no class folders in {self.root}; expected root/<class>/<image>"
            )
        exts = tuple(e.lower() for e in extensions)
        self.classes = classes
        self.class_to_idx = {c: i for i, c in enumerate(classes)}
        self.samples = []
        empty: list[str] = []
        seen: set = set()  # files already taken: a file linked into two classes counts once
        for c in classes:
            files = find_files(
                os.path.join(self.root, c), exts, "ImageFolder", inside=self.root, seen=seen
            )
            if not files:
                empty.append(c)
            self.samples += [(f, self.class_to_idx[c]) for f in files]
        if empty:
            raise FileNotFoundError(
                f"ImageFolder: class folder(s) {empty} in {self.root} hold no images with "
                f"extensions {', '.join(exts)}; remove them or add images"
            )
        self._setup(transform, target_transform, mode, check_sizes, "ImageFolder")


class ImageList(_ImageDataset):
    """Images listed in a CSV (``path,label`` rows, header optional) or JSON file.

    JSON may be a list of ``{"path": ..., "label": ...}`` objects or of ``[path, label]``
    pairs. Relative paths are taken from ``root`` (default: the list file's folder).
    String labels become class indices in sorted order (``classes``).

    Args:
        file: the .csv or .json list.
        root: folder that relative paths start from.
        transform, target_transform, mode, check_sizes: as for ``ImageFolder``.

    Example:
        >>> ds = mg.data.ImageList("labels.csv", transform=transforms.ToTensor())
    """

    def __init__(self, file, root=None, transform=None, target_transform=None,
                 mode: str | None = "RGB", check_sizes: bool = True):  # fmt: skip
        file = os.fspath(file)
        self.root = os.fspath(root) if root is not None else os.path.dirname(os.path.abspath(file))
        rows = read_pairs(file, "ImageList")
        labels = [lab for _, lab in rows]
        if all(isinstance(v, int) or (isinstance(v, str) and v.lstrip("-").isdigit())
               for v in labels):  # fmt: skip
            ints = [int(v) for v in labels]
            self.classes = sorted(set(ints))
            targets = ints
        else:
            self.classes = sorted(set(map(str, labels)))
            idx = {c: i for i, c in enumerate(self.classes)}
            targets = [idx[str(v)] for v in labels]
        self.class_to_idx = {str(c): i for i, c in enumerate(self.classes)}
        self.samples = [(os.path.join(self.root, p), t) for (p, _), t in zip(rows, targets)]
        missing = [p for p, _ in self.samples if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"ImageList: {len(missing)} file(s) listed in {file} do not exist, e.g. "
                f"{missing[0]}; fix the paths or pass root="
            )
        self._setup(transform, target_transform, mode, check_sizes, "ImageList")


def read_pairs(file: str, what: str) -> list[tuple[str, object]]:
    """(path, label) rows from a CSV or JSON file, with clear errors."""
    if not os.path.exists(file):
        raise FileNotFoundError(f"{what}: no such file {file}")
    if file.lower().endswith(".json"):
        with open(file) as f:
            data = json.load(f)
        rows = []
        for k, item in enumerate(data):
            if isinstance(item, dict):
                if "path" not in item or "label" not in item:
                    raise ValueError(f"{what}: entry {k} of {file} needs 'path' and 'label' keys")
                rows.append((str(item["path"]), item["label"]))
            else:
                rows.append((str(item[0]), item[1]))
    else:
        with open(file, newline="") as f:
            table = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        if table and table[0][0].strip().lower() in ("path", "file", "filename", "image", "video"):
            table = table[1:]
        rows = []
        for k, r in enumerate(table):
            if len(r) < 2:
                raise ValueError(f"{what}: row {k + 1} of {file} should be 'path,label', got {r}")
            rows.append((r[0].strip(), r[1].strip()))
    if not rows:
        raise ValueError(f"{what}: {file} lists no samples")
    return rows
