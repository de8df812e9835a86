"""Public interface of the recognizer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.audio import AudioChunk
from core.events import AsrEvent


class AsrError(RuntimeError):
    """Recognition cannot go on (model failed to load, inference error)."""


class UnsupportedDialect(ValueError):
    """A call declared a dialect the recognizer does not know."""


class AsrInputError(ValueError):
    """Audio that the recognizer cannot take (wrong sample rate, wrong shape or dtype)."""


@dataclass(frozen=True)
class Transcript:
    text: str  # Simplified Chinese
    language: str  # whisper's language code, e.g. "zh"
    dialect: str  # "mandarin", "cantonese", ... or what the call declared
    confidence: float  # 0..1


class Transcriber(Protocol):
    """Whole-utterance recognition; blocking, run it in an InferencePool.

    A `draft` (for a partial transcript) may trade accuracy for speed; a final never is one.
    """

    def transcribe(self, pcm16k: np.ndarray, *, dialect: str = "auto", draft: bool = False) -> Transcript: ...


class DialectIdentifier(Protocol):
    """Which registry dialect an `auto` call speaks, from one final's audio and what the Mandarin model
    heard in it (asr.lid.AutoDialect)."""

    min_samples: int  # shorter utterances are not judged

    def dialect_of(self, pcm16k: np.ndarray, heard: Transcript) -> str | None: ...  # None: Mandarin, or unsure


class VoiceActivityDetector(Protocol):
    """Streaming speech probability of one audio stream; keeps its own state, one instance per call."""

    sample_rate: int  # 16000
    window_size: int  # samples per probability

    def push(self, pcm16k: np.ndarray) -> np.ndarray:
        """Samples of any length in; one probability per window completed by them out (float32)."""
        ...

    def reset(self) -> None: ...


class StreamingRecognizer(Protocol):
    """Audio of one call in, speech events out (SpeechStarted, SpeechLasting, PartialTranscript,
    FinalTranscript)."""

    def run(self, chunks: AsyncIterator[AudioChunk]) -> AsyncIterator[AsrEvent]: ...
