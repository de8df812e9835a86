"""The dialogue's actions carried out for one call: persisted in the store, then told to whoever listens."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from dialogue.base import EndCall, Escalate, EscalationReceipt, OpenTicket, TicketReceipt, UpdateTicket
from dialogue.manager import CallState
from dialogue.safety import mask_pii
from ticketing import store

Notify = Callable[[dict[str, Any]], Awaitable[None]]


async def _nobody(_event: dict[str, Any]) -> None:
    return None


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
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._state = state
        self._dialect = dialect
        self._notify = notify
        self.end_reason: str | None = None
        self.actions = 0  # counted as each begins: a turn that has acted can no longer be taken back

    async def run_db(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        def work() -> Any:
            with self._sessions() as session:
                return fn(session, **kwargs)

        return await asyncio.to_thread(work)

    async def open_ticket(self, action: OpenTicket) -> TicketReceipt:
        self.actions += 1
        ticket = await self.run_db(store.open_ticket, call_id=self._state.call_id, category=action.category,
                                   slots=action.slots, summary=mask_pii(action.summary), now=self._clock.now())
        sla = int((ticket.due_at - ticket.created_at).total_seconds() // 3600) if ticket.due_at else None
        await self._notify({"type": "ticket", "id": ticket.id, "number": ticket.number, "category": ticket.category})
        return TicketReceipt(ticket.id, ticket.number, ticket.category, sla)

    async def update_ticket(self, action: UpdateTicket) -> None:
        self.actions += 1
        ticket = await self.run_db(store.update_ticket_slots, ticket_id=action.ticket_id, slots=action.slots,
                                   now=self._clock.now())
        await self._notify({"type": "ticket", "id": ticket.id, "number": ticket.number,
                            "category": ticket.category, "updated": sorted(action.slots)})

    async def escalate(self, action: Escalate) -> EscalationReceipt:
        self.actions += 1
        state = self._state
        context = {"transcript": [{"role": m.role, "text": mask_pii(m.content)} for m in state.history],
                   "slots": dict(state.flow.slots) if state.flow else {},
                   "dialect": self._dialect}
        escalation = await self.run_db(store.raise_escalation, call_id=state.call_id, reason=action.reason,
                                       context=context, now=self._clock.now())
        await self._notify({"type": "escalation", "id": escalation.id, "reason": escalation.reason})
        return EscalationReceipt(escalation.id, escalation.reason)

    async def end_call(self, action: EndCall) -> None:
        self.actions += 1
        self.end_reason = action.reason
