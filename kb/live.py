"""Keep a process's search index level with the store, whichever process wrote the change.

Every write raises the KB revision in its own transaction (see `kb.store`), so a gateway only has to
compare that number with the one its index was built at, then re-read the documents changed since.
A counter was chosen over PostgreSQL LISTEN/NOTIFY or Redis pub/sub: it works the same on SQLite and
PostgreSQL, needs no connection held open, and a gateway that was down or disconnected catches up on
its next look instead of missing a notice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy.orm import Session

from kb.index import HybridRetriever
from kb.store import changed_since, current_revision, load_chunks

log = logging.getLogger(__name__)


class LiveIndex:
    """A HybridRetriever plus the KB revision it reflects; `refresh` brings it up to date (blocking)."""

    def __init__(self, retriever: HybridRetriever, sessions: Callable[[], AbstractContextManager[Session]]) -> None:
        self.retriever = retriever
        self._sessions = sessions
        self._lock = threading.Lock()  # one refresh at a time; searches never wait for it
        self.revision = -1

    def load(self) -> None:
        """Index every published document."""
        with self._lock, self._sessions() as session:
            revision = current_revision(session)
            self.retriever.rebuild(load_chunks(session))
            self.revision = revision

    def refresh(self) -> bool:
        """Re-index the documents changed since the index was built; True when something changed."""
        with self._lock, self._sessions() as session:
            revision = current_revision(session)
            if revision == self.revision:
                return False
            # Read before the changes: a write that lands in between is re-read on the next refresh.
            changed = changed_since(session, revision=self.revision)
            chunks = load_chunks(session, doc_ids=changed) if changed else []
        self.retriever.replace_documents(changed, chunks)
        log.info("knowledge base at revision %d: %d document(s) re-indexed", revision, len(changed))
        self.revision = revision
        return True
