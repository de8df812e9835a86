"""Data access for the knowledge base: keyword-only functions, session first, pydantic out.

Every change writes a new version of the document, its history entry (who, when, what, from which
version) and its chunks in one transaction, and raises the KB revision in that same transaction, so a
reader sees a document either before or after a change, never half of it. Embedding happens before the
transaction (`prepare`): a slow or failing embedder never holds a lock or leaves a partial write.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from kb.base import Embedder
from kb.chunking import Chunk, ChunkingOptions, chunk_document
from kb.markdown import MarkdownDocumentError, read_markdown_file, render_markdown
from kb.models import KbChunk, KbDocument, KbDocumentVersion, KbState
from kb.schemas import DocumentIn, ImportReport, KbDiff, KbDocumentPublic, KbVersionPublic

EMBED_BATCH = 16  # statements embedded per call: a large import yields the engine between batches


class KbStoreError(ValueError):
    """A knowledge-base change that cannot be made; the message says why."""


class DocumentNotFound(KbStoreError, LookupError):
    def __init__(self, doc_id: str, *, deleted: bool = False) -> None:
        detail = " (it was deleted; its versions are still in its history)" if deleted else ""
        super().__init__(f"no knowledge-base document {doc_id!r}{detail}")
        self.doc_id = doc_id


class DocumentExists(KbStoreError):
    def __init__(self, doc_id: str) -> None:
        super().__init__(f"a knowledge-base document {doc_id!r} already exists; update it with PUT")
        self.doc_id = doc_id


class StaleVersion(KbStoreError):
    """The change was made from a version that is no longer the current one."""

    def __init__(self, doc_id: str, given: int, current: int) -> None:
        super().__init__(
            f"document {doc_id!r} was changed from version {given}, but its current version is {current}: "
            "read it again and re-apply the change"
        )
        self.current = current


class VersionNotFound(KbStoreError, LookupError):
    def __init__(self, doc_id: str, version: int) -> None:
        super().__init__(f"document {doc_id!r} has no version {version}")


class DuplicateDocumentError(KbStoreError):
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
class PreparedDocument:
    """A document with its statements embedded, ready to be written."""

    doc: DocumentIn
    chunks: tuple[Chunk, ...]
    vectors: np.ndarray
    embedder: str


def prepare(doc: DocumentIn, embedder: Embedder, chunking: ChunkingOptions | None = None) -> PreparedDocument:
    chunks = tuple(chunk_document(title=doc.title, body=doc.body, options=chunking))
    return PreparedDocument(doc, chunks, embed_in_batches(embedder, [c.text for c in chunks]), embedder.name)


def embed_in_batches(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.concatenate(
        [embedder.embed_passages(list(texts[i : i + EMBED_BATCH])) for i in range(0, len(texts), EMBED_BATCH)]
    )


# ---- writes -------------------------------------------------------------------------------------------


@contextmanager
def _transaction(session: Session) -> Iterator[None]:
    try:
        yield
        session.commit()
    except Exception:
        session.rollback()
        raise


def _raise_revision(session: Session) -> int:
    """The next KB revision, taken inside the caller's transaction (the row lock orders writers)."""
    revision = session.execute(
        update(KbState).where(KbState.id == 1).values(revision=KbState.revision + 1).returning(KbState.revision)
    ).scalar_one_or_none()
    if revision is None:  # a store made without the migrations (tests build tables directly)
        session.add(KbState(id=1, revision=1))
        session.flush()
        revision = 1
    return int(revision)


def _locked(session: Session, doc_id: str) -> KbDocument | None:
    return session.scalar(select(KbDocument).where(KbDocument.id == doc_id).with_for_update())


def _write_version(
    session: Session,
    row: KbDocument,
    *,
    prepared: PreparedDocument | None,
    action: str,
    from_version: int | None,
    now: dt.datetime,
    actor: str,
    revision: int,
) -> None:
    """Record `row` as it now is as a new version, and replace its chunks with `prepared`'s."""
    row.updated_at, row.updated_by, row.revision = now, actor, revision
    session.execute(delete(KbChunk).where(KbChunk.document_id == row.id))
    session.flush()
    if prepared is not None:
        session.add_all(
            KbChunk(document_id=row.id, version=row.version, ordinal=chunk.ordinal, text=chunk.text,
                    embedding=_to_bytes(vector), embedder=prepared.embedder)
            for chunk, vector in zip(prepared.chunks, prepared.vectors, strict=True)
        )
    session.add(
        KbDocumentVersion(document_id=row.id, version=row.version, title=row.title, category=row.category,
                          body=row.body, status=row.status, updated=row.updated, action=action,
                          from_version=from_version, actor=actor, at=now)
    )


