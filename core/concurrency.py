"""Blocking inference off the event loop, with a bounded number of concurrent jobs per model."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class InferencePool:
    """A model's own worker threads: at most `workers` of its jobs run at once, the rest queue."""

    def __init__(self, name: str, workers: int = 1) -> None:
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"infer-{name}")

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
