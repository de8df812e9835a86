"""Training examples: a manifest's clips as faster-whisper features and Whisper token sequences."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr.evaluate import read_manifest

SAMPLE_RATE = 16000
MAX_WINDOW_S = 30.0


@dataclass(frozen=True)
class Example:
    path: Path
    text: str  # the reference in Simplified script, as the recognizer writes
    lang: str


@dataclass(frozen=True)
class Prompt:
    """Whisper's task prefix for a language: <|startoftranscript|><|zh|><|transcribe|><|notimestamps|>."""

    tokens: tuple[int, ...]
    end: int  # <|endoftext|>


def read_examples(manifest: Path, *, langs: Sequence[str] = (), limit: int | None = None) -> list[Example]:
    return [Example(c.path, c.reference, c.lang) for c in read_manifest(manifest, langs=langs, limit=limit)]


def load_audio(path: Path) -> np.ndarray:
    from faster_whisper import decode_audio

    return np.asarray(decode_audio(str(path), sampling_rate=SAMPLE_RATE), dtype=np.float32)


def window_frames(samples: int, *, margin_s: float, hop_length: int, bucket_s: float = 1.0) -> int:
    """Feature frames of the window an utterance is encoded in: itself plus `margin_s` of silence, rounded
    up to `bucket_s` so that clips of similar length share a window (and a batch); at most 30 s."""
    seconds = min(MAX_WINDOW_S, math.ceil((samples / SAMPLE_RATE + margin_s) / bucket_s) * bucket_s)
    return 2 * math.ceil(seconds * SAMPLE_RATE / hop_length / 2)  # the encoder halves it


def log_mel(audio: np.ndarray, frames: int, extractor: Any) -> np.ndarray:
    """faster-whisper's features of `audio` in a window of `frames` frames (zeros after the audio), as
    `asr.whisper.WhisperTranscriber` computes them when it serves a call."""
    window = np.zeros(frames * extractor.hop_length, dtype=np.float32)
    clipped = audio[: len(window)]
    window[: len(clipped)] = clipped
    return np.asarray(extractor(window, padding=0)[:, :frames], dtype=np.float32)


def task_prompt(tokenizer: Any, language: str) -> Prompt:
    ids = [tokenizer.token_to_id(t) for t in
           ("<|startoftranscript|>", f"<|{language}|>", "<|transcribe|>", "<|notimestamps|>")]
    if None in ids:
        raise ValueError(f"the tokenizer has no language token <|{language}|>")
    return Prompt(tuple(ids), tokenizer.token_to_id("<|endoftext|>"))


def text_tokens(tokenizer: Any, text: str, *, max_tokens: int) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)[:max_tokens]


def load_tokenizer(model_dir: Path) -> Any:
    import tokenizers

    return tokenizers.Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
