"""Downloads, checksums and archives for the datasets (``torchvision.datasets.utils``).

Every download goes to a temporary name beside its target and is renamed only once it is
complete and its MD5 matches, so an interrupted run never leaves a half-written file that a
later run would take for the dataset.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import shutil
import tarfile
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from urllib.error import URLError

from manygrad._hub_download import download as _download
from manygrad._hub_download import safe_extract_zip
from manygrad.errors import ManygradError

__all__ = [
    "DatasetDownloadError",
    "calculate_md5",
    "check_integrity",
    "check_md5",
    "download_and_extract_archive",
    "download_url",
    "extract_archive",
    "iterable_to_str",
    "list_dir",
    "list_files",
    "verify_str_arg",
]


class DatasetDownloadError(ManygradError, RuntimeError):
    """A dataset's files could not be fetched from any of its mirrors."""


def calculate_md5(fpath: str | os.PathLike, chunk_size: int = 1024 * 1024) -> str:
    """The MD5 hex digest of a file's bytes."""
    md5 = hashlib.md5(usedforsecurity=False)
    with open(fpath, "rb") as f:
        while chunk := f.read(chunk_size):
            md5.update(chunk)
    return md5.hexdigest()


def check_md5(fpath: str | os.PathLike, md5: str, **kwargs) -> bool:
    return md5 == calculate_md5(fpath, **kwargs)


def check_integrity(fpath: str | os.PathLike, md5: str | None = None) -> bool:
    """Whether ``fpath`` is a file and, when ``md5`` is given, has that MD5."""
    if not os.path.isfile(fpath):
        return False
    return True if md5 is None else check_md5(fpath, md5)


def download_url(
    url: str,
    root: str | os.PathLike,
    filename: str | None = None,
    md5: str | None = None,
    max_redirect_hops: int = 3,
    *,
    _hint: str | None = None,
) -> None:
    """Download ``url`` into ``root/filename`` (default: the URL's last part), with a
    progress bar; nothing is fetched when the file is already there with the right MD5.

    Args:
        url: the address.
        root: the folder to place the file in (created when missing).
        filename: the file's name (default: ``os.path.basename(url)``).
        md5: the expected MD5; a download that does not match is deleted and refused.
        max_redirect_hops: accepted for torchvision's signature (redirects are followed).

    Example:
        >>> download_url("https://example.org/data.tar.gz", "data", md5="...")
    """
    root = os.path.expanduser(os.fspath(root))
    fpath = os.path.join(root, filename or os.path.basename(url))
    os.makedirs(root, exist_ok=True)
    if check_integrity(fpath, md5):
        return
    hint = _hint or f"without network access, download {url} elsewhere and place it at {fpath}"
    # NOTE: a private folder beside the target, so that the progress bar shows the file's name
    tmp_dir = os.path.join(root, f".{uuid.uuid4().hex}.download")
    tmp = os.path.join(tmp_dir, os.path.basename(fpath))
    os.mkdir(tmp_dir)
    try:
        _download(url, tmp, None, True, hint)
        if md5 is not None and not check_md5(tmp, md5):
            raise DatasetDownloadError(
                f"download of {url} is corrupted: its MD5 {calculate_md5(tmp)} is not the "
                f"expected {md5}; the file was deleted. Download it again, or place a good "
                f"copy at {fpath}"
            )
        os.replace(tmp, fpath)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def download_from_mirrors(filename: str, mirrors: Sequence[str], folder: str, md5: str | None):
    """Fetch ``filename`` from the first of ``mirrors`` (URL prefixes) that serves it."""
    errors, later = [], "; the other mirrors follow"
    for mirror in mirrors:
        url = f"{mirror}{filename}"
        try:
            download_url(url, folder, filename, md5, _hint=later[2:])
            return
        except (URLError, OSError, RuntimeError) as e:
            why = e.reason if isinstance(e, URLError) else e
            errors.append(f"  {str(why).removesuffix(later)}")
    raise DatasetDownloadError(
        f"Error downloading {filename} from every mirror:\n" + "\n".join(errors) + "\n"
        "Without network access, download the file from one of these addresses elsewhere and "
        f"place it in {folder}"
    )


