"""``torch.futures``: ``Future`` (a value provided later), ``collect_all`` and ``wait_all``.

The futures of ``mg.distributed`` (``work.get_future()``) and the ones made here share one
base class; DDP communication hooks return either kind.

Example:
    >>> fut = mg.futures.Future()
    >>> fut.set_result(3)
    >>> fut.then(lambda f: f.value() + 1).wait()
    4
"""

from __future__ import annotations

import types

from .distributed.work import Future as _BaseFuture


class Future(_BaseFuture):
    """A value that ``set_result`` (or ``set_exception``) provides later.

    ``wait()``/``value()`` return it, ``then(fn)`` chains a future of ``fn(self)``,
    ``add_done_callback(fn)`` runs ``fn(self)`` once it is set. ``Future[T]`` is a type
    annotation, as in PyTorch.

    Args:
        devices: accepted for PyTorch compatibility.
    """

    def __init__(self, *, devices=None):
        super().__init__()
        self._done = False

    def wait(self):
        """The value, once set (raises the exception given to ``set_exception``)."""
        if not self._done and self._work is None:
            raise RuntimeError(
                "Future.wait: no value was set on this future; call fut.set_result(value) "
                "first (manygrad runs in one thread, so nothing else will set it)"
            )
        return super().wait()

    __class_getitem__ = classmethod(types.GenericAlias)


class _AllOf(Future):
    """The future of ``collect_all``: done once every one of its futures is."""

    def __init__(self, futures: list):
        super().__init__()
        self._futures = futures
        if not futures:
            self.set_result([])

    def done(self) -> bool:
        if not self._done and all(f.done() for f in self._futures):
            self._settle()
        return self._done

    def wait(self):
        if not self._done:
            self._settle()
        return super().wait()

    def _settle(self) -> None:
        first = None
        for f in self._futures:
            try:
                f.wait()
            except Exception as e:  # noqa: BLE001 - delivered through this future
                first = first or e
        if first is not None:
            self.set_exception(first)
        else:
            self.set_result(self._futures)


def collect_all(futures: list) -> Future:
    """A future whose value is the list ``futures``, once all of them are done (the first
    error among them becomes its error).

    Example:
        >>> mg.futures.collect_all([f1, f2]).wait()   # [f1, f2], both complete
    """
    return _AllOf(list(futures))


def wait_all(futures: list) -> list:
    """Wait for every future and return their values (the first error is raised)."""
    return [f.wait() for f in futures]


__all__ = ["Future", "collect_all", "wait_all"]
