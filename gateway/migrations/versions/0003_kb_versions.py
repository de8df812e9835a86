"""Knowledge base: document status and history, the embedder of each chunk, the KB revision.

Revision ID: 0003_kb_versions
Revises: 0002_kb
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0003_kb_versions"
down_revision = "0002_kb"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("kb_documents", sa.Column("status", sa.String(16), nullable=False, server_default="published"))
    op.add_column("kb_documents", sa.Column("updated_by", sa.String(64), nullable=False, server_default="system"))
    op.add_column("kb_documents", sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_kb_documents_status", "kb_documents", ["status"])
    op.create_index("ix_kb_documents_revision", "kb_documents", ["revision"])
    # Chunks embedded before this revision do not say by what: they are re-embedded on first load.
    op.add_column("kb_chunks", sa.Column("embedder", sa.String(120), nullable=False, server_default=""))
    versions = op.create_table(
        "kb_document_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated", sa.Date(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("document_id", "version", name="uq_kb_document_versions_doc_version"),
    )
    op.create_index("ix_kb_document_versions_document_id", "kb_document_versions", ["document_id"])
    op.create_index("ix_kb_document_versions_at", "kb_document_versions", ["at"])
    state = op.create_table(
        "kb_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "revision": 1}])
    _record_existing_documents(versions)


def _record_existing_documents(versions: sa.Table) -> None:
    """Documents imported before history was kept get their current version as its first entry."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, version, title, category, body, updated, updated_at FROM kb_documents")
    ).mappings()
    op.bulk_insert(
        versions,
        [
            {"document_id": row["id"], "version": row["version"], "title": row["title"],
             "category": row["category"], "body": row["body"], "status": "published",
             "updated": _date(row["updated"]), "action": "create", "from_version": None, "actor": "system",
             "at": _datetime(row["updated_at"])}
            for row in rows
        ],
    )


def _date(value: object) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _datetime(value: object) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def downgrade() -> None:
    op.drop_table("kb_state")
    op.drop_index("ix_kb_document_versions_at", table_name="kb_document_versions")
    op.drop_index("ix_kb_document_versions_document_id", table_name="kb_document_versions")
    op.drop_table("kb_document_versions")
    with op.batch_alter_table("kb_chunks") as batch:
        batch.drop_column("embedder")
    op.drop_index("ix_kb_documents_revision", table_name="kb_documents")
    op.drop_index("ix_kb_documents_status", table_name="kb_documents")
    with op.batch_alter_table("kb_documents") as batch:
        batch.drop_column("revision")
        batch.drop_column("updated_by")
        batch.drop_column("status")
