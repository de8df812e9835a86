"""Pydantic schemas for the API; ORM models never leave the ticketing package."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from ticketing.models import (
    EscalationStatus,
    Speaker,
    TicketCategory,
    TicketEventKind,
    TicketPriority,
    TicketStatus,
)

ACCOUNT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # as gateway.accounts names accounts


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class TicketCreate(BaseModel):
    """What is needed to open a ticket (from the dialogue's OpenTicket action or from REST).

    `phone` and `address` fill the slots of the same name; the priority defaults from the category.
    """

    model_config = ConfigDict(extra="forbid")

    category: TicketCategory
    slots: dict[str, str] = Field(default_factory=dict)
    summary: str = Field(default="", max_length=4000)
    call_id: str | None = Field(default=None, max_length=36, pattern=r"^[0-9A-Za-z-]{1,36}$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{3,20}$")
    address: str | None = Field(default=None, max_length=255)
    priority: TicketPriority | None = None


class TicketUpdate(BaseModel):
    """A person's change to a ticket: any of status, owner (null: unassign), priority, with a note."""

    model_config = ConfigDict(extra="forbid")

    status: TicketStatus | None = None
    owner: str | None = Field(default=None, pattern=ACCOUNT_NAME_PATTERN)
    priority: TicketPriority | None = None
    note: str | None = Field(default=None, max_length=4000)


TicketStatusUpdate = TicketUpdate  # the name of the status-only update this replaced


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
    priority: TicketPriority
    owner: str | None
    slots: dict[str, str]
    phone: str | None  # in full to the owner and admins, masked (138****5678) to other agents
    address: str | None
    summary: str
    call_id: str | None  # its transcript: GET /v1/calls/{call_id}
    created_at: datetime
    updated_at: datetime
    first_response_due_at: datetime
    resolution_due_at: datetime
    first_responded_at: datetime | None
    resolved_at: datetime | None
    # first response or resolution past due and not met; None where it was read without a clock
    overdue: bool | None = None
    events: list[TicketEventPublic]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def due_at(self) -> datetime:
        """The resolution due time, under the name it had before first responses had a target."""
        return self.resolution_due_at


class TicketPage(BaseModel):
    items: list[TicketPublic]
    total: int  # matching tickets, over all pages


class HourCounts(BaseModel):
    hour: int  # local hour of the day, 0-23
    calls: int
    escalations: int


class DashboardPublic(BaseModel):
    """Today at a glance (the day and hours are local, as in ticket numbers)."""

    day: str  # local date, YYYY-MM-DD
    calls_today: int
    calls_ended_today: int
    resolved_without_person: float | None  # share of today's ended calls not escalated; None: none ended
    escalations_waiting: int
    longest_wait_s: float | None  # of the escalations waiting now
    tickets_by_category: dict[str, int]
    tickets_by_status: dict[str, int]
    sla_breaches: int  # open tickets past a due time they did not meet
    hours: list[HourCounts]


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
