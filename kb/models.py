"""SQLAlchemy models of the knowledge base (its own declarative base, own Alembic revisions)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class KbDocument(Base):
    """A document as it is now: its current version, and whether callers get it (published)."""

    __tablename__ = "kb_documents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40), index=True)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="published", index=True)  # draft|published|deleted
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(64), default="system")
    revision: Mapped[int] = mapped_column(Integer, default=0, index=True)  # the KB revision of its last change

    chunks: Mapped[list[KbChunk]] = relationship(
        back_populates="document",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="KbChunk.ordinal",
    )


class KbDocumentVersion(Base):
    """Every version a document ever had, with who made it and how: the history and the audit log."""

    __tablename__ = "kb_document_versions"
    __table_args__ = (
        UniqueConstraint("document_id", "version", name="uq_kb_document_versions_doc_version"),
        Index("ix_kb_document_versions_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    updated: Mapped[dt.date] = mapped_column(Date)
    action: Mapped[str] = mapped_column(String(16))  # create|update|delete|rollback|import
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class KbChunk(Base):
    """A statement of a document's current version, embedded by the embedder it names."""

    __tablename__ = "kb_chunks"
    __table_args__ = (
        UniqueConstraint("document_id", "version", "ordinal", name="uq_kb_chunks_doc_version_ordinal"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("kb_documents.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32 little-endian, L2-normalised
    embedder: Mapped[str] = mapped_column(String(120), default="")

    document: Mapped[KbDocument] = relationship(back_populates="chunks")


class KbState(Base):
    """One row: the knowledge base's revision, raised by every write in the write's own transaction.

    Gateways compare it with the revision their index was built at; its row lock also orders writers.
    """

    __tablename__ = "kb_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
