"""The demo knowledge base of 云帆通信 (a fictional carrier), imported into an empty store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session

from kb.base import Embedder
from kb.store import ever_filled, prepare, read_directory, write_documents

DEMO_DIR = Path(__file__).resolve().parent / "demo"


def seed_demo_if_empty(
    session: Session, *, embedder: Embedder, now: dt.datetime, folder: Path = DEMO_DIR
) -> int:
    """Import ``folder`` (the demo KB by default) into a store that never held a document; returns how
    many documents were imported. Safe when several gateways start on one new store at once."""
    if ever_filled(session):
        return 0
    prepared = [prepare(doc, embedder) for doc in read_directory(folder)]
    report = write_documents(session, prepared=prepared, now=now, actor="seed", action="create",
                             only_into_new_store=True)
    return len(report.created)
