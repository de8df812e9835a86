"""Public interface of the synthesizer."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class SynthesisError(RuntimeError):
    """The backend could not speak a text."""


class Synthesizer(Protocol):
    name: str
    sample_rate: int

    def synthesize(self, text: str) -> np.ndarray:
        """Blocking: Chinese text -> mono int16 samples at `sample_rate`."""
        ...
