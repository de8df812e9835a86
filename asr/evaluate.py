"""CER and real-time factor of the Whisper transcriber on a speech manifest.

    python -m asr.evaluate --manifest /work/shared/eval/speech/manifest.jsonl \
        [--lang zh] [--limit N] [--rate 8000]

Each manifest line is a JSON object with `audio` (path relative to the manifest), `lang`, `text_norm`
and, for Traditional references, `text_norm_simplified` (used when present, since the output is Simplified).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.cer import CerCount, cer_count
from asr.whisper import TELECOM_HOTWORDS, WhisperTranscriber
from core.audio import from_float, resample

SAMPLE_RATE = 16000
# The dialect each manifest language is declared as, as a call would declare it.
_DIALECT_OF_LANG = {
    "zh": "mandarin",
    "yue": "cantonese",
    "minnan": "minnan",
    "hakka": "hakka",
    "mindong": "mindong",
    "sichuan": "sichuan",
    "wu": "wu",
}


class ManifestError(ValueError):
    """A manifest line that cannot be used."""


@dataclass(frozen=True)
class Clip:
    audio: Path
    lang: str
    reference: str


@dataclass(frozen=True)
class ClipResult:
    clip: Clip
    hypothesis: str
    count: CerCount
    audio_seconds: float
    compute_seconds: float


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
                audio=path.parent / record["audio"],
                lang=record["lang"],
                reference=record.get("text_norm_simplified") or record["text_norm"],
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ManifestError(f"{path}:{number}: not a usable manifest line ({exc!r})") from exc
        if langs and clip.lang not in langs:
            continue
        clips.append(clip)
        if limit is not None and len(clips) >= limit:
            break
    return clips


def load_audio(path: Path, *, rate: int) -> np.ndarray:
    """Mono int16 at 16 kHz; with rate < 16000 the clip goes through that rate first (narrowband)."""
    from faster_whisper import decode_audio

    samples = from_float(decode_audio(str(path), sampling_rate=rate))
    return resample(samples, rate, SAMPLE_RATE)


def evaluate(
    transcriber: WhisperTranscriber, clips: Sequence[Clip], *, rate: int, dialect: str | None
) -> Iterator[ClipResult]:
    for clip in clips:
        pcm = load_audio(clip.audio, rate=rate)
        started = time.perf_counter()
        transcript = transcriber.transcribe(pcm, dialect=dialect or _DIALECT_OF_LANG.get(clip.lang, "auto"))
        elapsed = time.perf_counter() - started
        yield ClipResult(
            clip, transcript.text, cer_count(clip.reference, transcript.text), len(pcm) / SAMPLE_RATE, elapsed
        )


def summary_line(name: str, results: Sequence[ClipResult]) -> str:
    errors = sum(r.count.errors for r in results)
    chars = sum(r.count.reference_chars for r in results)
    audio = sum(r.audio_seconds for r in results)
    compute = sum(r.compute_seconds for r in results)
    return (
        f"{name:<10} clips={len(results):>3} audio={audio:7.1f}s chars={chars:>5} "
        f"CER={CerCount(errors, chars).rate:7.2%} RTF={compute / audio if audio else 0.0:.3f}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m asr.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--lang", action="append", default=[], help="only these langs (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="at most N clips")
    parser.add_argument(
        "--rate",
        type=int,
        default=SAMPLE_RATE,
        choices=(8000, SAMPLE_RATE),
        help="sample rate the audio passes through (8000 = narrowband)",
    )
    parser.add_argument("--dialect", default=None, help="declare this dialect for every clip (e.g. auto)")
    parser.add_argument(
        "--model", type=Path, default=None, help="faster-whisper model dir (default: bundled)"
    )
    parser.add_argument("--compute-type", default="float32")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--hotwords",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="bias recognition with telecom terms",
    )
    parser.add_argument("--verbose", action="store_true", help="print every clip's hypothesis")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        clips = read_manifest(args.manifest, langs=args.lang, limit=args.limit)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not clips:
        print(f"no clips selected from {args.manifest}", file=sys.stderr)
        return 1
    model = args.model or _bundled_whisper()
    transcriber = WhisperTranscriber(
        model,
        compute_type=args.compute_type,
        cpu_threads=args.threads,
        beam_size=args.beam_size,
        hotwords=TELECOM_HOTWORDS if args.hotwords else None,
    )
    by_lang: dict[str, list[ClipResult]] = defaultdict(list)
    for result in evaluate(transcriber, clips, rate=args.rate, dialect=args.dialect):
        by_lang[result.clip.lang].append(result)
        if args.verbose:
            print(
                f"{result.count.rate:6.1%} {result.clip.audio.name}\n  ref {result.clip.reference}\n"
                f"  hyp {result.hypothesis}",
                flush=True,
            )
    print(
        f"model={model} compute_type={args.compute_type} beam={args.beam_size} threads={args.threads} "
        f"rate={args.rate} hotwords={args.hotwords}"
    )
    for lang, results in sorted(by_lang.items()):
        print(summary_line(lang, results))
    print(summary_line("overall", [r for results in by_lang.values() for r in results]))
    return 0


def _bundled_whisper() -> Path:
    from core.bundled import resolve

    return resolve("bundled:whisper-base", Path("/tmp/mc"))


if __name__ == "__main__":
    raise SystemExit(main())
