"""Tickets that people work: status new/assigned/pending_customer, priority, owner, first-response
and resolution due times, when they were met, and events for assignments, priorities and slot changes.

Existing tickets: `open` becomes `new`; `due_at` becomes `resolution_due_at`; the first response is
due by the default hours of the category and counts as met by the first thing a person did.

Revision ID: 0006_ticket_workflow
Revises: 0005_escalation_desk
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from alembic import op

from ticketing.models import UtcDateTime

revision = "0006_ticket_workflow"
down_revision = "0005_escalation_desk"
branch_labels = None
depends_on = None

OLD_STATUSES = ("open", "in_progress", "resolved", "closed")
NEW_STATUSES = ("new", "assigned", "in_progress", "pending_customer", "resolved", "closed")
OLD_KINDS = ("created", "status_changed", "note")
NEW_KINDS = ("created", "status_changed", "assigned", "priority_changed", "note", "slots_updated")
PRIORITIES = ("low", "normal", "high", "urgent")
# The defaults of ticketing.sla when this revision was written (a migration must not follow later code).
FIRST_RESPONSE_HOURS = {"broadband": 4, "mobile-network": 4, "complaint": 2, "service-request": 8, "billing": 8}


def _enum(table: str, name: str, values: Iterable[str]) -> sa.Enum:
    return sa.Enum(*values, name=op.f(f"ck_{table}_{name}"), native_enum=False, create_constraint=True, length=32)


def _widen(table: str, column: str, name: str, before: Iterable[str], after: Iterable[str]) -> None:
    """Swap a column's CHECK constraint for one allowing `after` (alembic drops and re-adds it)."""
    with op.batch_alter_table(table) as batch:
        batch.alter_column(column, existing_type=_enum(table, name, before), type_=_enum(table, name, after),
                           existing_nullable=False)


def upgrade() -> None:
    _widen("tickets", "status", "ticket_status", OLD_STATUSES, OLD_STATUSES + NEW_STATUSES)
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("priority", _enum("tickets", "ticket_priority", PRIORITIES), nullable=False,
                                   server_default="normal"))
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("updated_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("first_response_due_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("first_responded_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("resolved_at", UtcDateTime(), nullable=True))
        batch.alter_column("due_at", new_column_name="resolution_due_at", existing_type=sa.DateTime(timezone=True),
                           existing_nullable=False)
        batch.create_index(op.f("ix_tickets_owner"), ["owner"])
    _fill_existing_tickets()
    _widen("tickets", "status", "ticket_status", OLD_STATUSES + NEW_STATUSES, NEW_STATUSES)
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column("first_response_due_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    _widen("ticket_events", "kind", "ticket_event_kind", OLD_KINDS, NEW_KINDS)
    _mark_slot_updates()


_tickets = sa.table(
    "tickets",
    sa.column("id", sa.Integer()),
    sa.column("category", sa.String()),
    sa.column("status", sa.String()),
    sa.column("priority", sa.String()),
    sa.column("created_at", UtcDateTime()),
    sa.column("updated_at", UtcDateTime()),
    sa.column("first_response_due_at", UtcDateTime()),
    sa.column("first_responded_at", UtcDateTime()),
    sa.column("resolved_at", UtcDateTime()),
)
_events = sa.table(
    "ticket_events",
    sa.column("id", sa.Integer()),
    sa.column("ticket_id", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("at", UtcDateTime()),
    sa.column("detail", sa.JSON()),
    sa.column("actor", sa.String()),
)


def _fill_existing_tickets() -> None:
    connection = op.get_bind()
    connection.execute(_tickets.update().where(_tickets.c.status == "open").values(status="new"))
    connection.execute(_tickets.update().where(_tickets.c.category == "complaint").values(priority="high"))
    events = _events_by_ticket(connection)
    for row in connection.execute(sa.select(_tickets)).mappings().all():
        connection.execute(
            _tickets.update().where(_tickets.c.id == row["id"]).values(**_times(row, events.get(row["id"], [])))
        )


def _events_by_ticket(connection: sa.Connection) -> dict[int, list[Any]]:
    events: dict[int, list[Any]] = {}
    for event in connection.execute(sa.select(_events).order_by(_events.c.id)).mappings():
        events.setdefault(event["ticket_id"], []).append(event)
    return events


def _times(ticket: Any, events: list[Any]) -> dict[str, Any]:
    created: dt.datetime = ticket["created_at"]
    by_person = [e["at"] for e in events if e["actor"] is not None and e["kind"] != "created"]
    resolved = [e["at"] for e in events if e["kind"] == "status_changed"
                and (e["detail"] or {}).get("to") in ("resolved", "closed")]
    done = ticket["status"] in ("resolved", "closed")
    return {
        "updated_at": max([created, *(e["at"] for e in events)]),
        "first_response_due_at": created + dt.timedelta(hours=FIRST_RESPONSE_HOURS.get(ticket["category"], 8)),
        "first_responded_at": by_person[0] if by_person else None,
        "resolved_at": (resolved[-1] if resolved else created) if done else None,
    }


def _mark_slot_updates() -> None:
    """Slot corrections were notes carrying `slots`; now they have a kind of their own."""
    connection = op.get_bind()
    for event in connection.execute(sa.select(_events).where(_events.c.kind == "note")).mappings().all():
        if "slots" in (event["detail"] or {}):
            connection.execute(_events.update().where(_events.c.id == event["id"]).values(kind="slots_updated"))


def downgrade() -> None:
    connection = op.get_bind()
    connection.execute(_events.update().where(_events.c.kind.in_(("assigned", "priority_changed", "slots_updated")))
                       .values(kind="note"))
    _widen("ticket_events", "kind", "ticket_event_kind", NEW_KINDS, OLD_KINDS)
    _widen("tickets", "status", "ticket_status", NEW_STATUSES, OLD_STATUSES + NEW_STATUSES)
    connection.execute(_tickets.update().where(_tickets.c.status.in_(("new", "assigned"))).values(status="open"))
    connection.execute(_tickets.update().where(_tickets.c.status == "pending_customer").values(status="in_progress"))
    _widen("tickets", "status", "ticket_status", OLD_STATUSES + NEW_STATUSES, OLD_STATUSES)
    with op.batch_alter_table("tickets") as batch:  # first its CHECK constraint, or SQLite keeps it
        batch.alter_column("priority", existing_type=_enum("tickets", "ticket_priority", PRIORITIES),
                           type_=sa.String(32), existing_nullable=False)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index(op.f("ix_tickets_owner"))
        batch.alter_column("resolution_due_at", new_column_name="due_at", existing_type=sa.DateTime(timezone=True),
                           existing_nullable=False)
        batch.drop_column("resolved_at")
        batch.drop_column("first_responded_at")
        batch.drop_column("first_response_due_at")
        batch.drop_column("updated_at")
        batch.drop_column("owner")
        batch.drop_column("priority")
