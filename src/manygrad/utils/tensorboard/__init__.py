"""``torch.utils.tensorboard``: ``SummaryWriter`` writes TensorBoard event files (scalars,
histograms, images, text) that ``tensorboard --logdir runs`` reads. It needs neither
TensorFlow nor the ``tensorboard`` package: the few messages a training log uses are encoded
by manygrad itself (``_events``).

Example:
    >>> from manygrad.utils.tensorboard import SummaryWriter
    >>> with SummaryWriter("runs/exp1") as w:
    ...     w.add_scalar("loss/train", 0.42, global_step=1)
"""

from __future__ import annotations

import datetime
import os
import socket
import time
import warnings

import numpy as np

from . import _events as ev

_UID = [0]


def _array(x) -> np.ndarray:
    """Host values of a tensor (manygrad or PyTorch), an array or a number."""
    if hasattr(x, "detach"):
        x = x.detach()
        x = x.cpu() if hasattr(x, "cpu") else x
        x = x.numpy()
    return np.asarray(x)


def _scalar(x) -> float:
    a = _array(x)
    if a.size != 1:
        raise ValueError(f"add_scalar: expected one number, got an array of shape {a.shape}")
    return float(a.reshape(-1)[0])


class SummaryWriter:
    """Write TensorBoard events to ``log_dir`` (default ``runs/<date>_<host><comment>``).

    Args:
        log_dir: the run's folder (made if missing).
        comment: appended to the default folder name.
        purge_step, max_queue, flush_secs: events are written at once and flushed to disk
            every ``max_queue`` events or ``flush_secs`` seconds (default 10, 120).
        filename_suffix: appended to the event file's name.
    """

    def __init__(self, log_dir: str | None = None, comment: str = "", purge_step=None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = ""):  # fmt: skip
        if log_dir is None:
            stamp = datetime.datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = str(log_dir)
        self._max_queue, self._flush_secs, self._suffix = max_queue, flush_secs, filename_suffix
        self._file = None
        self._pending = 0
        self._last_flush = time.time()
        self._children: dict[str, SummaryWriter] = {}
        self._warned_graph = False

    # ------------------------------------------------------------------ files
    def get_logdir(self) -> str:
        return self.log_dir

    def _writer(self):
        if self._file is None:
            os.makedirs(self.log_dir, exist_ok=True)
            _UID[0] += 1
            name = (f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
                    f"{os.getpid()}.{_UID[0]}{self._suffix}")  # fmt: skip
            self._file = open(os.path.join(self.log_dir, name), "ab")  # noqa: SIM115
            self._file.write(ev.record(ev.event(time.time(), file_version="brain.Event:2")))
            self._file.flush()
        return self._file

    def _write(self, value: bytes, step, walltime) -> None:
        if self._file is not None and self._file.closed:
            raise ValueError("SummaryWriter: the writer is closed; make a new one")
        f = self._writer()
        step = None if step is None else int(_scalar(step))
        wall = time.time() if walltime is None else float(walltime)
        f.write(ev.record(ev.event(wall, step, ev.summary(value))))
        self._pending += 1
        if self._pending >= self._max_queue or time.time() - self._last_flush >= self._flush_secs:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered to disk."""
        if self._file is not None and not self._file.closed:
            self._file.flush()
        for child in self._children.values():
            child.flush()
        self._pending, self._last_flush = 0, time.time()

    def close(self) -> None:
        """Flush and close the event files (a closed writer refuses further events)."""
        self.flush()
        for child in self._children.values():
            child.close()
        if self._file is not None:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ------------------------------------------------------------------ summaries
    def add_scalar(self, tag: str, scalar_value, global_step=None, walltime=None,
                   new_style: bool = False, double_precision: bool = False) -> None:  # fmt: skip
        """One number (a Python number or a one-element tensor) under ``tag``."""
        self._write(ev.scalar_value(tag, _scalar(scalar_value)), global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step=None,
                    walltime=None) -> None:  # fmt: skip
        """Several numbers on one chart: each key gets a run of its own,
        ``<log_dir>/<main_tag>_<key>``, as PyTorch writes them."""
        for key, value in tag_scalar_dict.items():
            name = f"{main_tag.replace('/', '_')}_{key}"
            child = self._children.get(name)
            if child is None:
                child = self._children[name] = SummaryWriter(
                    os.path.join(self.log_dir, name), max_queue=self._max_queue,
                    flush_secs=self._flush_secs, filename_suffix=self._suffix)  # fmt: skip
            child.add_scalar(main_tag, value, global_step, walltime)

    def add_histogram(self, tag: str, values, global_step=None, bins="tensorflow",
                      walltime=None, max_bins=None) -> None:  # fmt: skip
        """The distribution of ``values`` (``bins``: a count, edges or a NumPy rule name;
        ``"tensorflow"`` means 30 equal bins)."""
        a = _array(values).astype(np.float64).reshape(-1)
        if a.size == 0:
            raise ValueError(f"add_histogram: {tag!r} has no values")
        counts, edges = np.histogram(a, bins=30 if bins == "tensorflow" else bins)
        self._write(ev.histogram_value(tag, a.min(), a.max(), a.size, a.sum(), (a * a).sum(),
                                       edges[1:], counts), global_step, walltime)  # fmt: skip

    def add_image(self, tag: str, img_tensor, global_step=None, walltime=None,
                  dataformats: str = "CHW") -> None:  # fmt: skip
        """An image: ``dataformats`` ``CHW`` (default), ``HWC`` or ``HW``; floats in [0, 1]
        or uint8 values."""
        a = _array(img_tensor)
        fmt = dataformats.upper()
        if fmt not in ("CHW", "HWC", "HW") or a.ndim != len(fmt):
            raise ValueError(
                f"add_image: dataformats {dataformats!r} doesn't fit an array of shape "
                f"{a.shape}; use CHW, HWC or HW"
            )
        a = a[..., None] if fmt == "HW" else (a.transpose(1, 2, 0) if fmt == "CHW" else a)
        if a.dtype != np.uint8:
            a = (np.clip(a.astype(np.float64), 0, 1) * 255 + 0.5).astype(np.uint8)
        if a.shape[-1] not in (1, 3, 4):
            raise ValueError(f"add_image: expected 1, 3 or 4 channels, got {a.shape[-1]}")
        h, w, c = a.shape
        self._write(ev.image_value(tag, h, w, c, ev.png(np.ascontiguousarray(a))), global_step,
                    walltime)  # fmt: skip

    def add_figure(self, tag: str, figure, global_step=None, close: bool = True,
                   walltime=None) -> None:  # fmt: skip
        """A matplotlib figure, drawn to an RGBA image."""
        figure.canvas.draw()
        rgba = np.asarray(figure.canvas.buffer_rgba())
        if close:
            import matplotlib.pyplot as plt

            plt.close(figure)
        self.add_image(tag, rgba, global_step, walltime, dataformats="HWC")

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        """Text (Markdown) under ``tag``."""
        self._write(ev.text_value(tag, str(text_string)), global_step, walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict, hparam_domain_discrete=None,
                    run_name=None, global_step=None) -> None:  # fmt: skip
        """The hyperparameters as a Markdown table (text) and each metric as a scalar.

        NOTE: TensorBoard's HParams dashboard needs its own plugin messages, which manygrad
        does not write; the values are in the Text and Scalars dashboards instead."""
        rows = "\n".join(f"| {k} | {v} |" for k, v in hparam_dict.items())
        self.add_text("hparams", "| hparam | value |\n|---|---|\n" + rows, global_step)
        for k, v in metric_dict.items():
            self.add_scalar(k, v, global_step)

    def add_graph(self, model, input_to_model=None, verbose=False, use_strict_trace=True):
        """Not recorded: manygrad runs eagerly and writes no graph (warns once)."""
        if not self._warned_graph:
            warnings.warn("SummaryWriter.add_graph: manygrad writes no model graph to "
                          "TensorBoard; the call is ignored", UserWarning, stacklevel=2)  # fmt: skip
            self._warned_graph = True


__all__ = ["SummaryWriter"]
