"""Public interface of the knowledge base."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Passage:
    """One statement of a document, as retrieval found it."""

    doc_id: str
    title: str
    text: str  # the statement, with its section ("正确的重启顺序：等待30秒；"), without the title
    score: float
    category: str = ""


class Embedder(Protocol):
    dim: int
    name: str  # names the model: stored with each vector, so vectors of another model are never compared

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...  # (n, dim), L2-normalised

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...


class Retriever(Protocol):
    def search(self, query: str, k: int = 3) -> list[Passage]: ...
