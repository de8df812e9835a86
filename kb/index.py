"""Hybrid retrieval over statement-sized chunks: BM25 (words, and their pinyin) plus dense e5 cosine, fused.

Lexical scoring is a sparse matrix product, so a search costs the same whether the knowledge base holds
thirty documents or thousands: no Python loop over chunks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import sparse

from kb.base import Embedder, Passage
from kb.chunking import statement_of
from kb.lexicon import expand_query, normalise, phonetic_tokens, tokenize
from kb.store import ChunkRecord


@dataclass(frozen=True)
class RetrievalOptions:
    k1: float = 1.2  # BM25 term-frequency saturation
    b: float = 0.75  # BM25 length normalisation
    # e5 cosines of a question and an unrelated Chinese statement sit around 0.78-0.83, of a statement
    # that answers it around 0.86-0.92: this window maps the dense cosine onto 0..1.
    dense_floor: float = 0.80
    dense_ceiling: float = 0.92
    # BM25 score at which the lexical evidence counts as half of "certain".
    lexical_half: float = 6.0
    # Pinyin matches count for less than matches of the words themselves (homophones are common).
    phonetic_weight: float = 0.7
    dense_weight: float = 0.6
    # A question that names a document's subject (香港, 129元, 停机保号) is about that document: the BM25 of
    # the question against titles alone is added, with this weight, to every statement of the document.
    title_weight: float = 0.1


@dataclass(frozen=True)
class ScoredChunk:
    chunk: ChunkRecord
    dense: float  # cosine similarity
    lexical: float  # BM25
    score: float  # fused, 0..1


class Bm25Index:
    """BM25 of every tokenised text for a query's terms, as one sparse product."""

    def __init__(
        self, documents: Sequence[Sequence[str]], *, k1: float, b: float,
        query_tokens: Callable[[str], list[str]] = tokenize,
    ) -> None:
        self._query_tokens = query_tokens
        self._vocabulary: dict[str, int] = {}
        rows: list[int] = []
        columns: list[int] = []
        for row, tokens in enumerate(documents):
            for token in tokens:
                rows.append(row)
                columns.append(self._vocabulary.setdefault(token, len(self._vocabulary)))
        counts = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (rows, columns)),
            shape=(len(documents), len(self._vocabulary)),
        )
        counts.sum_duplicates()
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        norm = k1 * (1 - b + b * lengths / max(float(lengths.mean()) if len(documents) else 0.0, 1e-9))
        # Saturated term frequencies, computed once: tf (k1 + 1) / (tf + norm) for every stored count.
        weights = counts.tocoo()
        weights.data = weights.data * (k1 + 1) / (weights.data + norm[weights.row])
        self._weights = weights.tocsc()
        frequency = np.diff(self._weights.indptr)
        self._idf = np.log(1 + (len(documents) - frequency + 0.5) / (frequency + 0.5))

    def scores(self, query: str) -> np.ndarray:
        columns = sorted({self._vocabulary[t] for t in self._query_tokens(query) if t in self._vocabulary})
        if not columns:
            return np.zeros(self._weights.shape[0], dtype=np.float64)
        return np.asarray(self._weights[:, columns] @ self._idf[columns]).ravel()


@dataclass(frozen=True)
class _Analysis:
    """A chunk as the lexical indexes see it; kept between rebuilds, since segmenting is the slow part."""

    words: list[str]
    sounds: list[str]
    title: list[str]
    text: str  # normalised


def _analyse(chunk: ChunkRecord) -> _Analysis:
    return _Analysis(tokenize(chunk.text), phonetic_tokens(chunk.text), tokenize(chunk.title), normalise(chunk.text))


def _key(chunk: ChunkRecord) -> tuple[str, int, int]:
    return chunk.doc_id, chunk.version, chunk.ordinal


