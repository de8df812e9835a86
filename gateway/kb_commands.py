"""`hotline kb import|export|search`: knowledge-base administration from a shell, on the configured store.

Imports are checked whole before the store is opened; gateways serving the store pick changes up through
the KB revision, as they do for REST writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.clock import SystemClock
from gateway.kb_admin import KbAdmin, LazyEmbedder, limits_from, open_index
from gateway.services import Services
from gateway.settings import Settings
from kb import store
from kb.markdown import MarkdownDocumentError
from kb.transfer import ImportDefaults, read_path


def _cli_admin(settings: Settings, *, with_index: bool = False) -> tuple[KbAdmin, Services]:
    from kb.embedder import E5Embedder

    services = Services.open(settings)
    embedder = E5Embedder(num_threads=settings.kb_threads)
    live = open_index(services.sessions, embedder) if with_index else None
    admin = KbAdmin(services.sessions, services.clock, embedder, LazyEmbedder(lambda: embedder), live,
                    limits_from(settings))
    return admin, services


def import_command(settings: Settings, path: Path, *, category: str, status: str, actor: str) -> int:
    """`hotline kb import PATH`: a file, a zip or a folder, all or nothing; prints the report as JSON."""
    try:
        defaults = ImportDefaults(updated=SystemClock().now().date(), category=category, status=status)  # type: ignore[arg-type]
        docs = read_path(path, defaults=defaults, limits=limits_from(settings))
    except (MarkdownDocumentError, ValueError) as exc:  # KbImportError is a MarkdownDocumentError
        print(f"hotline kb import: nothing imported: {exc}", file=sys.stderr)
        return 2
    admin, services = _cli_admin(settings)
    try:
        report = admin.import_documents(docs, actor=actor)
    finally:
        services.close()
    print(report.model_dump_json())
    return 0


def export_command(settings: Settings, folder: Path) -> int:
    """`hotline kb export DIR`: every document that is not deleted, as ID.md with front matter."""
    services = Services.open(settings)
    try:
        with services.sessions() as session:
            written = store.export_directory(session, path=folder)
    finally:
        services.close()
    print(json.dumps({"exported": len(written), "folder": str(folder)}, ensure_ascii=False))
    return 0


def search_command(settings: Settings, query: str, *, k: int) -> int:
    """`hotline kb search "…"`: what callers would get, one JSON object a line, best first."""
    admin, services = _cli_admin(settings, with_index=True)
    try:
        hits = admin.search(query, k=k)
    finally:
        services.close()
    for hit in hits:
        print(hit.model_dump_json())
    if not hits:
        print("hotline kb search: no published document matches", file=sys.stderr)
    return 0
