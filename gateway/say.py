"""`hotline say`: speak a text the way a call does (normalization, clauses, pauses, codec) into a WAV."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from core.audio import AudioFormat, Codec, encode
from core.concurrency import InferencePool
from core.wav import write_wav
from gateway.settings import Settings

SAY_RATES = (8000, 16000, 24000)
BREATH_S = 0.25  # silence before and after, so the file also works as a caller's turn


@dataclass(frozen=True)
class SayOptions:
    text: str
    out: Path
    codec: Codec = Codec.PCM16
    rate: int = 16000


async def _spoken(options: SayOptions, settings: Settings) -> bytes:
    from tts.loader import load_synthesizer
    from tts.stream import speak

    synth = load_synthesizer(settings.tts.backend, threads=settings.tts.threads, coqui=settings.tts.coqui_voice())
    pool = InferencePool("tts", 1)
    try:
        fmt = AudioFormat(options.codec, options.rate)
        return b"".join([frame async for frame in speak(synth, pool, options.text, fmt)])
    finally:
        pool.close()


def say_to_file(options: SayOptions, settings: Settings) -> int:
    import numpy as np

    from tts.text_norm import normalize_for_speech

    if not normalize_for_speech(options.text):
        print(f"hotline say: nothing speakable in {options.text!r}", file=sys.stderr)
        return 2
    fmt = AudioFormat(options.codec, options.rate)
    breath = encode(np.zeros(int(BREATH_S * options.rate), dtype=np.int16), options.codec)
    speech = asyncio.run(_spoken(options, settings))
    write_wav(options.out, breath + speech + breath, fmt)
    seconds = len(speech) / fmt.bytes_per_sample / options.rate
    print(f"wrote {options.out} ({seconds:.1f} s, {options.codec}, {options.rate} Hz)", file=sys.stderr)
    return 0
