"""The dialogue's actions carried out for one call: persisted in the store, then told to whoever listens.

With a journal (a live call) the writes go through it: a ticket or escalation the store takes at
once is read back with its number; when the store is away the caller is told it is recorded, the
write stays in the journal, and the real number follows as a `ticket` event once it is stored.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from dialogue.base import EndCall, Escalate, EscalationReceipt, OpenTicket, TicketReceipt, UpdateTicket
from dialogue.manager import CallState
from dialogue.safety import mask_pii
from gateway import events
from gateway.journal import CallJournal
from ticketing import TicketCategory, TicketPublic, store
from ticketing.sla import DEFAULT_SLA

Notify = Callable[[events.ServerEvent], Awaitable[None]]
SUMMARY_UTTERANCES = 3  # the caller's last words, as the agent's first look at the call
STORE_WAIT_S = 3.0  # how long a turn waits for its ticket's number before going on without it


async def _nobody(_event: events.ServerEvent) -> None:
    return None


def update_ticket_by_key(
    session: Session, *, call_id: str, request_key: str, slots: dict[str, str], now: datetime
) -> TicketPublic:
    """Slot corrections for a ticket known only by the key it was opened with (kept while the store was away)."""
    ticket = store.get_ticket_by_request_key(session, call_id=call_id, request_key=request_key)
    return store.update_ticket_slots(session, ticket_id=ticket.id, slots=slots, now=now)


class StoreDesk:
    """ActionDesk of one call: tickets, escalations and the call's end go to the ticketing store."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        state: CallState,
        *,
        dialect: str | None = None,
        notify: Notify = _nobody,
        journal: CallJournal | None = None,
        gateway: str | None = None,
        on_escalated: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._state = state
        self._dialect = dialect
        self._notify = notify
        self._journal = journal
        self._gateway = gateway
        self._on_escalated = on_escalated  # the call joins the live queue as soon as the store has it
        self._kept_tickets: dict[int, str] = {}  # provisional (negative) ticket id -> request key
        self.end_reason: str | None = None
        self.actions = 0  # counted as each begins: a turn that has acted can no longer be taken back

    async def run_db(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        def work() -> Any:
            with self._sessions() as session:
                return fn(session, **kwargs)

        return await asyncio.to_thread(work)

    async def _write(self, fn: Callable[..., Any], **kwargs: Any) -> tuple[Any, asyncio.Future[Any] | None]:
        """(the result, None) when stored at once; (None, its future) when the journal keeps it for later."""
        if self._journal is None:
            return await self.run_db(fn, **kwargs), None
        done = self._journal.submit(fn, **kwargs)
        result = await self._journal.result(done, STORE_WAIT_S)
        return (result, None) if done.done() else (None, done)

    async def open_ticket(self, action: OpenTicket) -> TicketReceipt:
        self.actions += 1
        now = self._clock.now()
        key = uuid.uuid4().hex
        ticket, kept = await self._write(store.open_ticket, call_id=self._state.call_id, category=action.category,
                                         slots=action.slots, summary=mask_pii(action.summary), now=now,
                                         request_key=key)
        if kept is not None:
            return await self._ticket_kept(action, key, now, kept)
        await self._notify(events.Ticket(id=ticket.id, number=ticket.number, category=ticket.category))
        return TicketReceipt(ticket.id, ticket.number, ticket.category, _sla_hours(ticket.created_at, ticket.due_at))

    async def _ticket_kept(self, action: OpenTicket, key: str, now: datetime, kept: asyncio.Future[Any]) -> TicketReceipt:
        provisional = -(len(self._kept_tickets) + 1)
        self._kept_tickets[provisional] = key
        kept.add_done_callback(lambda f: self._ticket_stored(provisional, f))
        await self._notify(events.Ticket(id=None, number=None, category=action.category, pending=True))
        due = DEFAULT_SLA.due_at(TicketCategory(action.category), now)
        return TicketReceipt(provisional, None, action.category, _sla_hours(now, due))

    def _ticket_stored(self, provisional: int, done: asyncio.Future[Any]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        ticket: TicketPublic = done.result()
        flow = self._state.flow
        if flow is not None and flow.ticket is not None and flow.ticket.id == provisional:
            flow.ticket = TicketReceipt(ticket.id, ticket.number, ticket.category, flow.ticket.sla_hours)
        asyncio.ensure_future(self._notify(events.Ticket(id=ticket.id, number=ticket.number, category=ticket.category,
                                                         was_pending=True)))

    async def update_ticket(self, action: UpdateTicket) -> None:
        self.actions += 1
        now = self._clock.now()
        if (key := self._kept_tickets.get(action.ticket_id)) is not None:
            ticket, _ = await self._write(update_ticket_by_key, call_id=self._state.call_id, request_key=key,
                                          slots=action.slots, now=now)
        else:
            ticket, _ = await self._write(store.update_ticket_slots, ticket_id=action.ticket_id,
                                          slots=action.slots, now=now)
        if ticket is not None:
            await self._notify(events.Ticket(id=ticket.id, number=ticket.number, category=ticket.category,
                                             updated=tuple(sorted(action.slots))))

    async def escalate(self, action: Escalate) -> EscalationReceipt:
        self.actions += 1
        state = self._state
        said = [mask_pii(m.content) for m in state.history if m.role == "user"]
        context = {"transcript": [{"role": m.role, "text": mask_pii(m.content)} for m in state.history],
                   "slots": dict(state.flow.slots) if state.flow else {},
                   "dialect": self._dialect,
                   "summary": "；".join(said[-SUMMARY_UTTERANCES:])}
        escalation, kept = await self._write(store.raise_escalation, call_id=state.call_id, reason=action.reason,
                                             context=context, now=self._clock.now(),
                                             request_key=uuid.uuid4().hex, gateway=self._gateway)
        if kept is not None:
            await self._notify(events.Escalation(id=None, reason=action.reason, pending=True))
            return EscalationReceipt(-1, action.reason)
        await self._notify(events.Escalation(id=escalation.id, reason=escalation.reason))
        if self._on_escalated is not None:
            await self._on_escalated(escalation.id)
        return EscalationReceipt(escalation.id, escalation.reason)

    async def end_call(self, action: EndCall) -> None:
        self.actions += 1
        self.end_reason = action.reason


def _sla_hours(opened: datetime, due: datetime | None) -> int | None:
    return int((due - opened).total_seconds() // 3600) if due else None