def _apply(row: KbDocument, doc: DocumentIn) -> None:
    row.title, row.category, row.body, row.updated, row.status = doc.title, doc.category, doc.body, doc.updated, doc.status


def _same(row: KbDocument, doc: DocumentIn) -> bool:
    return (row.title, row.category, row.body, row.updated, row.status) == (
        doc.title, doc.category, doc.body, doc.updated, doc.status,
    )


def _put(
    session: Session, prepared: PreparedDocument, *, action: str, now: dt.datetime, actor: str,
    expected_version: int | None = None, create_only: bool = False,
) -> tuple[KbDocument, str]:
    """Create the document or write its next version, inside the caller's transaction.

    Returns the row and what happened: created, updated or unchanged.
    """
    doc = prepared.doc
    row = _locked(session, doc.id)
    if row is not None and create_only and row.status != "deleted":
        raise DocumentExists(doc.id)
    if row is not None and expected_version is not None and row.version != expected_version:
        raise StaleVersion(doc.id, expected_version, row.version)
    if row is not None and row.status != "deleted" and _same(row, doc):
        return row, "unchanged"
    revision = _raise_revision(session)
    if row is None:
        row = KbDocument(id=doc.id, version=1, created_at=now, updated_at=now, updated_by=actor, revision=revision)
        _apply(row, doc)
        session.add(row)
        session.flush()
        _write_version(session, row, prepared=prepared, action=action if action != "update" else "create",
                       from_version=None, now=now, actor=actor, revision=revision)
        return row, "created"
    previous = row.version
    row.version += 1
    _apply(row, doc)
    _write_version(session, row, prepared=prepared, action=action, from_version=previous, now=now, actor=actor,
                   revision=revision)
    return row, "updated"


def create_document(session: Session, *, prepared: PreparedDocument, now: dt.datetime, actor: str) -> KbDocumentPublic:
    """A new document (a deleted document's id may be used again: it continues that history)."""
    with _transaction(session):
        row, _ = _put(session, prepared, action="create", now=now, actor=actor, create_only=True)
    return _public(session, row)


def update_document(
    session: Session, *, prepared: PreparedDocument, expected_version: int, now: dt.datetime, actor: str,
    action: str = "update", revive: bool = False,
) -> KbDocumentPublic:
    """The document's next version; StaleVersion if it was read at another version than its current one.
    A deleted document can only be written again with `revive` (a rollback to a version before its deletion)."""
    with _transaction(session):
        row = _locked(session, prepared.doc.id)
        if row is None or (row.status == "deleted" and not revive):
            raise DocumentNotFound(prepared.doc.id, deleted=row is not None)
        row, _ = _put(session, prepared, action=action, now=now, actor=actor, expected_version=expected_version)
    return _public(session, row)


def delete_document(
    session: Session, *, doc_id: str, now: dt.datetime, actor: str, expected_version: int | None = None
) -> KbDocumentPublic:
    """Take the document out of search; its history stays, and the deletion is a version of its own."""
    with _transaction(session):
        row = _locked(session, doc_id)
        if row is None or row.status == "deleted":
            raise DocumentNotFound(doc_id, deleted=row is not None)
        if expected_version is not None and row.version != expected_version:
            raise StaleVersion(doc_id, expected_version, row.version)
        revision = _raise_revision(session)
        previous = row.version
        row.version += 1
        row.status = "deleted"
        _write_version(session, row, prepared=None, action="delete", from_version=previous, now=now, actor=actor,
                       revision=revision)
    return _public(session, row)


def version_as_document(session: Session, *, doc_id: str, version: int) -> DocumentIn:
    """An earlier version's content, to prepare a rollback to it."""
    old = _version_row(session, doc_id, version)
    status = old.status if old.status != "deleted" else "published"
    return DocumentIn(id=doc_id, title=old.title, category=old.category, updated=old.updated, body=old.body,
                      status=status)  # type: ignore[arg-type]


def write_documents(
    session: Session, *, prepared: Sequence[PreparedDocument], now: dt.datetime, actor: str, action: str = "import",
    only_into_new_store: bool = False,
) -> ImportReport:
    """Create or update every document, all in one transaction: one failure and nothing is written.

    With `only_into_new_store`, nothing is written if the store ever held a document, checked under the
    writers' lock: of several gateways seeding one new store at once, exactly one does.
    """
    report: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    with _transaction(session):
        if only_into_new_store:
            _raise_revision(session)  # takes the writers' lock before looking
            if session.scalar(select(KbDocumentVersion.id).limit(1)) is not None:
                session.rollback()
                return ImportReport(**report)
        for item in prepared:
            _, outcome = _put(session, item, action=action, now=now, actor=actor)
            report[outcome].append(item.doc.id)
    return ImportReport(**report)


