"""Typed events of one call, passed between stages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # seconds of call audio


@dataclass(frozen=True)
class SpeechLasting:
    """The current utterance has held `seconds` of speech (said once per utterance): long enough
    to be more than a cough or a click."""

    at: float  # seconds of call audio
    seconds: float


@dataclass(frozen=True)
class PartialTranscript:
    text: str
    dialect: str


@dataclass(frozen=True)
class FinalTranscript:
    text: str
    dialect: str
    confidence: float
    started_at: float  # seconds of call audio
    ended_at: float
    normalized: str = ""  # for the dialogue: dialect words in Mandarin, numbers as digits; text stays verbatim


AsrEvent = SpeechStarted | SpeechLasting | PartialTranscript | FinalTranscript
