"""Knowledge-base administration as one gateway does it, for the REST routes and the `hotline kb` commands.

A change is embedded before its transaction (see `kb.store`), written with the KB revision raised, and
this process's index is refreshed at once, so the next search here sees it; other gateways follow the
revision within `kb_refresh_s`. Bulk imports embed with an embedder of their own: the live one's engine
serves one call at a time, and searches must not queue behind hundreds of statements.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from core.clock import Clock
from gateway.settings import Settings
from kb import store
from kb.base import Embedder
from kb.chunking import statement_of
from kb.index import HybridRetriever
from kb.live import LiveIndex
from kb.schemas import (
    DocumentCreate,
    DocumentIn,
    DocumentUpdate,
    ImportReport,
    KbDocumentPublic,
    Rollback,
    SearchHit,
)
from kb.transfer import ImportDefaults, ImportLimits, read_path, read_uploads, slug

log = logging.getLogger("hotline.kb")

Sessions = Callable[[], AbstractContextManager[Session]]


class LazyEmbedder:
    """An embedder made on first use (the bulk one: most gateways never import)."""

    def __init__(self, make: Callable[[], Embedder]) -> None:
        self._make = make
        self._made: Embedder | None = None
        self._lock = threading.Lock()

    def get(self) -> Embedder:
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made


@dataclass
class KbAdmin:
    sessions: Sessions
    clock: Clock
    embedder: Embedder  # the live one: searches, and single documents (a few statements each)
    bulk: LazyEmbedder  # imports
    live: LiveIndex | None = None  # this process's index, refreshed after each write
    limits: ImportLimits = field(default_factory=ImportLimits)
    import_root: Path | None = None  # server-side folder imports must lie inside it
    _importing: threading.Lock = field(default_factory=threading.Lock)  # one import at a time: each takes a core

    # ---- single documents ---------------------------------------------------------------------------

    def create(self, new: DocumentCreate, *, actor: str) -> KbDocumentPublic:
        doc = DocumentIn(id=new.id or slug(new.title), title=new.title, category=new.category, body=new.content,
                         status=new.status, updated=new.updated or self.clock.now().date())
        prepared = store.prepare(doc, self.embedder)
        with self.sessions() as session:
            created = store.create_document(session, prepared=prepared, now=self.clock.now(), actor=actor)
        self.refresh()
        return created

    def update(self, doc_id: str, change: DocumentUpdate, *, actor: str) -> KbDocumentPublic:
        with self.sessions() as session:
            current = store.get_document(session, doc_id=doc_id)
        if current.version != change.version:  # refused before embedding; the write checks again
            raise store.StaleVersion(doc_id, change.version, current.version)
        doc = DocumentIn(
            id=doc_id, title=change.title or current.title, category=change.category or current.category,
            body=change.content or current.body, status=change.status or current.status,  # type: ignore[arg-type]
            updated=change.updated or current.updated,
        )
        return self._write_version(doc, expected_version=change.version, actor=actor, action="update")

    def rollback(self, doc_id: str, request: Rollback, *, actor: str) -> KbDocumentPublic:
        """The content of version `to_version` as the next version; a deleted document comes back."""
        with self.sessions() as session:
            current = store.list_versions(session, doc_id=doc_id)[-1].version
            doc = store.version_as_document(session, doc_id=doc_id, version=request.to_version)
        expected = request.version or current
        if current != expected:
            raise store.StaleVersion(doc_id, expected, current)
        return self._write_version(doc, expected_version=expected, actor=actor, action="rollback", revive=True)

    def _write_version(
        self, doc: DocumentIn, *, expected_version: int, actor: str, action: str, revive: bool = False
    ) -> KbDocumentPublic:
        prepared = store.prepare(doc, self.embedder)
        with self.sessions() as session:
            written = store.update_document(session, prepared=prepared, expected_version=expected_version,
                                            now=self.clock.now(), actor=actor, action=action, revive=revive)
        self.refresh()
        return written

    def delete(self, doc_id: str, *, actor: str, expected_version: int | None = None) -> KbDocumentPublic:
        with self.sessions() as session:
            deleted = store.delete_document(session, doc_id=doc_id, now=self.clock.now(), actor=actor,
                                            expected_version=expected_version)
        self.refresh()
        return deleted

    # ---- bulk ---------------------------------------------------------------------------------------

    def defaults(self, *, category: str = "general", status: str = "published") -> ImportDefaults:
        return ImportDefaults(updated=self.clock.now().date(), category=category, status=status)  # type: ignore[arg-type]

    def import_uploads(self, files: Sequence[tuple[str, bytes]], *, defaults: ImportDefaults, actor: str) -> ImportReport:
        return self.import_documents(read_uploads(files, defaults=defaults, limits=self.limits), actor=actor)

    def import_path(self, path: Path, *, defaults: ImportDefaults, actor: str, root: Path | None = None) -> ImportReport:
        docs = read_path(path, root=root or self.import_root, defaults=defaults, limits=self.limits)
        return self.import_documents(docs, actor=actor)

    def import_documents(self, docs: Sequence[DocumentIn], *, actor: str) -> ImportReport:
        """All the documents or none: embedded first, then written in one transaction."""
        with self._importing:
            embedder = self.bulk.get()
            prepared = [store.prepare(doc, embedder) for doc in docs]
            with self.sessions() as session:
                report = store.write_documents(session, prepared=prepared, now=self.clock.now(), actor=actor)
        log.info("import by %s: %d created, %d updated, %d unchanged", actor, len(report.created),
                 len(report.updated), len(report.unchanged))
        self.refresh()
        return report

    def export_documents(self) -> list[DocumentIn]:
        with self.sessions() as session:
            return store.export_documents(session)

    # ---- search -------------------------------------------------------------------------------------

    def refresh(self) -> None:
        if self.live is not None:
            self.live.refresh()

    def search(self, query: str, k: int = 3) -> list[SearchHit]:
        """What callers would get: the best statement of each of the `k` best published documents."""
        if self.live is None:
            raise RuntimeError("this knowledge-base admin has no search index")
        return [
            SearchHit(doc_id=hit.chunk.doc_id, version=hit.chunk.version, title=hit.chunk.title,
                      text=statement_of(hit.chunk.text), score=round(hit.score, 4))
            for hit in self.live.retriever.score(query, k=k)
        ]


def open_index(sessions: Sessions, embedder: Embedder) -> LiveIndex:
    live = LiveIndex(HybridRetriever([], embedder), sessions)
    live.load()
    return live


def limits_from(settings: Settings) -> ImportLimits:
    return ImportLimits(max_file_bytes=settings.kb_import_max_file_bytes, max_total_bytes=settings.kb_import_max_bytes,
                        max_documents=settings.kb_import_max_documents)