class HybridRetriever:
    """``Retriever`` over a fixed set of chunks; build a new one (or ``rebuild``) when the KB changes."""

    def __init__(
        self, chunks: Sequence[ChunkRecord], embedder: Embedder, options: RetrievalOptions | None = None
    ) -> None:
        self._embedder = embedder
        self.options = options or RetrievalOptions()
        self.rebuild(chunks)

    def rebuild(self, chunks: Sequence[ChunkRecord]) -> None:
        """Index exactly `chunks`; chunks indexed before are not segmented again."""
        chunks = list(chunks)
        known = getattr(self, "_analyses", {})
        analyses = {_key(c): known.get(_key(c)) or _analyse(c) for c in chunks}
        self._analyses = analyses
        parts = [analyses[_key(c)] for c in chunks]
        matrix = (
            np.stack([chunk.embedding for chunk in chunks]).astype(np.float32)
            if chunks
            else np.zeros((0, self._embedder.dim), dtype=np.float32)
        )
        options = self.options
        lexical = Bm25Index([a.words for a in parts], k1=options.k1, b=options.b)
        phonetic = Bm25Index([a.sounds for a in parts], k1=options.k1, b=options.b, query_tokens=phonetic_tokens)
        titles = Bm25Index([a.title for a in parts], k1=options.k1, b=0.0)
        doc_ids = np.array([chunk.doc_id for chunk in chunks], dtype=object)
        corpus: dict[str, str] = {}
        for chunk, analysis in zip(chunks, parts, strict=True):
            corpus[chunk.doc_id] = corpus.get(chunk.doc_id, "") + analysis.text + "\n"
        # Swap all in one assignment so a concurrent search sees either the old or the new index.
        self._state = (chunks, matrix, lexical, phonetic, titles, doc_ids, corpus)

    def replace_documents(self, doc_ids: Collection[str], chunks: Sequence[ChunkRecord]) -> None:
        """Index `chunks` in place of every chunk of `doc_ids` (a document changed, appeared or went)."""
        changed = set(doc_ids)
        kept = [chunk for chunk in self._state[0] if chunk.doc_id not in changed]
        self.rebuild(kept + list(chunks))

    @property
    def chunks(self) -> list[ChunkRecord]:
        return list(self._state[0])

    def __len__(self) -> int:
        return len(self._state[0])

    def search(self, query: str, k: int = 3) -> list[Passage]:
        """The best statement of each of the ``k`` best documents."""
        return [_passage(hit) for hit in self.score(query, k=k)]

    def statements(self, query: str, k: int = 5, doc_ids: Collection[str] | None = None) -> list[Passage]:
        """The ``k`` best statements, several of one document if they are the best, optionally only of
        ``doc_ids``."""
        return [_passage(hit) for hit in self.score(query, k=k, per_document=False, doc_ids=doc_ids)]

    def mentions(self, term: str, doc_id: str | None = None) -> bool:
        """Whether a statement of the knowledge base (of ``doc_id`` only, if given) contains ``term``,
        both as normalised for search; a number must stand alone (129 is not in 1290)."""
        corpus = self._state[6]
        texts = [corpus.get(doc_id, "")] if doc_id is not None else corpus.values()
        term = normalise(term)
        if term.replace(".", "").isdigit():
            pattern = re.compile(rf"(?<![\d.]){re.escape(term)}(?![\d.]*\d)")
            return any(pattern.search(text) for text in texts)
        return any(term in text for text in texts)

    def in_document_words(self, question: str) -> str:
        return expand_query(normalise(question))

    def catalog(self) -> list[tuple[str, str, str]]:
        """(document id, title, category) of every document, in id order."""
        return sorted({(c.doc_id, c.title, c.category) for c in self._state[0]})

    def score(
        self,
        query: str,
        k: int = 3,
        *,
        per_document: bool = True,
        doc_ids: Collection[str] | None = None,
    ) -> list[ScoredChunk]:
        """Top ``k`` chunks (with ``per_document``, the best chunk of each document) and their signals."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        chunks, matrix, lexical, phonetic, titles, ids, _ = self._state
        if not chunks or not query.strip():
            return []
        query = normalise(query)
        # Not `matrix @ vector`: OpenBLAS would run that on two threads that then spin for a while after it,
        # on the cores the next query's embedding needs (p95 of a search at 10,000 statements 55 -> 32 ms).
        dense = np.einsum("ij,j->i", matrix, self._query_vector(query))
        # The words as heard, or as they sound: whichever matches better.
        bm25 = np.maximum(lexical.scores(expand_query(query)), self.options.phonetic_weight * phonetic.scores(query))
        fused = self._fuse(dense, bm25, titles.scores(query))
        if doc_ids is not None:
            fused = np.where(np.isin(ids, list(doc_ids)), fused, -1.0)
        hits: list[ScoredChunk] = []
        seen: set[str] = set()
        for index in np.argsort(-fused, kind="stable"):
            chunk = chunks[index]
            if fused[index] < 0 or len(hits) == k:
                break
            if per_document and chunk.doc_id in seen:
                continue
            seen.add(chunk.doc_id)
            hits.append(ScoredChunk(chunk, float(dense[index]), float(bm25[index]), float(fused[index])))
        return hits

    @lru_cache(maxsize=512)  # noqa: B019 - one retriever lives as long as its process
    def _query_vector(self, query: str) -> np.ndarray:
        """The query's embedding; a turn searches the same question several times (its document, the
        previous answer's, a referenced one)."""
        return self._embedder.embed_queries([query])[0]

    def _fuse(self, dense: np.ndarray, bm25: np.ndarray, title: np.ndarray) -> np.ndarray:
        options = self.options
        dense_part = np.clip(
            (dense - options.dense_floor) / (options.dense_ceiling - options.dense_floor), 0, 1
        )
        lexical_part = bm25 / (bm25 + options.lexical_half)
        title_part = title / (title + options.lexical_half)
        fused = options.dense_weight * dense_part + (1 - options.dense_weight) * lexical_part
        return fused + options.title_weight * title_part


def _passage(hit: ScoredChunk) -> Passage:
    chunk = hit.chunk
    return Passage(doc_id=chunk.doc_id, title=chunk.title, text=statement_of(chunk.text), score=hit.score,
                   category=chunk.category)
