"""Sizes checked before reading: what a file declares against what it holds and what fits.

A hostile or damaged file can declare a shape far larger than its bytes (an IDX header,
an HDF5 or Zarr array whose chunks were never written, a zip member that inflates without
end). These checks run on headers alone, before anything is allocated.
"""

from __future__ import annotations

import math
import os

from manygrad.errors import ManygradError


class DataTooLargeError(ManygradError, MemoryError):
    """Data declares more bytes than it holds, or more than this machine's memory."""


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``; None where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def declared_bytes(shape, itemsize: int) -> int:
    """``prod(shape) * itemsize`` in Python integers (never overflows)."""
    return math.prod(int(d) for d in shape) * int(itemsize)


def check_fits(nbytes: int, what: str, stream_hint: bool = True, fraction: float = 0.8) -> None:
    """Refuse to read ``nbytes`` into memory when more than ``fraction`` of it is free."""
    free = available_memory()
    if free is None or nbytes <= fraction * free:
        return
    hint = (
        "; train with --stream to read it batch by batch (mg.data.DataLoader)"
        if stream_hint
        else ""
    )
    raise DataTooLargeError(
        f"{what} needs {_size(nbytes)} in memory but only {_size(free)} is available{hint}"
    )


def check_declared(declared: int, held: int, what: str) -> None:
    """A file must hold at least the bytes its header declares."""
    if declared > held:
        raise DataTooLargeError(
            f"{what} declares {_size(declared)} of data but holds {_size(held)}: it is "
            "truncated or damaged (download or write it again)"
        )


def check_npz(path: str) -> None:
    """Every array of a ``.npz`` must fit in memory once inflated (read from the headers)."""
    import zipfile

    import numpy as np

    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return  # np.load reports it, naming the file
    total = 0
    with zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            try:
                with zf.open(info) as f:
                    fmt = np.lib.format
                    major, _ = fmt.read_magic(f)
                    read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
                    shape, _, dtype = read(f)
            except Exception:  # noqa: BLE001  (a damaged member is reported when read)
                continue
            size = declared_bytes(shape, dtype.itemsize)
            if info.compress_type == zipfile.ZIP_STORED:
                check_declared(size, info.file_size, f"{path} (array {info.filename[:-4]!r})")
            total += size
    check_fits(total, f"{path}", stream_hint=False)


def check_store(arr, what: str) -> None:
    """An HDF5 dataset or Zarr array must have written the chunks its shape declares: an
    unwritten chunk reads as fill values, so a tiny file could pose as terabytes of data."""
    size = declared_bytes(arr.shape, arr.dtype.itemsize)
    if size == 0:
        return
    total = written = None
    if hasattr(arr, "nchunks_initialized"):  # zarr
        try:
            total, written = int(arr.nchunks), int(arr.nchunks_initialized)
        except Exception:  # noqa: BLE001  (a store that can't count its chunks: not checked)
            return
    elif hasattr(arr, "id") and hasattr(arr.id, "get_storage_size"):  # h5py
        try:
            if arr.chunks is None:
                total, written = 1, int(arr.id.get_storage_size() >= size)
            else:
                grid = [-(-int(n) // int(c)) for n, c in zip(arr.shape, arr.chunks)]
                total, written = math.prod(grid), int(arr.id.get_num_chunks())
        except Exception:  # noqa: BLE001
            return
    if total is not None and written < total:
        raise DataTooLargeError(
            f"{what} declares shape {tuple(arr.shape)} ({_size(size)}) but only {written} of "
            f"its {total} chunks were ever written; the rest would read as fill values. Write "
            "the data completely, or slice the part that holds data into a new array"
        )
