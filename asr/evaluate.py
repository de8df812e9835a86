"""ASR evaluation through the streaming recognizer the calls use: CER, real-time factor, final latency.

Each manifest line is `{"audio": path (absolute or relative to the manifest), "text": reference,
"lang": ...}`; references are compared in Simplified script (`text_norm_simplified` where present,
else `text` through OpenCC t2s), since the recognizer writes Simplified. Every file is brought to the call's rate and codec, cut into 20 ms frames and
streamed through `StreamingAsr` at real-time pace (or as fast as possible), followed by silence.
The final latency of a file runs from the end of its speech (Silero VAD over the whole file) to the
arrival of its last final transcript.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from asr.base import Transcriber, Transcript, VoiceActivityDetector
from asr.cer import CerCount, cer_count, normalize_for_cer
from asr.stream import EndpointOptions, StreamingAsr
from core.audio import AudioChunk, Codec, decode, encode, from_float, resample
from core.concurrency import InferencePool
from core.events import FinalTranscript

SAMPLE_RATE = 16000
FRAME_S = 0.02
TRAILING_SILENCE_S = 2.0  # longer than any endpoint wait, so every file ends in a final
SPEECH_THRESHOLD = 0.5  # VAD probability that marks the end of a file's speech
# The dialect each manifest language is declared as, as a call would declare it.
DIALECT_OF_LANG = {
    "zh": "mandarin",
    "yue": "cantonese",
    "minnan": "minnan",
    "hakka": "hakka",
    "mindong": "mindong",
    "sichuan": "sichuan",
    "wu": "wu",
}
_NUMERALS = re.compile(r"[0-9零〇幺一二两三四五六七八九十百千万亿]+")


class ManifestError(ValueError):
    """A manifest line that cannot be used."""


@dataclass(frozen=True)
class Clip:
    audio: str  # as given in the manifest
    path: Path
    lang: str
    reference: str


@dataclass(frozen=True)
class AsrEvalOptions:
    manifest: Path
    codec: Codec = Codec.PCM16
    rate: int = SAMPLE_RATE
    dialect: str | None = None  # declared for every file; None: from each file's lang
    out: Path | None = None
    fast: bool = False  # as fast as possible instead of real-time pace
    langs: tuple[str, ...] = ()
    limit: int | None = None


@dataclass(frozen=True)
class ClipResult:
    clip: Clip
    hypothesis: str
    count: CerCount
    count_no_numerals: CerCount
    audio_seconds: float
    latency_ms: float | None  # end of speech -> last final; None when no final came


@dataclass
class TimedTranscriber:
    """A Transcriber that adds up the seconds its inner transcriber spends (partials included)."""

    inner: Transcriber
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def transcribe(self, pcm16k: np.ndarray, **options: Any) -> Transcript:
        started = time.perf_counter()
        try:
            return self.inner.transcribe(pcm16k, **options)
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - started


def read_manifest(path: Path, *, langs: Sequence[str] = (), limit: int | None = None) -> list[Clip]:
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    clips: list[Clip] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            clip = Clip(
                audio=record["audio"],
                path=path.parent / record["audio"],  # an absolute path stays as it is
                lang=record.get("lang") or "zh",
                reference=_simplified(record.get("text_norm_simplified") or record["text"]),
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ManifestError(f"{path}:{number}: not a usable manifest line ({exc!r})") from exc
        if langs and clip.lang not in langs:
            continue
        clips.append(clip)
        if limit is not None and len(clips) >= limit:
            break
    if not clips:
        raise ManifestError(f"no clips selected from {path}")
    return clips


@cache
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def _simplified(text: str) -> str:
    """References in Traditional script are compared in Simplified, as the recognizer writes."""
    return str(_t2s().convert(text))


def cer_without_numerals(reference: str, hypothesis: str) -> CerCount:
    """CER with numeral characters left out of both sides, so 四千九百八 and 4980 agree."""
    ref, hyp = (_NUMERALS.sub("", normalize_for_cer(t)) for t in (reference, hypothesis))
    return cer_count(ref, hyp)


def line_audio(path: Path, *, rate: int, codec: Codec) -> np.ndarray:
    """The file as a caller's line carries it: mono int16 at `rate`, through `codec` and back."""
    from faster_whisper import decode_audio

    try:
        samples = from_float(decode_audio(str(path), sampling_rate=rate))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot decode {path}: {exc}") from exc
    return decode(encode(samples, codec), codec)


def speech_end_s(pcm: np.ndarray, rate: int, vad: VoiceActivityDetector) -> float:
    """End of the last VAD window that holds speech; the whole file if none does."""
    probabilities = vad.push(resample(pcm, rate, SAMPLE_RATE))
    speech = np.flatnonzero(probabilities >= SPEECH_THRESHOLD)
    if speech.size == 0:
        return len(pcm) / rate
    return float((speech[-1] + 1) * vad.window_size / SAMPLE_RATE)


