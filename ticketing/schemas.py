"""Pydantic schemas for the API; ORM models never leave the ticketing package."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ticketing.models import EscalationStatus, Speaker, TicketCategory, TicketEventKind, TicketStatus


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class TicketCreate(BaseModel):
    """What is needed to open a ticket (from the dialogue's OpenTicket action or from REST)."""

    model_config = ConfigDict(extra="forbid")

    category: TicketCategory
    slots: dict[str, str] = Field(default_factory=dict)
    summary: str = Field(default="", max_length=4000)
    call_id: str | None = Field(default=None, max_length=36)


class TicketStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TicketStatus
    note: str | None = Field(default=None, max_length=4000)


class TicketNoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)


class TicketEventPublic(_Public):
    id: int
    kind: TicketEventKind
    at: datetime
    detail: dict[str, Any]
    actor: str | None = None  # the agent's or admin's account; None: the hotline, during the call


class TicketPublic(_Public):
    id: int
    number: str
    category: TicketCategory
    status: TicketStatus
    slots: dict[str, str]
    phone: str | None
    address: str | None
    summary: str
    call_id: str | None
    created_at: datetime
    due_at: datetime
    events: list[TicketEventPublic]


class EscalationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: str | None = Field(default=None, max_length=36)
    reason: str = Field(min_length=1, max_length=4000)
    context: dict[str, Any] = Field(default_factory=dict)


class EscalationStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: EscalationStatus


class EscalationPublic(_Public):
    id: int
    call_id: str | None
    reason: str
    status: EscalationStatus
    created_at: datetime
    updated_at: datetime
    context: dict[str, Any]
    agent: str | None = None
    gateway: str | None = None
    accepted_at: datetime | None = None


class CallTurnPublic(_Public):
    seq: int
    speaker: Speaker
    text: str
    dialect: str | None
    at: datetime
    interrupted: bool


class CallSummaryPublic(_Public):
    """A call record without its turns, for listings."""

    id: str
    caller_id: str | None
    codec: str
    sample_rate: int
    dialect: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    turn_count: int


class CallRecordPublic(CallSummaryPublic):
    turns: list[CallTurnPublic]
