"""Checked conversion of the samples the recognizer's parts are given."""

from __future__ import annotations

import numpy as np

from asr.base import AsrInputError
from core.audio import to_float


def mono_float32(pcm: np.ndarray, *, consumer: str) -> np.ndarray:
    """int16 or float mono samples -> float32 in [-1, 1]; anything else is a clear AsrInputError."""
    array = np.asarray(pcm)
    if array.ndim != 1:
        raise AsrInputError(f"{consumer} takes mono samples (a 1-D array), got shape {array.shape}")
    if array.dtype == np.int16:
        return to_float(array)
    if array.dtype in (np.float32, np.float64):
        return array.astype(np.float32)
    raise AsrInputError(f"{consumer} takes int16 or float samples, got dtype {array.dtype}")
