"""Which Chinese variety a caller speaks, from the first seconds: a linear classifier on the Whisper
encoder's pooled states. Whisper's own language detection hears Minnan, Hakka and Eastern Min as
Mandarin (`zh`); this tells them apart. numpy only: trained by `hotline adapt lid` (adapt/lid.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr.base import Transcript

SAMPLE_RATE = 16000
ENCODER_FRAME_S = 0.02  # one encoder state per 20 ms


def lid_features(whisper_model: Any, audio: np.ndarray, *, seconds: float) -> np.ndarray:
    """Mean and standard deviation of the encoder states over the first `seconds` of `audio` (float32,
    16 kHz), from a faster-whisper `WhisperModel`; the window holds only that audio."""
    clipped = np.asarray(audio[: round(seconds * SAMPLE_RATE)], dtype=np.float32)
    extractor = whisper_model.feature_extractor
    frames = 2 * math.ceil(max(len(clipped), extractor.hop_length * 2) / extractor.hop_length / 2)
    window = np.zeros(frames * extractor.hop_length, dtype=np.float32)
    window[: len(clipped)] = clipped
    features = extractor(window, padding=0)[:, :frames]
    states = np.asarray(whisper_model.encode(features))[0]  # (frames / 2, d_model)
    used = max(1, min(len(states), math.ceil(len(clipped) / SAMPLE_RATE / ENCODER_FRAME_S)))
    states = states[:used].astype(np.float32)
    return np.concatenate([states.mean(axis=0), states.std(axis=0)])


@dataclass(frozen=True)
class DialectClassifier:
    classes: tuple[str, ...]  # dialect names of the registry, e.g. mandarin, minnan, hakka, mindong
    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray  # (features, classes)
    bias: np.ndarray
    seconds: float  # how much of the start of a call it listens to

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, classes) probabilities of (n, features) pooled states."""
        logits = ((np.atleast_2d(features) - self.mean) / self.scale) @ self.weight + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.probabilities(features).argmax(axis=1)]

    def identify(self, whisper_model: Any, audio: np.ndarray) -> tuple[str, float]:
        """(dialect, probability) of one utterance."""
        p = self.probabilities(lid_features(whisper_model, audio, seconds=self.seconds))[0]
        return self.classes[int(p.argmax())], float(p.max())

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            np.savez(out, classes=np.array(self.classes), mean=self.mean, scale=self.scale, weight=self.weight,
                     bias=self.bias, seconds=np.array(self.seconds))

    @classmethod
    def load(cls, path: Path) -> DialectClassifier:
        with np.load(path, allow_pickle=False) as data:
            return cls(tuple(str(c) for c in data["classes"]), data["mean"], data["scale"], data["weight"],
                       data["bias"], float(data["seconds"]))


class AutoDialect:
    """Tells, from an `auto` call's first final, whether the caller speaks a registry dialect.

    Two signals, so that real Mandarin callers stay on the Mandarin model although the classifier
    learnt Mandarin from synthetic speech only: the Mandarin model's own confidence in what it heard
    (measured on 2 cores, the first 4 s: dialect dev clips p90 0.42-0.56, real Mandarin clips p10
    0.67), and the classifier's probability for the dialect.
    """

    def __init__(
        self, classifier: DialectClassifier, whisper_model: Any, *, mandarin_confidence: float = 0.6,
        min_probability: float = 0.8, min_speech_s: float = 1.0,
    ) -> None:
        self.classifier = classifier
        self._whisper_model = whisper_model
        self.mandarin_confidence = mandarin_confidence
        self.min_probability = min_probability
        self.min_samples = round(min_speech_s * SAMPLE_RATE)

    def dialect_of(self, pcm16k: np.ndarray, heard: Transcript) -> str | None:
        """The dialect of an utterance (int16, 16 kHz) that the Mandarin model heard as `heard`; None
        when it is Mandarin or nothing is sure."""
        if heard.dialect != "mandarin" or heard.confidence >= self.mandarin_confidence:
            return None
        audio = np.asarray(pcm16k, dtype=np.float32) / 32768.0
        dialect, probability = self.classifier.identify(self._whisper_model, audio)
        if dialect == "mandarin" or probability < self.min_probability:
            return None
        return dialect
