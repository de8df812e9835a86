"""SQLAlchemy models of tickets, escalations and call records.

Timestamps are timezone-aware UTC. They are always passed in by the caller (from the injected
clock); nothing here reads wall time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ticketing.errors import NaiveDatetimeError


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """An aware datetime stored as UTC; comes back aware (UTC) from SQLite too.

    SQLite has no timezone-aware type, so values are stored there as naive UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"timestamp {value.isoformat()} has no timezone; pass an aware UTC datetime"
            )
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Speaker(StrEnum):
    CALLER = "caller"
    BOT = "bot"
    AGENT = "agent"


class TicketCategory(StrEnum):
    BROADBAND = "broadband"
    MOBILE_NETWORK = "mobile-network"
    COMPLAINT = "complaint"
    SERVICE_REQUEST = "service-request"
    BILLING = "billing"


class TicketStatus(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    PENDING_CUSTOMER = "pending_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATUSES = frozenset(
    {TicketStatus.NEW, TicketStatus.ASSIGNED, TicketStatus.IN_PROGRESS, TicketStatus.PENDING_CUSTOMER}
)


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketEventKind(StrEnum):
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    ASSIGNED = "assigned"
    PRIORITY_CHANGED = "priority_changed"
    NOTE = "note"
    SLOTS_UPDATED = "slots_updated"


class EscalationStatus(StrEnum):
    WAITING = "waiting"  # in the live queue
    ACCEPTED = "accepted"  # an agent holds the call
    HANDED_BACK = "handed_back"  # the agent gave the call back to the bot
    CLOSED = "closed"
    ABANDONED = "abandoned"  # the caller hung up while waiting


def _enum_column(enum: type[StrEnum], name: str) -> sa.Enum:
    """A portable enum: VARCHAR plus a CHECK constraint, storing the values (not the member names)."""
    return sa.Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


JsonDict = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


# Named constraints, so that later batch migrations on SQLite can find and alter them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JsonDict}


class CallRecord(Base):
    __tablename__ = "call_records"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    caller_id: Mapped[str | None] = mapped_column(sa.String(32))  # masked, e.g. 138****5678
    codec: Mapped[str] = mapped_column(sa.String(16))
    sample_rate: Mapped[int]
    dialect: Mapped[str | None] = mapped_column(sa.String(32))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
    # Incremented atomically to number turns without a read-then-write race.
    turn_count: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))

    turns: Mapped[list[CallTurn]] = relationship(
        back_populates="call", order_by="CallTurn.seq", cascade="all, delete-orphan"
    )


class CallTurn(Base):
    __tablename__ = "call_turns"
    __table_args__ = (sa.UniqueConstraint("call_id", "seq", name="uq_call_turns_call_id_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(sa.ForeignKey("call_records.id", ondelete="CASCADE"))
    seq: Mapped[int]
    speaker: Mapped[Speaker] = mapped_column(_enum_column(Speaker, "speaker"))
    text: Mapped[str] = mapped_column(sa.Text)
    dialect: Mapped[str | None] = mapped_column(sa.String(32))
    at: Mapped[datetime]
    interrupted: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    call: Mapped[CallRecord] = relationship(back_populates="turns")


class TicketNumberCounter(Base):
    """Last sequence number handed out per local day; the row lock makes numbers unique across gateways."""

    __tablename__ = "ticket_number_counters"

    day: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    last_seq: Mapped[int]


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    category: Mapped[TicketCategory] = mapped_column(_enum_column(TicketCategory, "ticket_category"))
    status: Mapped[TicketStatus] = mapped_column(_enum_column(TicketStatus, "ticket_status"), index=True)
    priority: Mapped[TicketPriority] = mapped_column(
        _enum_column(TicketPriority, "ticket_priority"), server_default=TicketPriority.NORMAL.value
    )
    owner: Mapped[str | None] = mapped_column(sa.String(64), index=True)  # an account name
    slots: Mapped[dict[str, Any]]
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    address: Mapped[str | None] = mapped_column(sa.String(255))
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    call_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("call_records.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    first_response_due_at: Mapped[datetime]
    resolution_due_at: Mapped[datetime]
    first_responded_at: Mapped[datetime | None]  # the first thing a person did with the ticket
    resolved_at: Mapped[datetime | None]  # cleared when the ticket is reopened

    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id", cascade="all, delete-orphan"
    )


class TicketEvent(Base):
    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[TicketEventKind] = mapped_column(_enum_column(TicketEventKind, "ticket_event_kind"))
    at: Mapped[datetime]
    detail: Mapped[dict[str, Any]]
    actor: Mapped[str | None] = mapped_column(sa.String(64))  # the account; None: the hotline during a call

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class Escalation(Base):
    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("call_records.id", ondelete="SET NULL"), index=True
    )
    reason: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[EscalationStatus] = mapped_column(
        _enum_column(EscalationStatus, "escalation_status"), index=True
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    context: Mapped[dict[str, Any]]
    agent: Mapped[str | None] = mapped_column(sa.String(64))
    gateway: Mapped[str | None] = mapped_column(sa.String(64))
    accepted_at: Mapped[datetime | None]