def ever_filled(session: Session) -> bool:
    """Whether the store ever held a document (a KB emptied by its admins stays empty)."""
    return session.scalar(select(KbDocumentVersion.id).limit(1)) is not None


def upsert_document(
    session: Session, *, doc: DocumentIn, embedder: Embedder, now: dt.datetime, actor: str = "system",
    chunking: ChunkingOptions | None = None,
) -> KbDocumentPublic:
    """Create the document or write its next version (nothing when it is unchanged)."""
    prepared = prepare(doc, embedder, chunking)
    with _transaction(session):
        row, _ = _put(session, prepared, action="update", now=now, actor=actor)
    return _public(session, row)


def reembed_stale(session: Session, *, embedder: Embedder) -> int:
    """Embed again every chunk an other embedder made (its vectors mean nothing to this one); returns how many."""
    rows = session.scalars(select(KbChunk).where(KbChunk.embedder != embedder.name).order_by(KbChunk.id)).all()
    if not rows:
        return 0
    vectors = embed_in_batches(embedder, [row.text for row in rows])
    with _transaction(session):
        for row, vector in zip(rows, vectors, strict=True):
            row.embedding, row.embedder = _to_bytes(vector), embedder.name
        revision = _raise_revision(session)
        touched = {row.document_id for row in rows}
        session.execute(update(KbDocument).where(KbDocument.id.in_(touched)).values(revision=revision))
    return len(rows)


# ---- reads --------------------------------------------------------------------------------------------


def _public(session: Session, row: KbDocument) -> KbDocumentPublic:
    session.refresh(row)
    return KbDocumentPublic.model_validate(row)


def get_document(session: Session, *, doc_id: str) -> KbDocumentPublic:
    row = session.get(KbDocument, doc_id)
    if row is None or row.status == "deleted":
        raise DocumentNotFound(doc_id, deleted=row is not None)
    return KbDocumentPublic.model_validate(row)


def list_documents(
    session: Session, *, category: str | None = None, status: str | None = None, text: str | None = None,
    offset: int = 0, limit: int = 100,
) -> tuple[list[KbDocumentPublic], int]:
    """A page of the documents (deleted ones only when asked for by status) and how many match in all."""
    query = select(KbDocument)
    query = query.where(KbDocument.status == status) if status else query.where(KbDocument.status != "deleted")
    if category:
        query = query.where(KbDocument.category == category)
    if text:
        pattern = f"%{text}%"
        query = query.where(or_(KbDocument.title.like(pattern), KbDocument.body.like(pattern), KbDocument.id.like(pattern)))
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(query.order_by(KbDocument.id).offset(offset).limit(limit))
    return [KbDocumentPublic.model_validate(row) for row in rows], total


def count_documents(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(KbDocument).where(KbDocument.status != "deleted")) or 0)


def list_versions(session: Session, *, doc_id: str) -> list[KbVersionPublic]:
    rows = session.scalars(
        select(KbDocumentVersion).where(KbDocumentVersion.document_id == doc_id).order_by(KbDocumentVersion.version)
    ).all()
    if not rows:
        raise DocumentNotFound(doc_id)
    return [KbVersionPublic.model_validate(row) for row in rows]


def _version_row(session: Session, doc_id: str, version: int) -> KbDocumentVersion:
    row = session.scalar(
        select(KbDocumentVersion).where(KbDocumentVersion.document_id == doc_id, KbDocumentVersion.version == version)
    )
    if row is None:
        if session.get(KbDocument, doc_id) is None:
            raise DocumentNotFound(doc_id)
        raise VersionNotFound(doc_id, version)
    return row


def get_version(session: Session, *, doc_id: str, version: int) -> KbVersionPublic:
    return KbVersionPublic.model_validate(_version_row(session, doc_id, version))


def diff_versions(session: Session, *, doc_id: str, from_version: int, to_version: int) -> KbDiff:
    old, new = _version_row(session, doc_id, from_version), _version_row(session, doc_id, to_version)
    fields = ("title", "category", "status", "updated", "body")
    changed = [name for name in fields if getattr(old, name) != getattr(new, name)]
    diff = difflib.unified_diff(
        _as_markdown(old).splitlines(), _as_markdown(new).splitlines(),
        fromfile=f"{doc_id}@{from_version}", tofile=f"{doc_id}@{to_version}", lineterm="",
    )
    return KbDiff(document_id=doc_id, from_version=from_version, to_version=to_version, changed=changed,
                  diff="\n".join(diff))


