"""The server's events, typed: those a caller's client gets on /v1/calls and those an agent's console
gets on /v1/agent. The README's protocol tables are checked against these classes (tests/test_events.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class ServerEvent:
    type: ClassVar[str]

    def as_dict(self) -> dict[str, Any]:
        """The event as sent; optional fields left at None are left out."""
        out: dict[str, Any] = {"type": self.type}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is None and spec.default is None:
                continue
            out[spec.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False)


# ---------------------------------------------------------------- the call socket


@dataclass(frozen=True, kw_only=True)
class Ready(ServerEvent):
    type: ClassVar[str] = "ready"
    call_id: str
    codec: str
    sample_rate: int


@dataclass(frozen=True, kw_only=True)
class Partial(ServerEvent):
    type: ClassVar[str] = "partial"
    text: str
    dialect: str


@dataclass(frozen=True, kw_only=True)
class Final(ServerEvent):
    type: ClassVar[str] = "final"
    text: str
    normalized: str
    dialect: str
    confidence: float
    start: float
    end: float


@dataclass(frozen=True, kw_only=True)
class Reply(ServerEvent):
    type: ClassVar[str] = "reply"
    turn: int
    text: str
    citations: tuple[str, ...] = ()
    by: str = "bot"  # bot | agent | desk (the desk's own announcements: queue position, an agent joining)


@dataclass(frozen=True, kw_only=True)
class ReplyEnd(ServerEvent):
    type: ClassVar[str] = "reply_end"
    turn: int
    text: str
    interrupted: bool


@dataclass(frozen=True, kw_only=True)
class Ticket(ServerEvent):
    type: ClassVar[str] = "ticket"
    id: int | None
    number: str | None
    category: str
    updated: tuple[str, ...] | None = None
    pending: bool | None = None
    was_pending: bool | None = None
    existing: bool | None = None  # the caller already had this ticket open: nothing new was opened
    status: str | None = None  # of an existing ticket


@dataclass(frozen=True, kw_only=True)
class Escalation(ServerEvent):
    type: ClassVar[str] = "escalation"
    id: int | None
    reason: str
    pending: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Agent(ServerEvent):
    type: ClassVar[str] = "agent"
    state: str  # joined | left | handed_back


@dataclass(frozen=True, kw_only=True)
class Interrupted(ServerEvent):
    type: ClassVar[str] = "interrupted"
    turn: int


@dataclass(frozen=True, kw_only=True)
class Error(ServerEvent):
    type: ClassVar[str] = "error"
    code: str
    message: str


@dataclass(frozen=True, kw_only=True)
class End(ServerEvent):
    type: ClassVar[str] = "end"
    call_id: str
    reason: str


CALL_EVENTS: tuple[type[ServerEvent], ...] = (
    Ready, Partial, Final, Reply, ReplyEnd, Ticket, Escalation, Agent, Interrupted, Error, End,
)


# ---------------------------------------------------------------- the agents' socket


@dataclass(frozen=True, kw_only=True)
class Hello(ServerEvent):
    type: ClassVar[str] = "hello"
    agent: str


@dataclass(frozen=True, kw_only=True)
class Queue(ServerEvent):
    type: ClassVar[str] = "queue"
    waiting: tuple[dict[str, Any], ...]


@dataclass(frozen=True, kw_only=True)
class Accepted(ServerEvent):
    type: ClassVar[str] = "accepted"
    escalation_id: int
    call_id: str
    reason: str
    dialect: str | None
    caller: str | None
    summary: str
    slots: dict[str, Any]
    transcript: tuple[dict[str, str], ...]
    waiting_since: str
    waited_s: float


@dataclass(frozen=True, kw_only=True)
class CallerPartial(ServerEvent):
    type: ClassVar[str] = "partial"
    call_id: str
    text: str


@dataclass(frozen=True, kw_only=True)
class CallerFinal(ServerEvent):
    type: ClassVar[str] = "final"
    call_id: str
    text: str
    normalized: str


@dataclass(frozen=True, kw_only=True)
class Spoken(ServerEvent):
    type: ClassVar[str] = "spoken"
    call_id: str
    text: str
    by: str  # agent | bot
    interrupted: bool


@dataclass(frozen=True, kw_only=True)
class Assist(ServerEvent):
    type: ClassVar[str] = "assist"
    call_id: str
    question: str
    suggestion: str
    citations: tuple[str, ...]
    passages: tuple[dict[str, Any], ...]


@dataclass(frozen=True, kw_only=True)
class Released(ServerEvent):
    type: ClassVar[str] = "released"
    call_id: str
    reason: str  # handed_back | ended_by_agent | caller_hangup


DESK_EVENTS: tuple[type[ServerEvent], ...] = (
    Hello, Queue, Accepted, CallerPartial, CallerFinal, Spoken, Assist, Released, Error,
)
