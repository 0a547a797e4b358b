"""``@record`` and the error file of torchrun (``torch.distributed.elastic.multiprocessing
.errors``).

A launcher sets ``TORCHELASTIC_ERROR_FILE`` for each rank; a main decorated with
``@record`` writes the exception that ends it there as JSON (PyTorch's layout: the message,
the traceback and a timestamp) and re-raises it, so the launcher can report the first
failing rank's error. Without the variable nothing is written.

Example:
    >>> from torch.distributed.elastic.multiprocessing.errors import record
    >>> @record
    ... def main():
    ...     train()
"""

from __future__ import annotations

import faulthandler
import functools
import json
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field

__all__ = ["ChildFailedError", "ErrorHandler", "ProcessFailure", "get_error_handler", "record"]


@dataclass
class ProcessFailure:
    """One failed rank: its local rank, pid, exit code and error file (read if present)."""

    local_rank: int
    pid: int
    exitcode: int
    error_file: str
    message: str = field(init=False, default="")
    timestamp: int = field(init=False, default=0)

    def __post_init__(self):
        self.timestamp = int(time.time())
        self.error_file_data = {}
        if os.path.isfile(self.error_file):
            with open(self.error_file) as fp:
                self.error_file_data = json.load(fp)
            msg = self.error_file_data.get("message", "")
            if isinstance(msg, dict):
                self.timestamp = int(msg.get("extraInfo", {}).get("timestamp", self.timestamp))
                msg = msg.get("message", "")
            self.message = str(msg)
        if not self.message:
            self.message = (
                f"Signal {-self.exitcode} received by PID {self.pid}"
                if self.exitcode < 0
                else "To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html"
            )


class ChildFailedError(Exception):
    """Raised by a launcher when ranks fail; ``failures`` maps global rank to failure."""

    def __init__(self, name: str, failures: dict[int, ProcessFailure]):
        self.name = name
        self.failures = failures
        if not failures:
            raise ValueError("ChildFailedError: failures must name at least one failed rank")
        rank, first = self.get_first_failure()
        super().__init__(f"{name} FAILED: rank {rank} (exitcode {first.exitcode}): {first.message}")

    def get_first_failure(self) -> tuple[int, ProcessFailure]:
        """The rank that failed first, and its failure."""
        rank = min(self.failures, key=lambda r: self.failures[r].timestamp)
        return rank, self.failures[rank]


class ErrorHandler:
    """Writes an exception as JSON to the file ``TORCHELASTIC_ERROR_FILE`` names.

    Subclass it and pass an instance to ``record(fn, error_handler=...)`` to handle
    errors another way.
    """

    def _get_error_file_path(self) -> str | None:
        return os.environ.get("TORCHELASTIC_ERROR_FILE", None)

    def initialize(self) -> None:
        """Turn on Python's fault handler, so that a crash prints every thread's stack."""
        try:
            faulthandler.enable(all_threads=True)
        except Exception as e:  # NOTE: e.g. a stderr without a file descriptor
            warnings.warn(f"Unable to enable fault handler. {type(e).__name__}: {e}",
                          stacklevel=2)  # fmt: skip

    def record_exception(self, e: BaseException) -> None:
        """Write ``e`` (message, traceback, time) to the error file, if one is named."""
        path = self._get_error_file_path()
        if not path:
            return
        data = {
            "message": {
                "message": f"{type(e).__name__}: {e}",
                "extraInfo": {
                    "py_callstack": traceback.format_exc(),
                    "timestamp": str(int(time.time())),
                },
            }
        }
        with open(path, "w") as fp:
            json.dump(data, fp)

    def dump_error_file(self, rootcause_error_file: str, error_code: int = 0) -> None:
        """Copy a child's error file to this process's (with its exit code, if given)."""
        with open(rootcause_error_file) as fp:
            data = json.load(fp)
        if error_code and isinstance(data.get("message"), dict):
            data["message"]["errorCode"] = error_code
        path = self._get_error_file_path()
        if path:
            with open(path, "w") as fp:
                json.dump(data, fp)


def get_error_handler() -> ErrorHandler:
    return ErrorHandler()


def record(fn, error_handler: ErrorHandler | None = None):
    """Decorate a rank's main: an exception that escapes it is written to the error file
    (``TORCHELASTIC_ERROR_FILE``) and raised again; ``SystemExit(0)`` returns None.

    Example:
        >>> @record
        ... def main():
        ...     ...
    """
    handler = error_handler or get_error_handler()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        handler.initialize()
        try:
            return fn(*args, **kwargs)
        except SystemExit as se:
            if se.code == 0:
                return None
            raise
        except ChildFailedError as e:
            _, failure = e.get_first_failure()
            if os.path.isfile(failure.error_file):
                handler.dump_error_file(failure.error_file, failure.exitcode)
            raise
        except Exception as e:
            handler.record_exception(e)
            raise

    return wrapper