def _as_markdown(row: KbDocumentVersion) -> str:
    return f"title: {row.title}\ncategory: {row.category}\nstatus: {row.status}\nupdated: {row.updated}\n\n{row.body}"


def audit_log(
    session: Session, *, doc_id: str | None = None, actor: str | None = None, offset: int = 0, limit: int = 100
) -> list[KbVersionPublic]:
    """Every change, newest first: who made which version of which document, from which version."""
    query = select(KbDocumentVersion)
    if doc_id:
        query = query.where(KbDocumentVersion.document_id == doc_id)
    if actor:
        query = query.where(KbDocumentVersion.actor == actor)
    rows = session.scalars(
        query.order_by(KbDocumentVersion.at.desc(), KbDocumentVersion.id.desc()).offset(offset).limit(limit)
    )
    return [KbVersionPublic.model_validate(row) for row in rows]


def current_revision(session: Session) -> int:
    return int(session.scalar(select(KbState.revision).where(KbState.id == 1)) or 0)


def changed_since(session: Session, *, revision: int) -> list[str]:
    """Ids of the documents changed after `revision` (created, edited, published, unpublished or deleted)."""
    return list(session.scalars(select(KbDocument.id).where(KbDocument.revision > revision)))


def load_chunks(session: Session, *, doc_ids: Sequence[str] | None = None) -> list[ChunkRecord]:
    """The chunks of published documents' current versions (of `doc_ids` only, if given), in reading order."""
    query = (
        select(KbChunk, KbDocument.title, KbDocument.category)
        .join(KbDocument, KbChunk.document_id == KbDocument.id)
        .where(KbChunk.version == KbDocument.version, KbDocument.status == "published")
        .order_by(KbChunk.document_id, KbChunk.ordinal)
    )
    if doc_ids is not None:
        query = query.where(KbDocument.id.in_(list(doc_ids)))
    return [
        ChunkRecord(doc_id=chunk.document_id, title=title, category=category, version=chunk.version,
                    ordinal=chunk.ordinal, text=chunk.text, embedding=np.frombuffer(chunk.embedding, dtype="<f4").copy())
        for chunk, title, category in session.execute(query).tuples()
    ]


def export_documents(session: Session) -> list[DocumentIn]:
    """Every document that is not deleted, as an editor would write it (drafts included)."""
    rows = session.scalars(select(KbDocument).where(KbDocument.status != "deleted").order_by(KbDocument.id))
    return [
        DocumentIn(id=row.id, title=row.title, category=row.category, updated=row.updated, body=row.body,
                   status=row.status)  # type: ignore[arg-type]
        for row in rows
    ]


def export_directory(session: Session, *, path: Path) -> list[Path]:
    """Write the whole KB as Markdown files with front matter into `path` (created if needed)."""
    documents = export_documents(session)
    path.mkdir(parents=True, exist_ok=True)
    written = []
    for doc in documents:
        target = path / f"{doc.id}.md"
        target.write_text(render_markdown(doc), encoding="utf-8")
        written.append(target)
    return written


# ---- folders of Markdown -------------------------------------------------------------------------------


def import_directory(
    session: Session, *, path: Path, embedder: Embedder, now: dt.datetime, actor: str = "system"
) -> ImportReport:
    """Import every ``*.md`` file in ``path`` (not recursive), all or nothing."""
    docs = read_directory(path)
    return write_documents(session, prepared=[prepare(doc, embedder) for doc in docs], now=now, actor=actor)


def read_directory(path: Path) -> list[DocumentIn]:
    if not path.is_dir():
        raise NotADirectoryError(f"knowledge-base folder not found: {path}")
    files = sorted(file for file in path.glob("*.md") if file.name.lower() != "readme.md")
    if not files:
        raise MarkdownDocumentError(str(path), "no .md documents in this folder")
    return unique_documents([(str(file), read_markdown_file(file)) for file in files])


def unique_documents(sourced: Sequence[tuple[str, DocumentIn]]) -> list[DocumentIn]:
    """The documents, refusing two sources that declare one id."""
    seen: dict[str, str] = {}
    for source, doc in sourced:
        if doc.id in seen:
            raise DuplicateDocumentError(f"document id {doc.id!r} is declared by both {seen[doc.id]} and {source}")
        seen[doc.id] = source
    return [doc for _, doc in sourced]


def _to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()
