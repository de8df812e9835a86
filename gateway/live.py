"""The live desk: escalated calls wait in a queue, an agent takes one, and from then on the agent's
words are spoken in the call and the caller's words reach the agent's console.

The store is the truth of who holds which call (an accept is one conditional UPDATE, so two agents
cannot both get a call); the bus carries what happens to the gateway concerned: to the one the call
is on ("calls") and to the ones the agent's consoles are on ("agents", by agent name). A console
that goes away puts its calls back in the queue.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from gateway import events
from gateway.bus import Bus
from ticketing import EscalationStatus, EscalationTaken, NotFoundError, TicketingError, store

log = logging.getLogger("hotline.live")

Send = Callable[[dict[str, Any]], Awaitable[None]]


class HeldCall(Protocol):
    """What the desk may do to a call on this gateway (a CallSession)."""

    async def agent_joined(self, agent: str) -> None: ...

    async def agent_says(self, text: str) -> None: ...

    async def agent_left(self) -> None: ...

    async def handed_back(self) -> None: ...

    async def agent_hung_up(self) -> None: ...


class DeskError(Exception):
    """An agent's request that cannot be done; `code` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Seat:
    """One console connected to this gateway."""

    agent: str
    send: Send
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class LiveDesk:
    def __init__(self, bus: Bus, sessions: sessionmaker[Session], clock: Clock, gateway: str) -> None:
        self.bus = bus
        self.gateway = gateway
        self._sessions = sessions
        self._clock = clock
        self._calls: dict[str, HeldCall] = {}  # escalated calls on this gateway
        self._escalations: dict[str, int] = {}  # call id -> its escalation
        self._seats: dict[str, Seat] = {}
        bus.subscribe("calls", self._on_call_message)
        bus.subscribe("agents", self._on_agent_message)
        bus.subscribe("queue", self._on_queue_changed)

    async def _db(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        def work() -> Any:
            with self._sessions() as session:
                return fn(session, **kwargs)

        return await asyncio.to_thread(work)

    # ---- the calls' side ------------------------------------------------------------------------

    async def enqueue(self, call_id: str, escalation_id: int, call: HeldCall) -> int:
        """The call waits for an agent; returns how many calls wait before it."""
        self._calls[call_id] = call
        self._escalations[call_id] = escalation_id
        await self.queue_changed()
        return await self.position(escalation_id)

    async def position(self, escalation_id: int) -> int:
        """How many calls wait before this one."""
        waiting = await self._db(store.list_escalations, status=EscalationStatus.WAITING, limit=500)
        return sum(1 for e in waiting if e.id < escalation_id)

    async def leave(self, call_id: str, holder: str | None) -> None:
        """The call is over (or back with the bot for good): it leaves the queue or its agent."""
        self._calls.pop(call_id, None)
        escalation_id = self._escalations.pop(call_id, None)
        if escalation_id is None:
            return
        status = EscalationStatus.CLOSED if holder else EscalationStatus.ABANDONED
        try:
            await self._db(store.update_escalation_status, escalation_id=escalation_id, status=status,
                           now=self._clock.now())
        except TicketingError as exc:  # handed back or closed meanwhile: nothing to record
            log.info("escalation %s of call %s stays as it is: %s", escalation_id, call_id, exc)
        if holder:
            await self.tell_agent(holder, events.Released(call_id=call_id, reason="caller_hangup"))
        await self.queue_changed()

    async def tell_agent(self, agent: str, event: events.ServerEvent) -> None:
        await self.bus.publish("agents", {"agent": agent, "event": event.as_dict()})

    async def queue_changed(self) -> None:
        await self.bus.publish("queue", {})

    async def _on_call_message(self, message: dict[str, Any]) -> None:
        call = self._calls.get(message["call_id"])
        if call is None:
            return
        do = message["do"]
        if do == "join":
            await call.agent_joined(message["agent"])
        elif do == "say":
            await call.agent_says(message["text"])
        elif do == "left":
            await call.agent_left()
        elif do == "hand_back":
            self._calls.pop(message["call_id"], None)
            self._escalations.pop(message["call_id"], None)
            await call.handed_back()
        elif do == "hang_up":
            self._calls.pop(message["call_id"], None)
            self._escalations.pop(message["call_id"], None)
            await call.agent_hung_up()

    # ---- the agents' side -----------------------------------------------------------------------

    async def sit(self, agent: str, send: Send) -> Seat:
        seat = Seat(agent, send)
        self._seats[seat.id] = seat
        await seat.send(events.Hello(agent=agent).as_dict())
        await seat.send(events.Queue(waiting=tuple(await self.queue())).as_dict())
        return seat

    async def stand(self, seat: Seat) -> None:
        """A console went away: the calls its agent held wait for someone else (unless another console
        of the same agent is still here)."""
        self._seats.pop(seat.id, None)
        if any(other.agent == seat.agent for other in self._seats.values()):
            return
        held = await self._db(store.list_escalations, status=EscalationStatus.ACCEPTED, limit=500)
        for escalation in held:
            if escalation.agent != seat.agent or escalation.call_id is None:
                continue
            try:
                await self._db(store.update_escalation_status, escalation_id=escalation.id,
                               status=EscalationStatus.WAITING, now=self._clock.now())
            except TicketingError:
                continue
            await self.bus.publish("calls", {"call_id": escalation.call_id, "do": "left"})
        await self.queue_changed()

    async def accept(self, agent: str, escalation_id: int) -> events.Accepted:
        """The agent takes a waiting call; the `accepted` event (with the call so far) is returned."""
        try:
            escalation = await self._db(store.update_escalation_status, escalation_id=escalation_id,
                                        status=EscalationStatus.ACCEPTED, now=self._clock.now(), agent=agent)
        except EscalationTaken as exc:
            raise DeskError("taken", str(exc)) from None
        except NotFoundError as exc:
            raise DeskError("unknown_escalation", str(exc)) from None
        except TicketingError as exc:
            raise DeskError("not_waiting", str(exc)) from None
        item = await self._db(_queue_item, escalation=escalation, now=self._clock.now())
        await self.bus.publish("calls", {"call_id": escalation.call_id, "do": "join", "agent": agent})
        await self.queue_changed()
        return events.Accepted(**item)

    async def say(self, agent: str, call_id: str, text: str) -> None:
        await self._held_by(agent, call_id)
        await self.bus.publish("calls", {"call_id": call_id, "do": "say", "text": text})

    async def hand_back(self, agent: str, call_id: str) -> None:
        await self._release(agent, call_id, EscalationStatus.HANDED_BACK, "hand_back")

    async def hang_up(self, agent: str, call_id: str) -> None:
        await self._release(agent, call_id, EscalationStatus.CLOSED, "hang_up")

    async def close(self, agent: str, escalation_id: int) -> None:
        """Ends an escalation for the records (a caller to be called back, a call already over); a call
        still waiting goes back to the bot. One an agent holds is closed only by that agent."""
        try:
            escalation = await self._db(store.get_escalation, escalation_id=escalation_id)
        except NotFoundError as exc:
            raise DeskError("unknown_escalation", str(exc)) from None
        if escalation.status is EscalationStatus.ACCEPTED and escalation.agent != agent:
            raise DeskError("not_yours", f"escalation {escalation_id} is held by {escalation.agent}")
        try:
            await self._db(store.update_escalation_status, escalation_id=escalation_id,
                           status=EscalationStatus.CLOSED, now=self._clock.now())
        except TicketingError as exc:
            raise DeskError("not_open", str(exc)) from None
        if escalation.call_id is not None and escalation.status is not EscalationStatus.HANDED_BACK:
            await self.bus.publish("calls", {"call_id": escalation.call_id, "do": "hand_back"})
        await self.queue_changed()

    async def _release(self, agent: str, call_id: str, status: EscalationStatus, do: str) -> None:
        escalation = await self._held_by(agent, call_id)
        try:
            await self._db(store.update_escalation_status, escalation_id=escalation.id, status=status,
                           now=self._clock.now())
        except TicketingError as exc:
            raise DeskError("not_yours", str(exc)) from None
        await self.bus.publish("calls", {"call_id": call_id, "do": do})
        reason = "handed_back" if do == "hand_back" else "ended_by_agent"
        await self.tell_agent(agent, events.Released(call_id=call_id, reason=reason))

    async def _held_by(self, agent: str, call_id: str) -> Any:
        held = await self._db(store.list_escalations, status=EscalationStatus.ACCEPTED, limit=500)
        for escalation in held:
            if escalation.call_id == call_id and escalation.agent == agent:
                return escalation
        raise DeskError("not_yours", f"call {call_id} is not held by {agent}")

    async def queue(self) -> list[dict[str, Any]]:
        return await self._db(_queue_items, now=self._clock.now())

    async def _on_agent_message(self, message: dict[str, Any]) -> None:
        for seat in list(self._seats.values()):
            if seat.agent == message["agent"]:
                await seat.send(message["event"])

    async def _on_queue_changed(self, _message: dict[str, Any]) -> None:
        if not self._seats:
            return
        event = events.Queue(waiting=tuple(await self.queue())).as_dict()
        for seat in list(self._seats.values()):
            await seat.send(event)


def _queue_items(session: Session, *, now: Any) -> list[dict[str, Any]]:
    waiting = store.list_escalations(session, status=EscalationStatus.WAITING, limit=500)
    return [_queue_item(session, escalation=e, now=now) for e in waiting if e.call_id is not None]


def _queue_item(session: Session, *, escalation: Any, now: Any) -> dict[str, Any]:
    """What an agent sees of a waiting call: who, why, the slots and the whole transcript so far."""
    context = escalation.context
    caller, transcript = None, context.get("transcript", [])
    try:
        call = store.get_call(session, call_id=escalation.call_id)
    except NotFoundError:
        call = None
    if call is not None:
        caller = call.caller_id
        transcript = [{"role": turn.speaker.value, "text": turn.text} for turn in call.turns] or transcript
    return {
        "escalation_id": escalation.id, "call_id": escalation.call_id, "reason": escalation.reason,
        "dialect": context.get("dialect"), "caller": caller, "summary": context.get("summary", ""),
        "slots": context.get("slots", {}), "transcript": transcript,
        "waiting_since": escalation.created_at.isoformat(),
        "waited_s": round((now - escalation.created_at).total_seconds(), 1),
    }
