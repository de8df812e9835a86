"""Whole-utterance recognition with faster-whisper, Simplified Chinese out, guarded against hallucinations."""

from __future__ import annotations

import math
import re
import threading
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from asr.base import AsrError, Transcript
from asr.dialects import AUTO_LANGUAGES, dialect_of_language, registry, route_dialect, to_simplified
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


@dataclass(frozen=True)
class DecodeOptions:
    """How one window is decoded; a final uses the beam, a draft (partial) decodes greedily."""

    beam_size: int
    # Whisper's encoder sees the utterance plus this much silence instead of a fixed 30 s window:
    # measured on 24 Mandarin clips (int8, beam 5): CER 16.0 % with 4 s, 16.2 % with 2 s, 16.7 % with
    # the full window, at RTF 0.06 instead of 0.20. Less margin makes it repeat itself.
    margin_s: float = 3.0
    max_tokens_per_s: float = 12.0  # Mandarin speech is 4-6 characters a second; a runaway is cut here
    retry_temperature: float | None = 0.4  # one sampled retry when the text repeats itself
    compression_limit: float = 2.4  # zlib ratio above which a text counts as a repetition loop


class WhisperTranscriber:
    """faster-whisper behind the Transcriber protocol; one instance serves every call (thread-safe).

    Decoding is done here rather than through `WhisperModel.transcribe`, which always encodes a
    30 s window: an utterance is encoded with only `margin_s` of silence after it, and the tokens
    are capped by its duration, so cost follows the audio and a runaway decode stays bounded.
    """

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
        margin_s: float = 3.0,
    ) -> None:
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        if isinstance(hotwords, str):
            raise ValueError("hotwords must be a list of words, not one string")
        if not Path(model_path).is_dir():
            raise AsrError(f"whisper model directory not found: {model_path}")
        from faster_whisper import WhisperModel

        try:
            self._model = WhisperModel(
                str(model_path), device=device, compute_type=compute_type, cpu_threads=cpu_threads
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise AsrError(f"cannot load whisper model from {model_path}: {exc}") from exc
        self._to_simplified = to_simplified()  # its dictionaries load now, with the model
        tokenizer = self._model.hf_tokenizer
        self._has_cantonese = tokenizer.token_to_id("<|yue|>") is not None
        self._special = {name: tokenizer.token_to_id(f"<|{name}|>") for name in
                         ("startoftranscript", "startofprev", "transcribe", "notimestamps", "endoftext")}
        self._suppress = self._suppressed_tokens()
        self.beam_size = beam_size
        self.hotwords = tuple(w.strip() for w in hotwords or () if w.strip())
        self._hotword_tokens = self._prompt_tokens(self.hotwords)
        self.temperature = tuple(temperature)
        self.no_speech_drop = no_speech_drop
        self.final_options = DecodeOptions(beam_size, margin_s=margin_s, retry_temperature=self._retry())
        self.draft_options = DecodeOptions(1, margin_s=margin_s, retry_temperature=None)
        self._settings = {"device": device, "compute_type": compute_type, "cpu_threads": cpu_threads,
                          "beam_size": beam_size, "hotwords": hotwords, "temperature": temperature,
                          "no_speech_drop": no_speech_drop, "margin_s": margin_s}
        self._path = Path(model_path).resolve()
        self._dialect_models: dict[Path, WhisperTranscriber] = {}
        self._loading = threading.Lock()

    def transcribe(
        self, pcm16k: np.ndarray, *, dialect: str = "auto", draft: bool = False, _routed: bool = False
    ) -> Transcript:
        """The utterance's text; a `draft` (for a partial) decodes greedily and never retries.

        A dialect whose registry entry names a model is decoded by that model (loaded on first use).
        """
        route = route_dialect(dialect)
        if route.model is not None and not _routed:
            return self._served_by(route.model).transcribe(pcm16k, dialect=dialect, draft=draft, _routed=True)
        audio = mono_float32(pcm16k, consumer="transcribe")
        language = self._supported_language(route.language)
        if len(audio) == 0:
            return Transcript("", language or "zh", route.dialect or "mandarin", 0.0)
        options = self.draft_options if draft else self.final_options
        if route.beam_size is not None and not draft:
            options = replace(options, beam_size=route.beam_size)
        encoded = self._encode(audio, options)
        found = language or self._best_allowed(encoded)
        kept = [s for s in map(self._simplified, self._decode(encoded, found, len(audio), options))
                if not self._is_noise(s)]
        text = _join(kept, found)
        dialect_tag = route.dialect or dialect_of_language(found)
        return Transcript(text, found, dialect_tag, _confidence(kept) if text else 0.0)

    def _served_by(self, model: str) -> WhisperTranscriber:
        """The transcriber of a dialect's own model: one per distinct model directory, loaded once."""
        path = Path(model).expanduser().resolve()
        if path == self._path:
            return self
        with self._loading:
            if path not in self._dialect_models:
                self._dialect_models[path] = WhisperTranscriber(path, **self._settings)  # type: ignore[arg-type]
            return self._dialect_models[path]

    @property
    def whisper_model(self) -> Any:
        """The faster-whisper model of the default route (its encoder also serves asr.lid)."""
        return self._model

    @property
    def model_path(self) -> Path:
        return self._path

    def model_for(self, dialect: str) -> Path:
        """The directory of the model that decodes calls declared as `dialect`."""
        route = route_dialect(dialect)
        return self._served_by(route.model).model_path if route.model is not None else self._path

    def load_dialect_models(self) -> dict[str, Path]:
        """Load now the model of every registry dialect that names one (at start-up rather than on the
        first call that declares it); {dialect: model directory}."""
        served = {d.name: d.model for d in registry().dialects.values() if d.model}
        for model in sorted(set(served.values())):
            self._served_by(model)
        return {name: Path(model).expanduser().resolve() for name, model in sorted(served.items())}

    def _encode(self, audio: np.ndarray, options: DecodeOptions) -> object:
        extractor = self._model.feature_extractor
        seconds = min(float(extractor.chunk_length), len(audio) / SAMPLE_RATE + options.margin_s)
        frames = 2 * math.ceil(seconds * SAMPLE_RATE / extractor.hop_length / 2)  # the encoder halves it
        window = np.zeros(frames * extractor.hop_length, dtype=np.float32)
        clipped = audio[: len(window)]
        window[: len(clipped)] = clipped
        features = extractor(window, padding=0)[:, :frames]
        try:
            return self._model.encode(features)
        except (RuntimeError, ValueError) as exc:
            raise AsrError(f"whisper failed on {len(audio) / SAMPLE_RATE:.2f} s of audio: {exc}") from exc

    def _decode(self, encoded: object, language: str, samples: int, options: DecodeOptions) -> list[SegmentScore]:
        prompt = [*self._hotword_tokens, self._special["startoftranscript"],
                  self._model.hf_tokenizer.token_to_id(f"<|{language}|>"),
                  self._special["transcribe"], self._special["notimestamps"]]
        cap = max(8, math.ceil(options.max_tokens_per_s * samples / SAMPLE_RATE))
        attempts: list[SegmentScore] = []
        for temperature in (0.0, options.retry_temperature):
            if temperature is None:
                break
            attempts.append(self._generate(encoded, prompt, cap, options.beam_size, temperature))
            if not self._runaway(attempts[-1], cap, options):
                break
        return [min(attempts, key=lambda a: (self._runaway(a, cap, options), -a.avg_logprob))]

    def _generate(self, encoded: object, prompt: list[int], cap: int, beam: int, temperature: float) -> SegmentScore:
        sampling = ({"beam_size": 1, "sampling_topk": 0, "sampling_temperature": temperature}
                    if temperature > 0 else {"beam_size": beam})
        try:
            result = self._model.model.generate(
                encoded, [prompt], max_length=len(prompt) + cap, return_scores=True, return_no_speech_prob=True,
                suppress_blank=True, suppress_tokens=self._suppress, **sampling,
            )[0]
        except (RuntimeError, ValueError) as exc:
            raise AsrError(f"whisper decoding failed: {exc}") from exc
        tokens = [t for t in result.sequences_ids[0] if t < self._special["endoftext"]]
        return SegmentScore(
            text=self._model.hf_tokenizer.decode(tokens),
            avg_logprob=float(result.scores[0]) * len(tokens) / (len(tokens) + 1),
            no_speech_prob=float(result.no_speech_prob),
            tokens=max(1, len(tokens)),
        )

    def _runaway(self, segment: SegmentScore, cap: int, options: DecodeOptions) -> bool:
        return segment.tokens >= cap or _compression_ratio(segment.text) > options.compression_limit

    def _best_allowed(self, encoded: object) -> str:
        """The most likely of the languages a call may speak when it declares `auto`."""
        allowed = self._auto_languages()
        probabilities = self._model.model.detect_language(encoded)[0]
        return max((p, token[2:-2]) for token, p in probabilities if token[2:-2] in allowed)[1]

    def _auto_languages(self) -> tuple[str, ...]:
        return tuple(lang for lang in AUTO_LANGUAGES if lang != "yue" or self._has_cantonese)

    def _supported_language(self, language: str | None) -> str | None:
        if language == "yue" and not self._has_cantonese:
            return "zh"  # only large-v3 knows Cantonese; the others write it as Chinese
        return language

    def _is_noise(self, segment: SegmentScore) -> bool:
        if segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0:
            return True  # Whisper's own rule for a window without speech
        return segment.no_speech_prob > self.no_speech_drop or is_hallucination(segment.text)

    def _simplified(self, segment: SegmentScore) -> SegmentScore:
        return replace(segment, text=self._to_simplified(segment.text.strip()))

    def _retry(self) -> float | None:
        return next((t for t in self.temperature if t > 0), None)

    def _prompt_tokens(self, words: Sequence[str]) -> list[int]:
        """`<|startofprev|>` and the hotwords as previous text, which biases decoding towards them."""
        if not words:
            return []
        tokens = self._model.hf_tokenizer.encode(" " + "，".join(words), add_special_tokens=False).ids
        return [self._special["startofprev"], *tokens[:100]]

    def _suppressed_tokens(self) -> list[int]:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual, task="transcribe",
                              language="zh")
        return list(get_suppressed_tokens(tokenizer, [-1]) or ())


def _join(segments: Iterable[SegmentScore], language: str) -> str:
    return without_echo((" " if language == "en" else "").join(s.text for s in segments).strip())


_HAN = re.compile(r"[\u4e00-\u9fff]")


def without_echo(text: str, *, least: int = 4) -> str:
    """The text without a tail that only repeats what it already said: a short window of telephone
    audio can make Whisper start the utterance over ("…人民路十八号第几十东城区人民"). A repeat of at
    least `least` Chinese characters is cut where it begins; digits alone never count (138138…)."""
    for start in range(least, len(text) - least + 1):
        tail = text[start:]
        if len(_HAN.findall(tail)) >= least and tail in text[:start]:
            return text[:start].rstrip(" ，,")
    return text


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _confidence(segments: Sequence[SegmentScore]) -> float:
    """Token-weighted mean of exp(avg_logprob) * (1 - no_speech_prob), in 0..1."""
    total = sum(s.tokens for s in segments)
    if total == 0:
        return 0.0
    weighted = sum(s.tokens * math.exp(s.avg_logprob) * (1.0 - s.no_speech_prob) for s in segments)
    return min(1.0, max(0.0, weighted / total))