def list_dir(root: str | os.PathLike, prefix: bool = False) -> list[str]:
    """The folders in ``root`` (as paths under it when ``prefix``)."""
    root = os.path.expanduser(os.fspath(root))
    names = [p for p in os.listdir(root) if os.path.isdir(os.path.join(root, p))]
    return [os.path.join(root, d) for d in names] if prefix else names


def list_files(root: str | os.PathLike, suffix: str, prefix: bool = False) -> list[str]:
    """The files in ``root`` whose names end with ``suffix`` (a string or tuple)."""
    root = os.path.expanduser(os.fspath(root))
    names = [
        p for p in os.listdir(root) if os.path.isfile(os.path.join(root, p)) and p.endswith(suffix)
    ]
    return [os.path.join(root, d) for d in names] if prefix else names


def _safe_members(tar: tarfile.TarFile, folder: str):
    root = os.path.realpath(folder)
    for m in tar.getmembers():
        target = os.path.realpath(os.path.join(root, m.name))
        if os.path.commonpath([root, target]) != root or m.issym() or m.islnk():
            raise ValueError(f"extract_archive: archive entry {m.name!r} escapes {folder}")
        yield m


_COMPRESSORS = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}


def extract_archive(
    from_path: str | os.PathLike, to_path: str | os.PathLike | None = None,
    remove_finished: bool = False,
) -> str:  # fmt: skip
    """Extract a ``.tar[.gz|.xz|.bz2]``, ``.tgz`` or ``.zip`` archive into ``to_path``
    (default: the archive's folder), or decompress a single ``.gz``/``.xz``/``.bz2`` file
    beside it. Entries that would land outside ``to_path`` are refused.

    Returns:
        the folder extracted to, or the decompressed file's path.
    """
    from_path = os.fspath(from_path)
    to_path = os.path.dirname(from_path) if to_path is None else os.fspath(to_path)
    name = from_path.lower()
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tbz", ".tbz2")):
        with tarfile.open(from_path) as tar:
            tar.extractall(to_path, members=list(_safe_members(tar, to_path)))
        out = to_path
    elif name.endswith(".zip"):
        with zipfile.ZipFile(from_path) as zf:
            safe_extract_zip(zf, to_path)
        out = to_path
    else:
        ext = os.path.splitext(name)[1]
        if ext not in _COMPRESSORS:
            raise RuntimeError(
                f"extract_archive: unknown archive type of {from_path}; supported: .tar, "
                ".tar.gz, .tgz, .tar.xz, .tar.bz2, .zip, .gz, .xz, .bz2"
            )
        out = os.path.join(to_path, os.path.basename(from_path)[: -len(ext)])
        tmp = f"{out}.{uuid.uuid4().hex}.partial"
        try:
            with _COMPRESSORS[ext](from_path, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    if remove_finished:
        os.remove(from_path)
    return out


def download_and_extract_archive(
    url: str,
    download_root: str | os.PathLike,
    extract_root: str | os.PathLike | None = None,
    filename: str | None = None,
    md5: str | None = None,
    remove_finished: bool = False,
) -> None:
    """``download_url`` then ``extract_archive`` (into ``extract_root``, default
    ``download_root``)."""
    download_root = os.path.expanduser(os.fspath(download_root))
    filename = filename or os.path.basename(url)
    download_url(url, download_root, filename, md5)
    extract_archive(os.path.join(download_root, filename), extract_root or download_root,
                    remove_finished)  # fmt: skip


def iterable_to_str(iterable: Iterable) -> str:
    return "'" + "', '".join(str(item) for item in iterable) + "'"


def verify_str_arg(value, arg: str | None = None, valid_values: Iterable | None = None,
                   custom_msg: str | None = None):  # fmt: skip
    """Check that ``value`` is a string and one of ``valid_values``; return it."""
    if not isinstance(value, str):
        where = "" if arg is None else f" for argument {arg}"
        raise ValueError(f"Expected type str{where}, but got type {type(value)}.")
    if valid_values is None or value in valid_values:
        return value
    raise ValueError(
        custom_msg
        or f"Unknown value '{value}' for argument {arg}. Valid values are "
        f"{{{iterable_to_str(valid_values)}}}."
    )
