"""Data access for the knowledge base: keyword-only functions, session first, pydantic out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kb.base import Embedder
from kb.chunking import ChunkingOptions, chunk_document
from kb.markdown import MarkdownDocumentError, read_markdown_file
from kb.models import KbChunk, KbDocument
from kb.schemas import DocumentIn, KbDocumentPublic


class DuplicateDocumentError(ValueError):
    """Two files of one import declare the same document id."""


@dataclass(frozen=True)
class ChunkRecord:
    doc_id: str
    title: str
    category: str
    version: int
    ordinal: int
    text: str
    embedding: np.ndarray  # (dim,) float32, L2-normalised


@dataclass(frozen=True)
class ImportReport:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.unchanged)


def upsert_document(
    session: Session,
    *,
    doc: DocumentIn,
    embedder: Embedder,
    now: dt.datetime,
    chunking: ChunkingOptions | None = None,
) -> KbDocumentPublic:
    """Create the document, or write its next version; the document row and its chunks commit together.

    A document whose title, category, body and date are all unchanged keeps its version (nothing is written).
    """
    existing = session.get(KbDocument, doc.id)
    if existing is not None and _same_content(existing, doc):
        return KbDocumentPublic.model_validate(existing)
    # Embed before touching the session: a failing embedder leaves the store as it was.
    chunks = chunk_document(title=doc.title, body=doc.body, options=chunking)
    vectors = embedder.embed_passages([chunk.text for chunk in chunks])
    try:
        if existing is None:
            row = KbDocument(id=doc.id, version=1, created_at=now)
            session.add(row)
        else:
            row = existing
            row.version += 1
            session.execute(delete(KbChunk).where(KbChunk.document_id == doc.id))
        row.title, row.category, row.body, row.updated, row.updated_at = (
            doc.title,
            doc.category,
            doc.body,
            doc.updated,
            now,
        )
        session.flush()
        session.add_all(
            KbChunk(
                document_id=doc.id,
                version=row.version,
                ordinal=chunk.ordinal,
                text=chunk.text,
                embedding=_to_bytes(vector),
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        )
        session.commit()
    except Exception:
        session.rollback()
        raise
    session.refresh(row)
    return KbDocumentPublic.model_validate(row)


def delete_document(session: Session, *, doc_id: str) -> bool:
    """Delete a document and its chunks; False when there was no such document."""
    if session.get(KbDocument, doc_id) is None:
        return False
    # Chunks are deleted explicitly too: SQLite enforces ON DELETE CASCADE only with PRAGMA foreign_keys=ON.
    session.execute(delete(KbChunk).where(KbChunk.document_id == doc_id))
    session.execute(delete(KbDocument).where(KbDocument.id == doc_id))
    session.commit()
    session.expire_all()
    return True


def get_document(session: Session, *, doc_id: str) -> KbDocumentPublic | None:
    row = session.get(KbDocument, doc_id)
    return None if row is None else KbDocumentPublic.model_validate(row)


def list_documents(
    session: Session, *, category: str | None = None, offset: int = 0, limit: int = 100
) -> list[KbDocumentPublic]:
    query = select(KbDocument).order_by(KbDocument.id).offset(offset).limit(limit)
    if category is not None:
        query = query.where(KbDocument.category == category)
    return [KbDocumentPublic.model_validate(row) for row in session.scalars(query)]


def count_documents(session: Session, *, category: str | None = None) -> int:
    query = select(func.count()).select_from(KbDocument)
    if category is not None:
        query = query.where(KbDocument.category == category)
    return int(session.scalar(query) or 0)


def load_chunks(session: Session) -> list[ChunkRecord]:
    """Every chunk of every document's current version, in document and reading order."""
    query = (
        select(KbChunk, KbDocument.title, KbDocument.category)
        .join(KbDocument, KbChunk.document_id == KbDocument.id)
        .where(KbChunk.version == KbDocument.version)
        .order_by(KbChunk.document_id, KbChunk.ordinal)
    )
    return [
        ChunkRecord(
            doc_id=chunk.document_id,
            title=title,
            category=category,
            version=chunk.version,
            ordinal=chunk.ordinal,
            text=chunk.text,
            embedding=np.frombuffer(chunk.embedding, dtype="<f4").copy(),
        )
        for chunk, title, category in session.execute(query).tuples()
    ]


def import_directory(session: Session, *, path: Path, embedder: Embedder, now: dt.datetime) -> ImportReport:
    """Import every ``*.md`` file in ``path`` (not recursive).

    All files are parsed before anything is written, so one bad file stops the import with nothing changed.
    """
    docs = read_directory(path)
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    for doc in docs:
        before = session.get(KbDocument, doc.id)
        before_version = None if before is None else before.version
        after = upsert_document(session, doc=doc, embedder=embedder, now=now)
        if before_version is None:
            created.append(doc.id)
        elif after.version != before_version:
            updated.append(doc.id)
        else:
            unchanged.append(doc.id)
    return ImportReport(created=tuple(created), updated=tuple(updated), unchanged=tuple(unchanged))


def read_directory(path: Path) -> list[DocumentIn]:
    if not path.is_dir():
        raise NotADirectoryError(f"knowledge-base folder not found: {path}")
    files = sorted(path.glob("*.md"))
    files = [file for file in files if file.name.lower() != "readme.md"]
    if not files:
        raise MarkdownDocumentError(str(path), "no .md documents in this folder")
    docs: list[DocumentIn] = []
    seen: dict[str, Path] = {}
    for file in files:
        doc = read_markdown_file(file)
        if doc.id in seen:
            raise DuplicateDocumentError(
                f"document id {doc.id!r} is declared by both {seen[doc.id]} and {file}"
            )
        seen[doc.id] = file
        docs.append(doc)
    return docs


def _same_content(row: KbDocument, doc: DocumentIn) -> bool:
    return (row.title, row.category, row.body, row.updated) == (
        doc.title,
        doc.category,
        doc.body,
        doc.updated,
    )


def _to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()
