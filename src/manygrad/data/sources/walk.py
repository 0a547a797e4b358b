"""Folder walks that always end: links followed once, odd files skipped, problems named.

A symlink loop (``a/b -> a``) would make a naive walk that follows links run without end;
a FIFO named ``cat.png`` would block the first read forever. ``find_files`` keeps a set of
the folders it entered (by device and inode), skips files already seen through another
link, skips FIFOs, sockets and devices, and warns once per walk, naming what it skipped.
"""

from __future__ import annotations

import os
import stat
import warnings

__all__ = ["NotRegularFileError", "check_regular", "find_files"]


class NotRegularFileError(OSError):
    """A path is a FIFO, socket or device: reading it could block or never end."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def check_regular(path: str, what: str = "data") -> None:
    """Refuse a path that is not a regular file or folder (before anything opens it)."""
    try:
        st = os.stat(path)
    except OSError:
        return  # the caller's open reports it, naming the path
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise NotRegularFileError(
            f"{what}: {path} is a {_kind(st.st_mode)}, not a file; reading it could block "
            "forever. Pass a regular file or folder"
        )


def _shown(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def find_files(
    root: str,
    extensions: tuple[str, ...],
    what: str = "data",
    recursive: bool = True,
    inside: str | None = None,
    seen: set | None = None,
) -> list[str]:
    """Sorted regular files under ``root`` whose names end with ``extensions`` (lower case).

    Folder links are followed, each folder entered once; a file reached twice (through
    links) counts once. FIFOs, sockets and devices, unreadable files and folders are
    skipped with one warning naming them. With ``inside`` (the dataset's folder), a link to a
    folder within it is not followed (its files are found where they are); ``seen`` shares
    the files already taken between walks (a file linked into two class folders counts once).

    Example:
        >>> find_files("data/train/cat", (".png", ".jpg"))
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = seen if seen is not None else set()
    fence = os.path.realpath(inside) + os.sep if inside else None
    loops, dups, special, unreadable = [], [], [], []
    out: list[str] = []
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                loops.append(d)
                continue
            seen_dirs.add(key)
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            unreadable.append(d)
            continue
        subdirs = []
        for e in entries:
            try:
                st = e.stat(follow_symlinks=True)
            except OSError:  # a dangling link or no permission
                if e.name.lower().endswith(extensions) or e.is_symlink():
                    unreadable.append(e.path)
                continue
            if stat.S_ISDIR(st.st_mode):
                if (
                    fence
                    and e.is_symlink()
                    and (os.path.realpath(e.path) + os.sep).startswith(fence)
                ):
                    loops.append(e.path)
                elif recursive:
                    subdirs.append(e.path)
                continue
            if not e.name.lower().endswith(extensions):
                continue
            if not stat.S_ISREG(st.st_mode):
                special.append(f"{e.path} ({_kind(st.st_mode)})")
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen_files:
                dups.append(e.path)
                continue
            if not os.access(e.path, os.R_OK):
                unreadable.append(e.path)
                continue
            seen_files.add(key)
            out.append(e.path)
        stack.extend(reversed(subdirs))
    notes = []
    if loops:
        notes.append(f"folder links that loop back (not followed again): {_shown(loops)}")
    if dups:
        notes.append(f"files reached twice through links (kept once): {_shown(dups)}")
    if special:
        notes.append(f"FIFOs, sockets or devices (skipped): {_shown(special)}")
    if unreadable:
        notes.append(f"unreadable files or folders (skipped; check permissions): "
                     f"{_shown(unreadable)}")  # fmt: skip
    if notes:
        warnings.warn(f"{what}: walking {root}: " + "; ".join(notes), stacklevel=2)
    return sorted(out)
