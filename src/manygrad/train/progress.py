"""Progress display for training: tqdm when installed, else a plain line."""

from __future__ import annotations

import sys
import time


def _fmt_rate(r: float) -> str:
    return f"{r / 1000:.1f}k/s" if r >= 1000 else f"{r:.0f}/s"


class Progress:
    """One bar per epoch showing loss, accuracy, samples/s and the device.

    With ``bar=False`` only the line at the end of each epoch is printed (ranks other than 0
    of a data-parallel run, whose output goes to a log file).
    """

    def __init__(self, enabled: bool, device: str, stream=None, bar: bool = True):
        self.enabled = enabled
        self.device = device
        self.chosen = stream is not None  # summaries follow an explicit stream
        self.stream = stream or sys.stderr
        self.live = bar
        self._bar = None
        self._tqdm = None
        # NOTE: a live bar only on a terminal or in a notebook; logs (CI, nohup, files) get
        # one line per epoch instead of a carriage-return bar per update
        interactive = _isatty(self.stream) or "ipykernel" in sys.modules
        if enabled and bar and interactive:
            try:
                from tqdm.auto import tqdm

                self._tqdm = tqdm
            except ImportError:
                self._tqdm = None
        self._last = 0.0
        self._desc = ""
        self._total = 0

    def start_epoch(self, epoch: int, epochs: int, total: int, done: int = 0) -> None:
        if not self.enabled:
            return
        self._desc = f"epoch {epoch}/{epochs}"
        self._total = total
        if self._tqdm is not None:
            self._bar = self._tqdm(
                total=total,
                initial=done,
                desc=self._desc,
                unit="step",
                leave=False,
                file=self.stream,
                dynamic_ncols=True,
            )

    def update(self, done: int, loss: float, acc: float | None, rate: float) -> None:
        if not self.enabled:
            return
        parts = {"loss": f"{loss:.4f}"}
        if acc is not None:
            parts["acc"] = f"{100 * acc:.1f}%"
        parts["speed"] = _fmt_rate(rate)
        parts["device"] = self.device
        if self._bar is not None:
            self._bar.n = done
            self._bar.set_postfix(parts, refresh=True)
        elif self.live and time.perf_counter() - self._last > 0.5 and _isatty(self.stream):
            self._last = time.perf_counter()
            body = " ".join(f"{k} {v}" for k, v in parts.items())
            self.stream.write(f"\r{self._desc} [{done}/{self._total}] {body}   ")
            self.stream.flush()

    def end_epoch(self, row: dict) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if not self.enabled:
            return
        msg = f"{self._desc}: loss {row['train_loss']:.4f}"
        if row.get("train_accuracy") is not None:
            msg += f", acc {100 * row['train_accuracy']:.1f}%"
        if row.get("test_accuracy") is not None:
            msg += f", test acc {100 * row['test_accuracy']:.1f}%"
        elif row.get("test_loss") is not None:
            msg += f", test loss {row['test_loss']:.4f}"
        msg += f", {_fmt_rate(row['samples_per_s'])} on {self.device}"
        if self._tqdm is None and self.live and _isatty(self.stream):
            self.stream.write("\r")
        for s in self._summary_streams():
            print(msg, file=s, flush=True)

    def _summary_streams(self) -> list:
        """Where epoch lines go: a redirected stdout (a log keeps them) and the terminal
        that shows the bar; stdout when neither applies."""
        if self.chosen:
            return [self.stream]
        out = [] if _isatty(sys.stdout) else [sys.stdout]
        if _isatty(self.stream) and self.stream is not sys.stdout:
            out.append(self.stream)
        return out or [sys.stdout]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
