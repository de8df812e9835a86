"""Escalations that people take: who holds one, on which gateway the call is, when it was accepted;
an agent may speak in a call; a call may be handed back to the bot or abandoned while waiting.

Revision ID: 0005_escalation_desk
Revises: 0004_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ticketing.models import UtcDateTime

revision = "0005_escalation_desk"
down_revision = "0004_accounts"
branch_labels = None
depends_on = None

OLD_ESCALATION = ("waiting", "accepted", "closed")
NEW_ESCALATION = ("waiting", "accepted", "handed_back", "closed", "abandoned")
OLD_SPEAKER = ("caller", "bot")
NEW_SPEAKER = ("caller", "bot", "agent")


def _check(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _recheck(table: str, name: str, column: str, values: tuple[str, ...]) -> None:
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
        batch.create_check_constraint(op.f(f"ck_{table}_{name}"), _check(column, values))


def upgrade() -> None:
    _recheck("escalations", "escalation_status", "status", NEW_ESCALATION)
    _recheck("call_turns", "speaker", "speaker", NEW_SPEAKER)
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("agent", sa.String(64), nullable=True))  # the account holding the call
        batch.add_column(sa.Column("gateway", sa.String(64), nullable=True))  # the process the call is on
        batch.add_column(sa.Column("accepted_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE escalations SET status = 'closed' WHERE status IN ('handed_back', 'abandoned')")
    op.execute("DELETE FROM call_turns WHERE speaker = 'agent'")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("accepted_at")
        batch.drop_column("gateway")
        batch.drop_column("agent")
    _recheck("call_turns", "speaker", "speaker", OLD_SPEAKER)
    _recheck("escalations", "escalation_status", "status", OLD_ESCALATION)
