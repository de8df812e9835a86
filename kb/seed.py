"""The demo knowledge base of 云帆通信 (a fictional carrier), imported into an empty store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session

from kb.base import Embedder
from kb.store import count_documents, import_directory

DEMO_DIR = Path(__file__).resolve().parent / "demo"


def seed_demo_if_empty(
    session: Session, *, embedder: Embedder, now: dt.datetime, folder: Path = DEMO_DIR
) -> int:
    """Import ``folder`` (the demo KB by default) when the store has no documents; returns how many
    documents were imported."""
    if count_documents(session) > 0:
        return 0
    report = import_directory(session, path=folder, embedder=embedder, now=now)
    return len(report.created)
