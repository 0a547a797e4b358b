"""Downloads and archives for ``manygrad.hub``: atomic streamed downloads with a progress
bar and a SHA-256 check, the errors they raise, and safe zip extraction."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import sys
import time
import uuid
import zipfile
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from .errors import ManygradError

READ_DATA_CHUNK = 128 * 1024


class HubError(ManygradError, RuntimeError):
    """A hub repository cannot serve the call (missing entrypoint, dependency, archive)."""


class HashMismatchError(HubError):
    """A download's SHA-256 does not start with the expected prefix (a ``RuntimeError``)."""


class DownloadError(ManygradError, URLError):
    """A download failed: no connection, or the transfer broke off (a ``URLError``)."""


class HTTPDownloadError(ManygradError, HTTPError):
    """The server answered a download with an HTTP error (an ``HTTPError``, with ``.code``)."""


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class _ProgressLine:
    """A plain progress line on stderr, for when tqdm is not installed."""

    def __init__(self, total: int | None, name: str):
        self.total, self.name, self.n, self._last = total, name, 0, 0.0

    def update(self, n: int) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self._last >= 0.2 or (self.total is not None and self.n >= self.total):
            self._last = now
            line = f"\r{self.name}: {self.n / 2**20:.1f} MiB"
            if self.total:
                line += f" of {self.total / 2**20:.1f} MiB ({100 * self.n / self.total:.1f}%)"
            sys.stderr.write(line)
            sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int | None, enabled: bool, name: str):
    if not enabled:
        return _NoProgress()
    tqdm = _tqdm()
    if tqdm is None:
        return _ProgressLine(total, name)
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def network_error(url: str, dst: str, reason, hint: str | None, cause=None) -> URLError:
    """The error for a failed download of ``url``: it names the URL, the reason and how to
    do without the network (by default: place the file at ``dst``)."""
    hint = hint or f"without network access, download the file elsewhere and place it at {dst}"
    msg = f"download of {url} failed: {reason}; {hint}"
    if isinstance(cause, HTTPError):
        return HTTPDownloadError(url, cause.code, msg, cause.headers, None)
    return DownloadError(msg)


def download(url: str, dst, hash_prefix: str | None, progress: bool, hint: str | None) -> None:
    """``manygrad.hub.download_url_to_file``; ``hint`` replaces the advice in its errors."""
    dst = os.path.expanduser(os.fspath(dst))
    tmp = f"{dst}.{uuid.uuid4().hex}.partial"
    f = open(tmp, "xb")  # noqa: SIM115 (closed in finally)
    try:
        try:
            u = urlopen(Request(url, headers={"User-Agent": "manygrad.hub"}))
        except HTTPError as e:
            raise network_error(url, dst, f"HTTP {e.code} {e.reason}", hint, e) from e
        except (URLError, OSError, http.client.HTTPException) as e:
            raise network_error(url, dst, getattr(e, "reason", e), hint) from e
        with u:
            length = u.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            sha256 = hashlib.sha256() if hash_prefix is not None else None
            bar = _progress_bar(size, progress, os.path.basename(dst))
            done = 0
            try:
                while True:
                    try:
                        chunk = u.read(READ_DATA_CHUNK)
                    except (OSError, http.client.HTTPException) as e:
                        why = f"the transfer broke off after {done} bytes ({e!r})"
                        raise network_error(url, dst, why, hint) from e
                    if not chunk:
                        break
                    f.write(chunk)
                    if sha256 is not None:
                        sha256.update(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
        # NOTE: http.client returns b"" (no error) when a server closes the connection
        # early, so a short transfer is caught here by its Content-Length
        if size is not None and done != size:
            why = f"the connection closed after {done} of {size} bytes"
            raise network_error(url, dst, why, hint)
        f.close()
        if sha256 is not None:
            digest = sha256.hexdigest()
            if digest[: len(hash_prefix)] != hash_prefix:
                raise HashMismatchError(
                    f'invalid hash value (expected "{hash_prefix}", got "{digest}") for {url}; '
                    "the download was deleted. Check the URL, or download again if the file "
                    "was replaced on the server"
                )
        os.replace(tmp, dst)
    finally:
        f.close()
        if os.path.exists(tmp):
            os.remove(tmp)


def safe_extract_zip(zf: zipfile.ZipFile, folder: str) -> None:
    """Extract ``zf`` into ``folder``; an entry that would land outside it is refused before
    anything is written."""
    root = Path(folder).resolve()
    for member in zf.infolist():
        name = os.path.normpath(member.filename)
        parts = re.split(r"[/\\]", name)
        absolute = name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":")
        if absolute or ".." in parts or not (root / name).resolve().is_relative_to(root):
            raise ValueError(f"hub: archive entry {member.filename!r} escapes {folder}")
    zf.extractall(root)


def is_legacy_zip_format(filename: str) -> bool:
    """A zip archive holding exactly one file (how checkpoints were shipped before 1.6)."""
    if not zipfile.is_zipfile(filename):
        return False
    with zipfile.ZipFile(filename) as zf:
        members = zf.infolist()
    return len(members) == 1 and not members[0].is_dir()


def remove_if_exists(path: str) -> None:
    if os.path.isfile(path) or os.path.islink(path):
        os.remove(path)
    elif os.path.exists(path):
        shutil.rmtree(path)
