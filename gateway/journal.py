"""A call's writes to the store, kept in order and retried until the store takes them.

Each call has a journal: its writes (call record, turns, tickets, escalations, the end) go in as
they happen and are written one after another by the journal's own task, so the call never waits
on the store to go on. When the store is away (restarting, unreachable) the write at the head is
retried with back-off and everything after it waits its turn; every write is idempotent (the call
id, turn numbers and request keys are made here), so a write retried after a commit whose answer
was lost adds nothing. A journal outlives its call until it is empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from gateway.logs import current_call

log = logging.getLogger("hotline.journal")

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0


def store_unavailable(exc: BaseException) -> bool:
    """Whether an error means the store is away (worth retrying), not that the write is wrong."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclass
class _Write:
    what: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    done: asyncio.Future[Any]
    already: type[Exception] | None = None  # this error on a retry means an earlier try got through


@dataclass
class CallJournal:
    call_id: str
    sessions: sessionmaker[Session]
    pending: deque[_Write] = field(default_factory=deque)
    store_away: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def submit(self, fn: Callable[..., Any], *, already: type[Exception] | None = None,
               **kwargs: Any) -> asyncio.Future[Any]:
        """Queues `fn(session, **kwargs)` behind the call's earlier writes; the future has its result."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
        self.pending.append(_Write(fn.__name__, fn, kwargs, done, already))
        self._wake.set()
        return done

    async def result(self, done: asyncio.Future[Any], within_s: float) -> Any | None:
        """The write's result when the store takes it soon; None when it is away (the write stays queued)."""
        if not done.done() and not self.store_away.is_set():
            away = asyncio.ensure_future(self.store_away.wait())
            try:
                await asyncio.wait({done, away}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                away.cancel()
        return done.result() if done.done() else None

    def close(self) -> None:
        """No more writes come; the journal's task ends once the queued ones are in the store."""
        self.closed = True
        self._wake.set()

    async def run(self) -> None:
        current_call.set(self.call_id)
        backoff = RETRY_FIRST_S
        while True:
            if not self.pending:
                if self.closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            write = self.pending[0]
            try:
                result = await asyncio.to_thread(self._apply, write)
            except Exception as exc:
                if store_unavailable(exc):
                    if not self.store_away.is_set():
                        log.warning("the store is away (%s); %d write(s) of call %s kept to retry",
                                    type(exc).__name__, len(self.pending), self.call_id)
                    self.store_away.set()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, RETRY_MAX_S)
                    continue
                log.error("the store refused %s for call %s: %s", write.what, self.call_id, exc)
                self.pending.popleft()
                write.done.set_exception(exc)
                continue
            if self.store_away.is_set():
                log.info("the store is back; writing the kept writes of call %s", self.call_id)
                self.store_away.clear()
            backoff = RETRY_FIRST_S
            self.pending.popleft()
            if not write.done.done():
                write.done.set_result(result)

    def _apply(self, write: _Write) -> Any:
        with self.sessions() as session:
            try:
                return write.fn(session, **write.kwargs)
            except Exception as exc:
                if write.already is not None and isinstance(exc, write.already):
                    return None
                raise


class Journals:
    """The journals of this process's calls, each written by its own task until it is empty."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.journals: dict[str, CallJournal] = {}

    def open(self, call_id: str) -> CallJournal:
        journal = CallJournal(call_id, self._sessions)
        self.journals[call_id] = journal
        task = asyncio.create_task(journal.run(), name=f"journal-{call_id}")
        self._tasks[call_id] = task
        task.add_done_callback(lambda _t: self._forget(call_id))
        return journal

    def _forget(self, call_id: str) -> None:
        self._tasks.pop(call_id, None)
        self.journals.pop(call_id, None)

    @property
    def pending_writes(self) -> int:
        return sum(len(j.pending) for j in self.journals.values())

    async def drain(self, within_s: float) -> int:
        """Waits up to `within_s` for every journal to empty; returns the writes still not stored."""
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=within_s)
        return self.pending_writes

    def cancel(self) -> None:
        if left := self.pending_writes:
            log.error("shutting down with %d write(s) the store never took", left)
        for task in self._tasks.values():
            task.cancel()