async def stream_clip(
    recognizer: StreamingAsr, pcm: np.ndarray, rate: int, codec: Codec, *, fast: bool, speech_end: float
) -> tuple[list[FinalTranscript], float | None]:
    """The finals of one file and the latency (ms) from the end of its speech to the last final."""
    fed_at: list[tuple[float, float]] = []  # (audio seconds sent so far, when)
    step = round(FRAME_S * rate)
    silence = decode(encode(np.zeros(round(TRAILING_SILENCE_S * rate), np.int16), codec), codec)
    audio = np.concatenate([pcm, silence])

    async def frames() -> AsyncIterator[AudioChunk]:
        started = time.perf_counter()
        for start in range(0, len(audio), step):
            if not fast:
                ahead = started + start / rate - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            yield AudioChunk(audio[start : start + step], rate)
            fed_at.append((min(start + step, len(audio)) / rate, time.perf_counter()))
            if fast:
                await asyncio.sleep(0)

    finals: list[FinalTranscript] = []
    last_final_at = 0.0
    async for event in recognizer.run(frames()):
        if isinstance(event, FinalTranscript):
            finals.append(event)
            last_final_at = time.perf_counter()
    if not finals:
        return finals, None
    speech_sent_at = next((when for sent, when in fed_at if sent >= speech_end), fed_at[-1][1])
    return finals, max(0.0, last_final_at - speech_sent_at) * 1000.0


async def evaluate_clips(
    clips: Sequence[Clip],
    options: AsrEvalOptions,
    new_recognizer: Callable[[str], StreamingAsr],
    vad_factory: Callable[[], VoiceActivityDetector],
    report: Callable[[ClipResult], None] = lambda _: None,
) -> list[ClipResult]:
    results = []
    for clip in clips:
        pcm = line_audio(clip.path, rate=options.rate, codec=options.codec)
        dialect = options.dialect or DIALECT_OF_LANG.get(clip.lang, "auto")
        end = speech_end_s(pcm, options.rate, vad_factory())
        finals, latency = await stream_clip(
            new_recognizer(dialect), pcm, options.rate, options.codec, fast=options.fast, speech_end=end
        )
        hypothesis = "".join(f.text for f in finals)
        result = ClipResult(
            clip,
            hypothesis,
            cer_count(clip.reference, hypothesis),
            cer_without_numerals(clip.reference, hypothesis),
            len(pcm) / options.rate,
            latency,
        )
        report(result)
        results.append(result)
    return results


def _rate(counts: Sequence[CerCount]) -> float:
    return round(CerCount(sum(c.errors for c in counts), sum(c.reference_chars for c in counts)).rate, 4)


def summarize(results: Sequence[ClipResult], *, model_seconds: float, options: AsrEvalOptions) -> dict[str, Any]:
    by_lang: dict[str, list[CerCount]] = defaultdict(list)
    no_numerals_by_lang: dict[str, list[CerCount]] = defaultdict(list)
    for result in results:
        by_lang[result.clip.lang].append(result.count)
        no_numerals_by_lang[result.clip.lang].append(result.count_no_numerals)
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    audio = sum(r.audio_seconds for r in results)
    return {
        "n": len(results),
        "cer": _rate([r.count for r in results]),
        "cer_no_numerals": _rate([r.count_no_numerals for r in results]),
        "cer_by_lang": {lang: _rate(counts) for lang, counts in sorted(by_lang.items())},
        "cer_no_numerals_by_lang": {lang: _rate(counts) for lang, counts in sorted(no_numerals_by_lang.items())},
        "rtf": round(model_seconds / audio, 4) if audio else 0.0,
        "final_latency_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
            "p95": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
        },
        "files_without_final": len(results) - len(latencies),
        "codec": options.codec.value,
        "rate": options.rate,
        "paced": not options.fast,
        "audio_s": round(audio, 1),
    }


def prediction_line(result: ClipResult) -> dict[str, Any]:
    return {
        "audio": result.clip.audio,
        "ref": result.clip.reference,
        "hyp": result.hypothesis,
        "lang": result.clip.lang,
        "cer": round(result.count.rate, 4),
    }


def run_asr_eval(
    options: AsrEvalOptions,
    transcriber: Transcriber,
    vad_factory: Callable[[], VoiceActivityDetector],
    *,
    endpoint: EndpointOptions | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Evaluate the manifest; writes predictions to `options.out` and returns the summary."""
    clips = read_manifest(options.manifest, langs=options.langs, limit=options.limit)
    timed = TimedTranscriber(transcriber)
    pool = InferencePool("asr-eval", workers)

    def new_recognizer(dialect: str) -> StreamingAsr:
        return StreamingAsr(timed, vad_factory, pool, endpoint, dialect=dialect)

    def report(result: ClipResult) -> None:
        latency = f"{result.latency_ms:6.0f} ms" if result.latency_ms is not None else "no final"
        print(f"{result.count.rate:6.1%} {latency} {result.clip.audio}: {result.hypothesis}", file=sys.stderr)

    try:
        results = asyncio.run(evaluate_clips(clips, options, new_recognizer, vad_factory, report))
    finally:
        pool.close()
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        with options.out.open("w", encoding="utf-8") as out:
            for result in results:
                out.write(json.dumps(prediction_line(result), ensure_ascii=False) + "\n")
    return summarize(results, model_seconds=timed.seconds, options=options)
