"""Blocking inference off the event loop, with a bounded number of concurrent jobs per model."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


class InferencePool:
    """A model's own worker threads: at most `workers` of its jobs run at once, the rest queue.

    `waiting` and `running` count its jobs; `on_wait`, when given, is told how long each job
    waited in the queue (seconds) when a worker takes it.
    """

    def __init__(self, name: str, workers: int = 1, *, on_wait: Callable[[float], None] | None = None) -> None:
        self.name = name
        self.workers = workers
        self.waiting = 0
        self.running = 0
        self._on_wait = on_wait
        self._count_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"infer-{name}")

    def _submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        with self._count_lock:
            self.waiting += 1
        future = self._executor.submit(self._counted(time.monotonic(), fn, *args))
        future.add_done_callback(self._uncount_if_cancelled)
        return asyncio.wrap_future(future)

    def _uncount_if_cancelled(self, future: Future[Any]) -> None:
        if future.cancelled():  # taken off the queue before a worker reached it (a hang-up, a barge-in)
            with self._count_lock:
                self.waiting -= 1

    def _counted(self, queued_at: float, fn: Callable[..., T], *args: object) -> Callable[[], T]:

        def job() -> T:
            waited = time.monotonic() - queued_at
            with self._count_lock:
                self.waiting -= 1
                self.running += 1
            if self._on_wait is not None:
                self._on_wait(waited)
            try:
                return fn(*args)
            finally:
                with self._count_lock:
                    self.running -= 1

        return job

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await self._submit(fn, *args)

    async def stream(self, produce: Callable[[], Iterator[T]]) -> AsyncGenerator[T, None]:
        """Iterate a blocking generator in a worker thread, yielding its items on the event loop.

        When the consumer stops early (cancellation, barge-in), the worker closes the generator
        at its next item, so the model stops decoding instead of running to its token limit.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def pump() -> None:
            items = produce()
            try:
                for item in items:
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, item)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        job = self._submit(pump)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            job.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
