"""Guards of a run: whose folder ``out`` is, one process per run, and data fit to train on.

A run directory is claimed before anything is written into it: a folder that exists and
holds files is refused unless it is the run being resumed or ``overwrite`` is given, and a
lock (``.manygrad.lock``, an advisory ``flock`` that the system drops when the process dies,
even by ``kill -9``) keeps a second process out of a run that is training.
"""

from __future__ import annotations

import errno
import math
import os
import re
import warnings

import numpy as np

from ..errors import ManygradError

LOCK = ".manygrad.lock"
_RANK_LOG = re.compile(r"rank\d+\.log$")  # what this run's ranks write before training
MAX_CLASSES = 100_000
CPU_HALF = (
    "precision {} on the CPU is slower than fp32, not faster (NumPy has no fast half-precision "
    "maths: fp16 was measured 50x slower); train in fp32 on the CPU and use fp16/bf16 on a GPU"
)  # above this, integer targets are more likely ids or values than classes


class RunDirError(ManygradError, ValueError):
    """``out`` is not a folder this run may write into (foreign files, or in use)."""


class DataError(ManygradError, ValueError):
    """Training data that can't be trained on: NaN/Inf inputs, bad labels, too few samples."""


def check_out(out: str, *, overwrite: bool = False, resume: bool = False) -> None:
    """Refuse ``out`` if it is a file, or a folder with files that is not this run's.

    Args:
        out: the run directory about to be written.
        overwrite: allow writing the run's files into a folder that already holds files.
        resume: ``out`` is the run being resumed (its files are this run's).
    """
    if not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise RunDirError(f"--out {out} is a file, not a folder; choose another --out")
    if resume or overwrite:
        return
    try:
        names = sorted(n for n in os.listdir(out) if n != LOCK and not _RANK_LOG.match(n))
    except OSError as e:
        raise RunDirError(f"--out {out} can't be read ({e.strerror}); choose another --out") from e
    if names:
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        what = "already holds a run" if "checkpoint.safetensors" in names else "is not empty"
        raise RunDirError(
            f"--out {out} {what} ({shown}); pass --resume {out} to continue a run, --overwrite "
            "to write this run's files into it anyway (overwrite=True in Python), or choose "
            "another --out"
        )


