"""Retrieval evaluation: recall@1/@3 and search latency of the hybrid retriever on a KB and dialogue cases.

python -m kb.evaluate --kb /path/to/kb --cases /path/to/dialogue_dev.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from kb.base import Embedder
from kb.embedder import E5Embedder
from kb.index import HybridRetriever, RetrievalOptions
from kb.models import Base
from kb.store import import_directory, load_chunks


@dataclass(frozen=True)
class EvalCase:
    id: str
    turns: tuple[str, ...]
    expected: frozenset[str]  # empty: nothing in the KB should answer it


@dataclass(frozen=True)
class QueryResult:
    case_id: str
    mode: str
    expected: frozenset[str]
    ranked: tuple[str, ...]
    top_score: float
    seconds: float

    def hit(self, k: int) -> bool:
        return bool(self.expected.intersection(self.ranked[:k]))


@dataclass(frozen=True)
class ModeSummary:
    mode: str
    cases: int
    recall_at_1: float
    recall_at_3: float
    mean_latency_ms: float


def read_cases(path: Path) -> list[EvalCase]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            expected = raw.get("expect", {}).get("kb_docs") or []
            cases.append(EvalCase(id=raw["id"], turns=tuple(raw["turns"]), expected=frozenset(expected)))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a dialogue case ({exc})") from exc
    return cases


def build_retriever(kb_dir: Path, embedder: Embedder, options: RetrievalOptions) -> HybridRetriever:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'kb.sqlite3'}")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            import_directory(session, path=kb_dir, embedder=embedder, now=dt.datetime.now(dt.UTC))
            chunks = load_chunks(session)
        engine.dispose()
    return HybridRetriever(chunks, embedder, options)


def queries_of(case: EvalCase) -> dict[str, str]:
    return {"first turn": case.turns[0], "all turns": " ".join(case.turns)}


def run_queries(retriever: HybridRetriever, cases: Sequence[EvalCase]) -> list[QueryResult]:
    results = []
    for case in cases:
        for mode, query in queries_of(case).items():
            started = time.perf_counter()
            passages = retriever.search(query, k=3)
            elapsed = time.perf_counter() - started
            results.append(
                QueryResult(
                    case_id=case.id,
                    mode=mode,
                    expected=case.expected,
                    ranked=tuple(p.doc_id for p in passages),
                    top_score=passages[0].score if passages else 0.0,
                    seconds=elapsed,
                )
            )
    return results


def summarise(results: Sequence[QueryResult], mode: str) -> ModeSummary:
    scored = [r for r in results if r.mode == mode and r.expected]
    return ModeSummary(
        mode=mode,
        cases=len(scored),
        recall_at_1=sum(r.hit(1) for r in scored) / max(len(scored), 1),
        recall_at_3=sum(r.hit(3) for r in scored) / max(len(scored), 1),
        mean_latency_ms=1000 * statistics.fmean(r.seconds for r in results if r.mode == mode),
    )


def print_report(results: Sequence[QueryResult], *, verbose: bool) -> None:
    for mode in ("first turn", "all turns"):
        s = summarise(results, mode)
        print(
            f"{mode:>10}: cases={s.cases}  recall@1={s.recall_at_1:.3f}  recall@3={s.recall_at_3:.3f}  "
            f"mean latency={s.mean_latency_ms:.1f} ms"
        )
    with_docs = [r.top_score for r in results if r.expected and r.hit(1)]
    without_docs = [r.top_score for r in results if not r.expected]
    if with_docs and without_docs:
        print(
            f"top score: correct hits median={statistics.median(with_docs):.3f} min={min(with_docs):.3f}; "
            f"cases without KB docs median={statistics.median(without_docs):.3f} max={max(without_docs):.3f}"
        )
    if verbose:
        for r in results:
            mark = "ok  " if r.hit(1) else ("top3" if r.hit(3) else ("----" if not r.expected else "MISS"))
            print(
                f"{mark} {r.case_id:<14} {r.mode:<10} {r.top_score:.3f} {list(r.ranked)} want={sorted(r.expected)}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kb", type=Path, required=True, help="folder of markdown KB documents")
    parser.add_argument("--cases", type=Path, required=True, help="dialogue cases (JSONL)")
    parser.add_argument("--threads", type=int, default=2, help="embedding threads (default 2)")
    parser.add_argument("--verbose", action="store_true", help="print every query's ranking")
    args = parser.parse_args(argv)

    embedder = E5Embedder(num_threads=args.threads)
    options = RetrievalOptions()
    started = time.perf_counter()
    retriever = build_retriever(args.kb, embedder, options)
    print(f"indexed {len(retriever)} chunks from {args.kb} in {time.perf_counter() - started:.1f} s")
    cases = read_cases(args.cases)
    retriever.search("预热", k=1)  # first query pays for jieba's dictionary load
    print_report(run_queries(retriever, cases), verbose=args.verbose)


if __name__ == "__main__":
    main()
