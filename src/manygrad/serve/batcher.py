"""Batching of concurrent requests: samples that arrive within ``max_wait`` of each other
run through the model together, up to ``max_batch`` samples, on one worker thread.

NOTE: a batch waits for more requests only while requests that have arrived are not in it
yet (queued behind it or still being decoded); a lone request runs at once, so batching
costs no latency at concurrency 1."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_STOP = object()


class Batcher:
    """Collects request batches into model batches; ``fn(x) -> list`` runs one of them.

    Args:
        fn: takes a float32 batch ``(N, ...)`` and returns one result per sample.
        max_batch: most samples per model call (default 32); a larger request runs alone.
        max_wait_ms: how long the first request of a batch waits for others (default 5).
    """

    def __init__(self, fn, max_batch: int = 32, max_wait_ms: float = 5.0):
        self.fn, self.max_batch, self.max_wait = fn, max_batch, max_wait_ms / 1000.0
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="manygrad-serve")
        self.batches = 0  # model calls so far (for /health)
        self.arrived = 0  # requests announced and not answered yet

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Run what is queued, then stop."""
        if self.task is not None:
            await self.queue.put((_STOP, None))
            await self.task
        self.pool.shutdown(wait=True)

    def announce(self) -> None:
        """A request has arrived (its body is being read): batches may wait for it."""
        self.arrived += 1

    def withdraw(self) -> None:
        """An announced request is done (answered, or refused before it was submitted)."""
        self.arrived -= 1

    async def submit(self, x: np.ndarray, announced: bool = False) -> list:
        if not announced:
            self.announce()
        fut = asyncio.get_running_loop().create_future()
        try:
            await self.queue.put((x, fut))
            return await fut
        finally:
            self.withdraw()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pending = None
        while True:
            item = pending or await self.queue.get()
            pending = None
            if item[0] is _STOP:
                return
            items, n = [item], len(item[0])
            deadline = loop.time() + self.max_wait
            while n < self.max_batch:
                if self.queue.empty() and self.arrived <= len(items):
                    break  # nobody else to wait for
                left = deadline - loop.time()
                try:
                    nxt = self.queue.get_nowait() if left <= 0 else await asyncio.wait_for(
                        self.queue.get(), left)  # fmt: skip
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                if nxt[0] is _STOP or n + len(nxt[0]) > self.max_batch:
                    pending = nxt  # NOTE: starts the next batch (or stops after this one)
                    break
                items.append(nxt)
                n += len(nxt[0])
            await self._call(loop, items)

    async def _call(self, loop, items) -> None:
        batch = np.concatenate([x for x, _ in items]) if len(items) > 1 else items[0][0]
        try:
            out = await loop.run_in_executor(self.pool, self.fn, batch)
        except Exception as e:  # noqa: BLE001 - reported to each waiting request
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(e)
            return
        self.batches += 1
        start = 0
        for x, fut in items:
            if not fut.done():  # NOTE: a client that went away leaves a cancelled future
                fut.set_result(out[start : start + len(x)])
            start += len(x)


__all__ = ["Batcher"]