class RunLock:
    """An exclusive lock on a run directory, held while a process trains into it.

    Example:
        >>> with RunLock("runs/a"):
        ...     ...  # a second process gets RunDirError here
    """

    def __init__(self, run_dir: str):
        self.run_dir, self.fd = run_dir, None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # NOTE: no flock on Windows: runs are not locked there
            return self
        os.makedirs(self.run_dir, exist_ok=True)
        path = os.path.join(self.run_dir, LOCK)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)  # NOTE: no locks on this file system (some NFS): run unlocked
                warnings.warn(f"{self.run_dir}: can't lock the run ({e.strerror}); make "
                              "sure no other process trains into it", stacklevel=3)  # fmt: skip
                return self
            try:
                pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            except OSError:
                pid = "?"
            os.close(fd)
            raise RunDirError(
                f"{self.run_dir} is in use by another manygrad process (pid {pid}); wait for "
                "it to finish, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def claim(t) -> RunLock | None:
    """Check and lock ``t.out`` for the Trainer ``t`` (rank 0 writes; with several ranks the
    outcome is shared, so that all ranks fail together). Returns the lock to release."""
    err, lock = None, None
    if t.out and t.is_main:
        try:
            if not t.claimed:
                check_out(t.out, overwrite=t.overwrite)
            lock = RunLock(t.out).acquire()
            if not t.claimed:  # NOTE: again under the lock: another process may have
                check_out(t.out, overwrite=t.overwrite)  # written its run meanwhile
        except (RunDirError, OSError) as e:
            if lock is not None:
                lock.release()
                lock = None
            err = str(e)
    if t.shard is not None:
        err = next((e for e in t.shard.gather(err) if e), None)
    if err:
        if lock is not None:
            lock.release()
        raise RunDirError(err)
    t.claimed = True
    return lock


def extend_schedule(scheduler, optimizer, total_steps: int) -> None:
    """Fit a resumed learning-rate schedule to ``total_steps`` (``--epochs`` grew): a cosine
    schedule is stretched and the learning rate set to its value at the current step; a
    one-cycle schedule can't be stretched and says so."""
    total = max(total_steps, 1)
    if hasattr(scheduler, "T_max") and scheduler.T_max != total:
        scheduler.T_max = total
        lrs = scheduler._get_closed_form_lr()
        for g, lr in zip(optimizer.param_groups, lrs):
            g["lr"] = lr
        scheduler._last_lr = list(lrs)
    elif getattr(scheduler, "total_steps", total) != total:
        raise RunDirError(
            f"the run's {type(scheduler).__name__} schedule was made for "
            f"{scheduler.total_steps} steps and can't be stretched to {total}; resume with "
            "the run's --epochs, or start a new run"
        )


def damaged_checkpoint(path: str, e: Exception) -> Exception:
    """One line for a checkpoint whose contents don't fit the run (missing entries, another
    model's weights, wrong types)."""
    from ..errors import CheckpointError

    what = f"it lacks the entry {e}" if isinstance(e, KeyError) else " ".join(str(e).split())
    return CheckpointError(
        f"{path} does not fit this run: {what}; the checkpoint is damaged or from another "
        "model (start a new run, or resume the run it came from)"
    )


# ------------------------------------------------------------------ data checks


def check_finite(x: np.ndarray, name: str, part: str = "training data") -> None:
    """Refuse NaN or Inf in float samples, naming ``name`` (the file) and the sample index."""
    x = np.asarray(x)
    if x.dtype.kind not in "fc" or x.size == 0:
        return
    ok = np.isfinite(x.reshape(len(x), -1) if x.ndim > 1 else x)
    if ok.ndim > 1:
        ok = ok.all(axis=1)
    if ok.all():
        return
    i = int(np.flatnonzero(~ok)[0])
    bad = np.asarray(x[i]).ravel()
    v = bad[~np.isfinite(bad)][0]
    raise DataError(
        f"{name}: sample {i} of the {part} holds {v} ({int((~ok).sum())} samples hold "
        "NaN or Inf); remove or repair those samples before training"
    )


def check_labels(y: np.ndarray, name: str, part: str = "training", classes=None) -> None:
    """Class labels must be whole numbers in ``[0, classes)`` and not absurdly many."""
    y = np.asarray(y)
    if y.size == 0:
        return
    flat = y.ravel()
    if flat.dtype.kind == "f":
        bad = ~np.isfinite(flat) | (flat != np.round(flat))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{name}: label {flat[i]} (sample {i} of the {part} data) is not a class "
                "index; class labels are whole numbers 0, 1, 2, ..."
            )
    if flat.dtype.kind not in "iuf":
        return
    lo, hi = flat.min(), flat.max()
    if lo < 0:
        i = int(np.flatnonzero(flat < 0)[0])
        raise DataError(
            f"{name}: label {flat[i]} (sample {i} of the {part} data) is negative; class "
            "labels are 0, 1, 2, ..."
        )
    if classes is not None and hi >= classes:
        i = int(np.flatnonzero(flat >= classes)[0])
        raise DataError(
            f"{name}: label {flat[i]} (sample {i} of the {part} data) is out of range for "
            f"{classes} classes (labels 0..{classes - 1})"
        )
    n_classes = int(hi) + 1
    many = part == "training" and y.ndim == 1 and n_classes > max(len(y), 2)
    if n_classes > MAX_CLASSES or many:
        raise DataError(
            f"{name}: the largest label, {hi}, means {n_classes:,} classes for {len(y)} "
            f"samples; labels must be class indices 0..K-1 (renumber them), not ids or values"
        )


def check_samples(n: int, name: str, part: str = "training", least: int = 1) -> None:
    """At least ``least`` samples."""
    if n < least:
        raise DataError(
            f"{name}: {n} {part} sample{'s' if n != 1 else ''}; training needs at least {least}"
        )


def finite_or_none(obj):
    """``obj`` with every non-finite float replaced by None (for strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj
