"""Hybrid retrieval: BM25 over jieba tokens plus dense e5 cosine, fused, best chunk per document."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from kb.base import Embedder, Passage
from kb.lexicon import phonetic_tokens, tokenize
from kb.store import ChunkRecord


@dataclass(frozen=True)
class RetrievalOptions:
    k1: float = 1.2  # BM25 term-frequency saturation
    b: float = 0.75  # BM25 length normalisation
    # e5 cosines of a query and an unrelated Chinese passage sit around 0.80-0.85, of a passage that
    # answers it around 0.86-0.93: this window maps the dense cosine onto 0..1.
    dense_floor: float = 0.82
    dense_ceiling: float = 0.93
    # BM25 score at which the lexical evidence counts as half of "certain".
    lexical_half: float = 6.0
    # Pinyin matches count for less than matches of the words themselves (homophones are common).
    phonetic_weight: float = 0.7
    dense_weight: float = 0.7
    # Below this fused score a caller should treat the best hit as "nothing relevant".
    min_score: float = 0.3


@dataclass(frozen=True)
class ScoredChunk:
    chunk: ChunkRecord
    dense: float  # cosine similarity
    lexical: float  # BM25
    score: float  # fused, 0..1


class Bm25Index:
    def __init__(
        self, texts: Sequence[str], *, k1: float, b: float, tokens: Callable[[str], list[str]] = tokenize
    ) -> None:
        self._k1, self._b = k1, b
        self._tokens = tokens
        self._docs = [Counter(tokens(text)) for text in texts]
        self._lengths = np.array([sum(doc.values()) for doc in self._docs], dtype=np.float64)
        self._avg_length = float(self._lengths.mean()) if len(self._docs) else 0.0
        frequency: Counter[str] = Counter()
        for doc in self._docs:
            frequency.update(doc.keys())
        n = len(self._docs)
        self._idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}

    def scores(self, query: str) -> np.ndarray:
        result = np.zeros(len(self._docs), dtype=np.float64)
        if not self._docs:
            return result
        norm = self._k1 * (1 - self._b + self._b * self._lengths / max(self._avg_length, 1e-9))
        for term in set(self._tokens(query)):
            idf = self._idf.get(term)
            if idf is None:
                continue
            tf = np.array([doc.get(term, 0) for doc in self._docs], dtype=np.float64)
            result += idf * tf * (self._k1 + 1) / (tf + norm)
        return result


class HybridRetriever:
    """``Retriever`` over a fixed set of chunks; build a new one (or ``rebuild``) when the KB changes."""

    def __init__(
        self, chunks: Sequence[ChunkRecord], embedder: Embedder, options: RetrievalOptions | None = None
    ) -> None:
        self._embedder = embedder
        self.options = options or RetrievalOptions()
        self.rebuild(chunks)

    @property
    def min_score(self) -> float:
        return self.options.min_score

    def rebuild(self, chunks: Sequence[ChunkRecord]) -> None:
        chunks = list(chunks)
        matrix = (
            np.stack([chunk.embedding for chunk in chunks]).astype(np.float32)
            if chunks
            else np.zeros((0, self._embedder.dim), dtype=np.float32)
        )
        texts = [chunk.text for chunk in chunks]
        lexical = Bm25Index(texts, k1=self.options.k1, b=self.options.b)
        phonetic = Bm25Index(texts, k1=self.options.k1, b=self.options.b, tokens=phonetic_tokens)
        # Swap all in one assignment so a concurrent search sees either the old or the new index.
        self._state = (chunks, matrix, lexical, phonetic)

    def __len__(self) -> int:
        return len(self._state[0])

    def search(self, query: str, k: int = 3) -> list[Passage]:
        return [
            Passage(doc_id=hit.chunk.doc_id, title=hit.chunk.title, text=hit.chunk.text, score=hit.score)
            for hit in self.score(query, k=k)
        ]

    def search_relevant(self, query: str, k: int = 3) -> list[Passage]:
        """Like ``search`` but without hits whose score is below ``options.min_score``."""
        return [passage for passage in self.search(query, k=k) if passage.score >= self.options.min_score]

    def score(self, query: str, k: int = 3) -> list[ScoredChunk]:
        """Top ``k`` documents (best chunk of each) with the signals that made their score."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        chunks, matrix, lexical, phonetic = self._state
        if not chunks or not query.strip():
            return []
        dense = matrix @ self._embedder.embed_queries([query])[0]
        # The words as heard, or as they sound: whichever matches better.
        bm25 = np.maximum(lexical.scores(query), self.options.phonetic_weight * phonetic.scores(query))
        fused = self._fuse(dense, bm25)
        best: dict[str, ScoredChunk] = {}
        for index in np.argsort(-fused, kind="stable"):
            chunk = chunks[index]
            if chunk.doc_id not in best:
                best[chunk.doc_id] = ScoredChunk(
                    chunk, float(dense[index]), float(bm25[index]), float(fused[index])
                )
                if len(best) == k:
                    break
        return list(best.values())

    def _fuse(self, dense: np.ndarray, bm25: np.ndarray) -> np.ndarray:
        options = self.options
        dense_part = np.clip(
            (dense - options.dense_floor) / (options.dense_ceiling - options.dense_floor), 0, 1
        )
        lexical_part = bm25 / (bm25 + options.lexical_half)
        return options.dense_weight * dense_part + (1 - options.dense_weight) * lexical_part
