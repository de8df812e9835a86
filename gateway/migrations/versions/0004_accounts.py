"""Accounts of agents and admins (tokens stored as hashes); ticket events name who made them.

Revision ID: 0004_accounts
Revises: 0003_kb_versions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ticketing.models import UtcDateTime

revision = "0004_accounts"
down_revision = "0003_kb_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.Enum("agent", "admin", name=op.f("ck_accounts_account_role"), native_enum=False, create_constraint=True,
                                  length=16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("name", name="uq_accounts_name"),
        sa.UniqueConstraint("token_hash", name="uq_accounts_token_hash"),
    )
    # None: the hotline itself (a call) made the change; otherwise the account's name.
    with op.batch_alter_table("ticket_events") as batch:
        batch.add_column(sa.Column("actor", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_events") as batch:
        batch.drop_column("actor")
    op.drop_table("accounts")
