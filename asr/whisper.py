"""Whole-utterance recognition with faster-whisper, Simplified Chinese out, guarded against hallucinations."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from asr.base import AsrError, Transcript
from asr.dialects import AUTO_LANGUAGES, dialect_of_language, route_dialect
from asr.samples import mono_float32

SAMPLE_RATE = 16000

# Telecom terms a caller is likely to say; pass them as `hotwords` to bias recognition.
TELECOM_HOTWORDS = ("宽带", "光猫", "套餐", "流量", "携号转网", "话费", "停机", "信号", "营业厅")


# Subtitle credits and sign-offs that Whisper writes on silence, music and noise (after t2s and
# normalisation). A segment containing a marker, or equal to a sign-off, is dropped.
_HALLUCINATION_MARKERS = (
    "字幕",
    "请订阅",
    "订阅我的频道",
    "订阅频道",
    "点赞订阅",
    "订阅转发",
    "打赏支持",
    "amara",
    "明镜与点点",
    "独播剧场",
    "索兰娅",
    "yoyotelevision",
)
_HALLUCINATION_SIGN_OFFS = frozenset(
    {"谢谢观看", "感谢观看", "谢谢收看", "感谢收看", "谢谢大家观看", "谢谢您的观看", "thankyouforwatching"}
)
_NOT_WORD = re.compile(r"[\W_]+")


def is_hallucination(text: str) -> bool:
    """True for subtitle-style phrases that Whisper produces without speech."""
    folded = _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower())
    if not folded:
        return True
    return folded in _HALLUCINATION_SIGN_OFFS or any(marker in folded for marker in _HALLUCINATION_MARKERS)


@dataclass(frozen=True)
class SegmentScore:
    text: str
    avg_logprob: float
    no_speech_prob: float
    tokens: int


class WhisperTranscriber:
    """faster-whisper behind the Transcriber protocol; one instance serves every call (thread-safe)."""

    def __init__(
        self,
        model_path: Path,
        *,
        device: str = "cpu",
        compute_type: str = "float32",
        cpu_threads: int = 2,
        beam_size: int = 5,
        hotwords: Sequence[str] | None = None,
        temperature: Sequence[float] = (0.0, 0.4),  # one fallback, to get out of repetition loops
        no_speech_drop: float = 0.8,
    ) -> None:
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        if not Path(model_path).is_dir():
            raise AsrError(f"whisper model directory not found: {model_path}")
        from faster_whisper import WhisperModel

        try:
            self._model = WhisperModel(
                str(model_path), device=device, compute_type=compute_type, cpu_threads=cpu_threads
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise AsrError(f"cannot load whisper model from {model_path}: {exc}") from exc
        import opencc

        self._t2s = opencc.OpenCC("t2s")
        self._t2s.convert("載入")  # it loads its dictionaries on first use: do that now, not in two threads
        self._has_cantonese = self._model.hf_tokenizer.token_to_id("<|yue|>") is not None
        self.beam_size = beam_size
        self.hotwords = tuple(hotwords or ())
        self.temperature = tuple(temperature)
        self.no_speech_drop = no_speech_drop

    def transcribe(self, pcm16k: np.ndarray, *, dialect: str = "auto") -> Transcript:
        route = route_dialect(dialect)
        audio = mono_float32(pcm16k, consumer="transcribe")
        language = self._supported_language(route.language)
        if len(audio) == 0:
            return Transcript("", language or "zh", route.dialect or "mandarin", 0.0)
        segments, found = self._decode(audio, language)
        if language is None and found not in self._auto_languages():
            language = self._best_allowed(audio)
            segments, found = self._decode(audio, language)
        kept = [s for s in map(self._simplified, segments) if not self._is_noise(s)]
        text = _join(kept, found)
        dialect_tag = route.dialect or dialect_of_language(found)
        return Transcript(text, found, dialect_tag, _confidence(kept) if text else 0.0)

    def _decode(self, audio: np.ndarray, language: str | None) -> tuple[list[SegmentScore], str]:
        try:
            segments, info = self._model.transcribe(
                audio,
                language=language,
                beam_size=self.beam_size,
                temperature=list(self.temperature),
                condition_on_previous_text=False,
                without_timestamps=True,
                hotwords="，".join(self.hotwords) or None,
                vad_filter=False,
            )
            scores = [_score(segment) for segment in segments]
        except (RuntimeError, ValueError) as exc:
            raise AsrError(f"whisper failed on {len(audio) / SAMPLE_RATE:.2f} s of audio: {exc}") from exc
        return scores, info.language

    def _best_allowed(self, audio: np.ndarray) -> str:
        _, _, probabilities = self._model.detect_language(audio)
        allowed = self._auto_languages()
        return max((p, lang) for lang, p in probabilities if lang in allowed)[1]

    def _auto_languages(self) -> tuple[str, ...]:
        return tuple(lang for lang in AUTO_LANGUAGES if lang != "yue" or self._has_cantonese)

    def _supported_language(self, language: str | None) -> str | None:
        if language == "yue" and not self._has_cantonese:
            return "zh"  # only large-v3 knows Cantonese; the others write it as Chinese
        return language

    def _is_noise(self, segment: SegmentScore) -> bool:
        return segment.no_speech_prob > self.no_speech_drop or is_hallucination(segment.text)

    def _simplified(self, segment: SegmentScore) -> SegmentScore:
        return replace(segment, text=self._t2s.convert(segment.text.strip()))


def _join(segments: Iterable[SegmentScore], language: str) -> str:
    return (" " if language == "en" else "").join(s.text for s in segments).strip()


def _score(segment: object) -> SegmentScore:
    return SegmentScore(
        text=segment.text,  # type: ignore[attr-defined]
        avg_logprob=float(segment.avg_logprob),  # type: ignore[attr-defined]
        no_speech_prob=float(segment.no_speech_prob),  # type: ignore[attr-defined]
        tokens=max(1, len(segment.tokens)),  # type: ignore[attr-defined]
    )


def _confidence(segments: Sequence[SegmentScore]) -> float:
    """Token-weighted mean of exp(avg_logprob) * (1 - no_speech_prob), in 0..1."""
    total = sum(s.tokens for s in segments)
    if total == 0:
        return 0.0
    weighted = sum(s.tokens * math.exp(s.avg_logprob) * (1.0 - s.no_speech_prob) for s in segments)
    return min(1.0, max(0.0, weighted / total))
