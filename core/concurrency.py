"""Blocking inference off the event loop, with a bounded number of concurrent jobs per model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class InferencePool:
    """A model's own worker threads: at most `workers` of its jobs run at once, the rest queue."""

    def __init__(self, name: str, workers: int = 1) -> None:
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"infer-{name}")

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

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

        job = loop.run_in_executor(self._executor, pump)
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
