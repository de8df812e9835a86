"""Public interface of the knowledge base."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Passage:
    doc_id: str
    title: str
    text: str
    score: float


class Embedder(Protocol):
    dim: int

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...  # (n, dim), L2-normalised

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...


class Retriever(Protocol):
    def search(self, query: str, k: int = 3) -> list[Passage]: ...
