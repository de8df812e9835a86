"""`hotline eval tts`: how well the hotline's voice is understood, by the hotline's own recognizer.

Sentences from the knowledge base are spoken through the calls' path (normalization, voice, call rate)
and transcribed by the bundled recognizer; both sides are compared in their spoken form, so "69元"
heard back for 六十九元 counts as right. Numbers come back as said when every number of the sentence
is in the transcript, read the same way.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.settings import Settings

SENTENCE_END = re.compile(r"(?<=[。！？])")
MIN_CHARS, MAX_CHARS = 8, 40


def kb_sentences(folder: Path, limit: int, skip: int = 0) -> list[str]:
    """Up to `limit` sentences of the Markdown documents in folder, taken in turn from each document,
    after the first `skip` of that order (so that sentences a change was tuned on can be held out)."""
    per_document = [list(_sentences(path.read_text(encoding="utf-8"))) for path in sorted(folder.glob("*.md"))]
    picked: list[str] = []
    while len(picked) < skip + limit and any(per_document):
        for sentences in per_document:
            if sentences and len(picked) < skip + limit:
                picked.append(sentences.pop(0))
    return picked[skip:]


def _sentences(markdown: str) -> Iterator[str]:
    body = markdown.split("---", 2)[-1] if markdown.startswith("---") else markdown
    for line in body.splitlines():
        line = re.sub(r"^\s*(?:#+|[-*]|\d+[.)、])\s*", "", line).strip()
        for sentence in SENTENCE_END.split(line):
            if MIN_CHARS <= len(sentence.strip()) <= MAX_CHARS:
                yield sentence.strip()


@dataclass(frozen=True)
class SentenceResult:
    text: str
    spoken: str
    heard: str
    cer: float
    numbers_kept: bool | None  # None: the sentence has no number


def _numbers_kept(text: str, heard_spoken: str) -> bool | None:
    from tts.text_norm import normalize_for_speech

    numbers = re.findall(r"\d+(?:[.,]\d+)*", text)
    if not numbers:
        return None
    return all(normalize_for_speech(n).rstrip("。") in heard_spoken for n in numbers)


def measure(sentences: list[str], synth: Any, transcriber: Any, dump: Path | None = None) -> dict[str, Any]:
    """Speak and transcribe every sentence; with `dump`, write one JSON line per sentence there."""
    from asr.cer import corpus_cer, normalize_for_cer
    from core.audio import resample
    from tts.text_norm import normalize_for_speech

    results = []
    started = time.monotonic()
    for text in sentences:
        spoken = normalize_for_speech(text)
        pcm = resample(synth.synthesize(spoken), synth.sample_rate, 16000)
        heard = transcriber.transcribe(pcm, dialect="mandarin").text
        heard_spoken = normalize_for_speech(heard)
        reference, hypothesis = normalize_for_cer(spoken), normalize_for_cer(heard_spoken)
        results.append(SentenceResult(text, spoken, heard, corpus_cer([(reference, hypothesis)]),
                                      _numbers_kept(text, heard_spoken)))
    if dump is not None:
        with dump.open("w", encoding="utf-8") as out:
            for r in results:
                out.write(json.dumps({"text": r.text, "spoken": r.spoken, "heard": r.heard, "cer": round(r.cer, 4),
                                      "numbers_kept": r.numbers_kept}, ensure_ascii=False) + "\n")
    with_numbers = [r for r in results if r.numbers_kept is not None]
    return {
        "sentences": len(results),
        "cer": round(corpus_cer([(normalize_for_cer(r.spoken), normalize_for_cer(normalize_for_speech(r.heard)))
                                 for r in results]), 4),
        "sentences_with_numbers": len(with_numbers),
        "numbers_kept": round(sum(bool(r.numbers_kept) for r in with_numbers) / len(with_numbers), 4)
        if with_numbers else None,
        "worst": [{"text": r.text, "heard": r.heard, "cer": round(r.cer, 3)}
                  for r in sorted(results, key=lambda r: -r.cer)[:5]],
        "synthesizer": synth.name,
        "seconds": round(time.monotonic() - started, 1),
    }


def run_tts_eval(kb_folder: Path | None, limit: int, settings: Settings, *, skip: int = 0,
                 dump: Path | None = None) -> int:
    from asr.whisper import WhisperTranscriber
    from core.bundled import resolve
    from kb.seed import DEMO_DIR
    from tts.loader import load_synthesizer

    s = settings.asr
    transcriber = WhisperTranscriber(resolve(s.model, settings.model_dir), device=s.device,
                                     compute_type=s.compute_type, cpu_threads=s.threads, beam_size=s.beam_size)
    synth = load_synthesizer(settings.tts.backend, threads=settings.tts.threads, coqui=settings.tts.coqui_voice())
    sentences = kb_sentences(kb_folder or settings.kb_dir or DEMO_DIR, limit, skip)
    summary = {"skip": skip, **measure(sentences, synth, transcriber, dump)}
    print(json.dumps(summary, ensure_ascii=False))
    return 0
