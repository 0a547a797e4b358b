"""``Work``: the handle of an operation started with ``async_op=True`` (or ``isend``/``irecv``).

Most collectives of manygrad complete before they return, and their handle is already
complete. ``all_reduce(async_op=True)``, ``isend``, ``irecv`` and ``batch_isend_irecv``
really run in the background: their data is ready once ``wait()`` returns (or
``is_completed()`` says True).
"""

from __future__ import annotations

from datetime import timedelta

from .mpi_backend import DistBackendError


class Future:
    """The result of a ``Work`` (``torch.futures.Future``): a list of the output tensors.

    Example:
        >>> fut = dist.all_reduce(t, async_op=True).get_future()
        >>> fut.wait()[0] is t
        True
    """

    def __init__(self, work: Work | None = None, value=None):
        self._work, self._value, self._exc = work, value, None
        self._callbacks: list = []
        self._done = work is None

    def _finish(self, value=None, exc: BaseException | None = None) -> None:
        self._value, self._exc, self._done = value, exc, True
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(self)

    def done(self) -> bool:
        """True once the result is there (never waits)."""
        if not self._done and self._work is not None:
            self._work.is_completed()
        return self._done

    def wait(self):
        """Wait for the result and return it (raises the operation's error, if any)."""
        if not self._done and self._work is not None:
            self._work.wait()
        if self._exc is not None:
            raise self._exc
        return self._value

    def value(self):
        """The result of a completed future."""
        return self.wait()

    def then(self, callback) -> Future:
        """A new future holding ``callback(self)``, run once this one completes."""
        child = Future(work=self._work)
        child._done = False

        def run(fut):
            try:
                child._finish(callback(fut))
            except Exception as e:  # noqa: BLE001 - delivered through the child future
                child._finish(exc=e)

        self.add_done_callback(run)
        return child

    def add_done_callback(self, callback) -> None:
        """Call ``callback(self)`` once complete (at once when it already is)."""
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def set_result(self, result) -> None:
        self._finish(result)

    def set_exception(self, result: BaseException) -> None:
        self._finish(exc=result)


class Work:
    """A communication in progress, or already done.

    Args:
        result: the output tensors (what ``get_future().wait()`` returns).
        finish: for a pending operation, a function that waits for it (bounded by the
            process group's timeout, or ``timeout`` seconds when given) and writes the data.
        test: for a pending operation, a function saying without waiting whether it is done.
        source: a function giving the sender's group rank (receives from any rank).
    """

    def __init__(self, result=None, finish=None, test=None, source=None):
        self._result = [] if result is None else result
        self._finish, self._test, self._source = finish, test, source
        self._exc: BaseException | None = None
        self._future: Future | None = None

    def _complete(self, timeout=None) -> None:
        finish, self._finish = self._finish, None
        try:
            finish(timeout)
        except DistBackendError as e:
            if timeout is not None:  # NOTE: a wait that ran out of time may be tried again
                self._finish = finish
                raise
            self._exc = e
        except BaseException as e:
            self._exc = e
        if self._future is not None:
            self._future._finish(self._result, self._exc)
        if self._exc is not None:
            raise self._exc

    def wait(self, timeout: timedelta | float | None = None) -> bool:
        """Wait until the operation completes; returns True.

        Args:
            timeout: give up after this long (seconds or timedelta) with ``DistBackendError``
                (the operation stays pending); default: the process group's timeout, past
                which the job is aborted.
        """
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        if self._finish is not None:
            self._complete(timeout)
        elif self._exc is not None:
            raise self._exc
        return True

    def is_completed(self) -> bool:
        """True when the operation has finished (it then also writes its output)."""
        if self._finish is None:
            return True
        if self._test is not None and not self._test():
            return False
        self._complete()
        return True

    def is_success(self) -> bool:
        """True when completed without error."""
        return self.is_completed() and self._exc is None

    def exception(self):
        return self._exc

    def source_rank(self) -> int:
        """The group rank that sent the data (for ``irecv`` from any rank), once completed."""
        if self._source is None:
            raise ValueError("source_rank: only a receive (irecv/recv) has a source rank")
        self.wait()
        return self._source()

    _source_rank = source_rank

    def result(self) -> list:
        """The output tensors (after waiting)."""
        self.wait()
        return self._result

    def synchronize(self) -> None:
        self.wait()

    def get_future(self) -> Future:
        """A ``Future`` whose value is the list of output tensors."""
        if self._future is None:
            fut = Future(work=self)
            fut._done = False
            if self._finish is None:
                fut._finish(self._result, self._exc)
            self._future = fut
        return self._future


def done_work(async_op: bool, result=None) -> Work | None:
    """A completed ``Work`` when ``async_op``, else None."""
    return Work(result) if async_op else None
