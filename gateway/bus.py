"""Messages between gateway processes: which agent holds which call, what an agent says, the queue.

`LocalBus` delivers inside one process (the embedded default); `RedisBus` (HOTLINE_REDIS_URL) carries
the same messages to every gateway subscribed to the same Redis, so an agent whose console is
connected to one gateway can take a call held by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger("hotline.bus")

Handler = Callable[[dict[str, Any]], Awaitable[None]]
CHANNEL_PREFIX = "hotline:desk:"


class Bus(Protocol):
    async def publish(self, topic: str, message: dict[str, Any]) -> None: ...

    def subscribe(self, topic: str, handler: Handler) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalBus:
    """Delivers each message to this process's handlers, in order, after the publisher's turn."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        for handler in self._handlers.get(topic, []):
            await _deliver(handler, message)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisBus:
    """Redis pub/sub: every gateway hears every message and keeps those about its own calls and agents."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self._handlers: dict[str, list[Handler]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        await self._redis.publish(CHANNEL_PREFIX + topic, json.dumps(message, ensure_ascii=False))

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="desk-bus")
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def _listen(self) -> None:
        while True:  # a Redis that goes away is waited for; the calls go on meanwhile
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(*(CHANNEL_PREFIX + topic for topic in self._handlers))
                    self._subscribed.set()
                    async for raw in pubsub.listen():
                        await self._dispatch(raw)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the desk bus lost Redis; reconnecting")
                await asyncio.sleep(1.0)

    async def _dispatch(self, raw: dict[str, Any]) -> None:
        if raw.get("type") != "message":
            return
        topic = raw["channel"].decode().removeprefix(CHANNEL_PREFIX)
        message = json.loads(raw["data"])
        for handler in self._handlers.get(topic, []):
            await _deliver(handler, message)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()


async def _deliver(handler: Handler, message: dict[str, Any]) -> None:
    try:
        await handler(message)
    except Exception:  # one bad handler must not stop the others, nor the bus
        log.exception("a desk message could not be handled: %s", message.get("do") or message.get("type"))


def open_bus(redis_url: str | None) -> Bus:
    return RedisBus(redis_url) if redis_url else LocalBus()
