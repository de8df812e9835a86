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

from sqlalchemy.exc import SQLAlchemyError
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
        reuse_open: bool = True,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._state = state
        self._dialect = dialect
        self._notify = notify
        self._journal = journal
        self._gateway = gateway
        self._on_escalated = on_escalated  # the call joins the live queue as soon as the store has it
        # A caller with an open ticket of the same category hears about it rather than getting a second one.
        self._reuse_open = reuse_open
        self._sla = (sessions.kw.get("info") or {}).get("sla", DEFAULT_SLA)  # as the store's sessions carry it
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
        if self._reuse_open and (existing := await self._open_ticket_of_caller(action)) is not None:
            return await self._existing(action, existing)
        now = self._clock.now()
        key = uuid.uuid4().hex
        ticket, kept = await self._write(store.open_ticket, call_id=self._state.call_id, category=action.category,
                                         slots=action.slots, summary=mask_pii(action.summary), now=now,
                                         request_key=key, phone=self._own_number(action))
        if kept is not None:
            return await self._ticket_kept(action, key, now, kept)
        await self._notify(events.Ticket(id=ticket.id, number=ticket.number, category=ticket.category))
        return TicketReceipt(ticket.id, ticket.number, ticket.category,
                             _sla_hours(ticket.created_at, ticket.resolution_due_at))

    def _phones(self, action: OpenTicket) -> list[str]:
        return [phone for phone in (action.slots.get("phone"), self._state.caller_id) if phone]

    def _own_number(self, action: OpenTicket) -> str | None:
        """The calling number as the ticket's phone when the caller gave none (agents call back on it)."""
        return None if action.slots.get("phone") else self._state.caller_id

    async def _open_ticket_of_caller(self, action: OpenTicket) -> TicketPublic | None:
        """The caller's open ticket of this category, if the store says so soon; a store that is away
        (the journal keeps the writes) is not waited for: the new ticket is filed as usual."""
        if not (phones := self._phones(action)):
            return None
        try:
            return await asyncio.wait_for(
                self.run_db(store.find_open_ticket, phones=phones, category=action.category), STORE_WAIT_S)
        except (TimeoutError, SQLAlchemyError):
            return None

    async def _existing(self, action: OpenTicket, ticket: TicketPublic) -> TicketReceipt:
        """The caller is told about the ticket they have; what they said now is noted on it."""
        note = f"来电人再次来电：{mask_pii(action.summary)}" if action.summary else "来电人再次来电"
        try:
            await self.run_db(store.add_ticket_note, ticket_id=ticket.id, text=note, now=self._clock.now())
        except SQLAlchemyError:
            pass  # the caller still hears their ticket's number; only the note is lost
        await self._notify(events.Ticket(id=ticket.id, number=ticket.number, category=ticket.category, existing=True,
                                         status=ticket.status.value))
        return TicketReceipt(ticket.id, ticket.number, ticket.category,
                             _sla_hours(ticket.created_at, ticket.resolution_due_at), existing_status=ticket.status.value)

    async def _ticket_kept(self, action: OpenTicket, key: str, now: datetime, kept: asyncio.Future[Any]) -> TicketReceipt:
        provisional = -(len(self._kept_tickets) + 1)
        self._kept_tickets[provisional] = key
        kept.add_done_callback(lambda f: self._ticket_stored(provisional, f))
        await self._notify(events.Ticket(id=None, number=None, category=action.category, pending=True))
        due = self._sla.due_at(TicketCategory(action.category), now)
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
