"""Public interface of the recognizer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.audio import AudioChunk
from core.events import AsrEvent


@dataclass(frozen=True)
class Transcript:
    text: str  # Simplified Chinese
    language: str  # whisper's language code, e.g. "zh"
    dialect: str  # "mandarin", "cantonese", ... or what the call declared
    confidence: float  # 0..1


class Transcriber(Protocol):
    """Whole-utterance recognition; blocking, run it in an InferencePool."""

    def transcribe(self, pcm16k: np.ndarray, *, dialect: str = "auto") -> Transcript: ...


class StreamingRecognizer(Protocol):
    """Audio of one call in, speech events out (SpeechStarted, PartialTranscript, FinalTranscript)."""

    def run(self, chunks: AsyncIterator[AudioChunk]) -> AsyncIterator[AsrEvent]: ...
