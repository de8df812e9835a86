"""Retrieval benchmark: recall of the cases' documents, and search latency as the KB grows.

`hotline bench kb --kb DIR --cases FILE.jsonl [--grow 10000]` prints one JSON summary as its last line.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from kb.base import Embedder
from kb.index import HybridRetriever
from kb.models import Base
from kb.schemas import DocumentIn
from kb.store import load_chunks, prepare, read_directory, write_documents

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class RecallCase:
    id: str
    turns: tuple[str, ...]  # a case is found when any of its turns finds one of its documents
    expected: frozenset[str]


def read_cases(path: Path) -> list[RecallCase]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            expected = (raw.get("expect") or {}).get("kb_docs") or []
            if expected:
                cases.append(RecallCase(str(raw["id"]), tuple(map(str, raw["turns"])), frozenset(expected)))
        except (json.JSONDecodeError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"{path}:{number}: not a dialogue case ({exc})") from exc
    return cases


def index_folder(folder: Path, embedder: Embedder, *, extra_documents: Sequence[DocumentIn] = ()) -> HybridRetriever:
    """The folder's documents (and any extra ones) in a throwaway store, indexed as a gateway indexes them."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'kb.sqlite3'}")
        Base.metadata.create_all(engine)
        docs = [*read_directory(folder), *extra_documents]
        with Session(engine) as session:
            write_documents(session, prepared=[prepare(doc, embedder) for doc in docs], now=NOW, actor="bench")
            chunks = load_chunks(session)
        engine.dispose()
    return HybridRetriever(chunks, embedder)


def grown_documents(folder: Path, target_chunks: int, per_document: float) -> list[DocumentIn]:
    """Copies of the folder's documents under other ids, enough for about `target_chunks` statements in
    all: a stand-in for a carrier's full knowledge base (same texts, so each is embedded once)."""
    originals = read_directory(folder)
    needed = max(0, round(target_chunks / per_document) - len(originals))
    return [
        original.model_copy(update={"id": f"{original.id}-copy-{n}"})
        for n, original in ((i, originals[i % len(originals)]) for i in range(needed))
    ]


class _RepeatedPassages:
    """The embedder, with each distinct passage embedded once: the grown KB repeats its documents."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self.dim, self.name = embedder.dim, embedder.name
        self._known: dict[str, np.ndarray] = {}

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embedder.embed_queries(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if new := [t for t in dict.fromkeys(texts) if t not in self._known]:
            self._known.update(zip(new, self._embedder.embed_passages(new), strict=True))
        return np.stack([self._known[t] for t in texts]) if texts else self._embedder.embed_passages([])


def recall(retriever: HybridRetriever, cases: Sequence[RecallCase]) -> dict[str, Any]:
    """Share of cases where a turn's best (recall@1) or five best (recall@5) documents hold an expected one."""
    ranked = {case.id: [[p.doc_id for p in retriever.search(turn, k=5)] for turn in case.turns] for case in cases}

    def found(case: RecallCase, k: int) -> bool:
        return any(case.expected & set(docs[:k]) for docs in ranked[case.id])

    at = {k: sum(found(case, k) for case in cases) / max(len(cases), 1) for k in (1, 5)}
    missed = [case.id for case in cases if not found(case, 1)]
    return {"n": len(cases), "recall_at_1": round(at[1], 3), "recall_at_5": round(at[5], 3), "missed_at_1": missed}


def latency(retriever: HybridRetriever, questions: Sequence[str], rounds: int = 3) -> dict[str, float]:
    """Milliseconds per search, question embedding included (every search sees a new question)."""
    timings = []
    for round_number in range(rounds):
        for question in questions:
            fresh = f"{question} {round_number}"  # defeats the embedding cache, as a new caller would
            started = time.perf_counter()
            retriever.statements(fresh, k=8)
            timings.append((time.perf_counter() - started) * 1000)
    ordered = sorted(timings)
    return {"p50": round(statistics.median(ordered), 1), "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1)}


def benchmark(kb_dir: Path, cases_file: Path, embedder: Embedder, grow_to: int) -> dict[str, Any]:
    cases = read_cases(cases_file)
    questions = [turn for case in cases for turn in case.turns] or ["流量包多少钱"]
    started = time.perf_counter()
    retriever = index_folder(kb_dir, embedder)
    summary: dict[str, Any] = {"documents": len({c.doc_id for c in retriever.chunks}), "chunks": len(retriever),
                               "index_s": round(time.perf_counter() - started, 1)}
    summary["recall"] = recall(retriever, cases)
    summary["search_ms"] = latency(retriever, questions)
    if grow_to > len(retriever):
        per_document = len(retriever) / max(summary["documents"], 1)
        started = time.perf_counter()
        grown = index_folder(kb_dir, _RepeatedPassages(embedder),
                             extra_documents=grown_documents(kb_dir, grow_to, per_document))
        summary["grown"] = {"chunks": len(grown), "index_s": round(time.perf_counter() - started, 1),
                            "search_ms": latency(grown, questions)}
    return summary

