"""Blocking inference off the event loop, with a bounded number of concurrent jobs per model."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


@dataclass(order=True)
class _Job:
    rank: tuple[int, int]  # (-priority, arrival): the smallest runs first
    queued_at: float = field(compare=False)
    call: Callable[[], Any] = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)


class InferencePool:
    """A model's own worker threads: at most `workers` of its jobs run at once, the rest queue.

    Queued jobs run highest `priority` first (then in arrival order), so urgent work such as a
    caller's final transcript overtakes routine work (partials) that other calls queued earlier.
    A job cancelled before a worker takes it never runs.

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
        self._queue: list[_Job] = []
        self._order = itertools.count()

    def _submit(self, fn: Callable[..., T], *args: object, priority: int = 0) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job((-priority, next(self._order)), time.monotonic(), lambda: fn(*args), future, loop)
        with self._count_lock:
            self.waiting += 1
            heapq.heappush(self._queue, job)
        self._executor.submit(self._run_next)
        return future

    def _run_next(self) -> None:
        """One worker turn: the most urgent queued job (each submitted turn takes one job)."""
        with self._count_lock:
            job = heapq.heappop(self._queue)
            self.waiting -= 1
            if job.future.cancelled():  # a hang-up or barge-in took it back before a worker came
                return
            self.running += 1
        if self._on_wait is not None:
            self._on_wait(time.monotonic() - job.queued_at)
        try:
            result = job.call()
        except BaseException as exc:  # handed to the awaiting task
            job.loop.call_soon_threadsafe(_settle, job.future, None, exc)
        else:
            job.loop.call_soon_threadsafe(_settle, job.future, result, None)
        finally:
            with self._count_lock:
                self.running -= 1

    async def run(self, fn: Callable[..., T], *args: object, priority: int = 0) -> T:
        return await self._submit(fn, *args, priority=priority)

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


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return  # cancelled while it ran
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
