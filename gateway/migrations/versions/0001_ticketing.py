"""Ticketing: call records and their turns, tickets and their events, ticket number counters, escalations.

Revision ID: 0001_ticketing
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_ticketing"
down_revision = None
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _enum(table: str, name: str, *values: str) -> sa.Enum:
    """A VARCHAR with a CHECK constraint, named as the models' naming convention names it."""
    return sa.Enum(
        *values, name=op.f(f"ck_{table}_{name}"), native_enum=False, create_constraint=True, length=32
    )


def upgrade() -> None:
    op.create_table(
        "call_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("caller_id", sa.String(length=32), nullable=True),
        sa.Column("codec", sa.String(length=16), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("dialect", sa.String(length=32), nullable=True),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("turn_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_records")),
    )
    op.create_index(op.f("ix_call_records_started_at"), "call_records", ["started_at"])

    op.create_table(
        "call_turns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("speaker", _enum("call_turns", "speaker", "caller", "bot"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("dialect", sa.String(length=32), nullable=True),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("interrupted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["call_records.id"],
            name=op.f("fk_call_turns_call_id_call_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_turns")),
        sa.UniqueConstraint("call_id", "seq", name="uq_call_turns_call_id_seq"),
    )

    op.create_table(
        "ticket_number_counters",
        sa.Column("day", sa.String(length=8), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_ticket_number_counters")),
    )

    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column(
            "category",
            _enum(
                "tickets",
                "ticket_category",
                "broadband",
                "mobile-network",
                "complaint",
                "service-request",
                "billing",
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            _enum("tickets", "ticket_status", "open", "in_progress", "resolved", "closed"),
            nullable=False,
        ),
        sa.Column("slots", _json(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("due_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["call_records.id"],
            name=op.f("fk_tickets_call_id_call_records"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("number", name=op.f("uq_tickets_number")),
    )
    op.create_index(op.f("ix_tickets_call_id"), "tickets", ["call_id"])
    op.create_index(op.f("ix_tickets_created_at"), "tickets", ["created_at"])
    op.create_index(op.f("ix_tickets_status"), "tickets", ["status"])

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            _enum("ticket_events", "ticket_event_kind", "created", "status_changed", "note"),
            nullable=False,
        ),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("detail", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index(op.f("ix_ticket_events_ticket_id"), "ticket_events", ["ticket_id"])

    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "status",
            _enum("escalations", "escalation_status", "waiting", "accepted", "closed"),
            nullable=False,
        ),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("context", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["call_records.id"],
            name=op.f("fk_escalations_call_id_call_records"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    op.create_index(op.f("ix_escalations_call_id"), "escalations", ["call_id"])
    op.create_index(op.f("ix_escalations_status"), "escalations", ["status"])


def downgrade() -> None:
    op.drop_table("escalations")
    op.drop_table("ticket_events")
    op.drop_table("tickets")
    op.drop_table("ticket_number_counters")
    op.drop_table("call_turns")
    op.drop_table("call_records")
