"""`hotline bench voice`: what one caller hears, timed on the caller's side, N calls one after another.

Each call: half-way through the greeting the caller cuts in ("等一下，我想问别的") and the bench times
how soon the bot stops (the `interrupted` event, after which a client drops the audio it holds, and
the last frame of the greeting that arrived), from the onset of the caller's speech and from the moment
it has lasted `HOTLINE_CALLS__BARGE_IN_MIN_SPEECH_S`; then it asks a question and times the end of its
speech to the first reply audio, and each reply sentence's text to its first audio frame (sentences
heard in an earlier call are left out: short ones come from the phrase cache). A second call per round
(declared Mandarin) says only "不是" half-way through the greeting, too short to last: it stops the bot by its words
(`HOTLINE_CALLS__BARGE_IN_OBJECTIONS`), and the bench times that from its onset too.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from gateway.bench_calls import _percentiles
from gateway.caller import SILENCE_LEVEL, load_audio, start_in_process, write_speech
from gateway.settings import Settings

RATE = 16000
FRAME = RATE // 50  # 20 ms
INTERRUPTION = "等一下，我想问别的。"
OBJECTION = "不是"  # 0.38 s of speech in the bundled voice, which Whisper base writes right (its "不对" often not)
QUESTIONS = ("请问宽带安装费是多少？", "国际漫游怎么开通？", "停机保号怎么办理？", "怎么查询话费余额？", "流量包有哪些？")
CUT_IN_AFTER_S = 1.5  # of greeting audio received
WAIT_S = 120.0


@dataclass
class _Heard:
    kind: str  # an event's type, or "audio"
    at: float
    turn: int
    event: dict[str, Any] = field(default_factory=dict)


class BenchLine:
    """One call: the microphone sends queued speech or silence at real-time pace; everything that
    comes back is kept with when it came and which turn it belongs to."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.heard: list[_Heard] = []
        self.turn = 0
        self.queued: deque[np.ndarray] = deque()
        self.spoken: list[tuple[float, float]] = []  # (onset sent, end of speech sent) of each utterance said
        self._speech: tuple[float, float] | None = None  # seconds of speech inside the queued audio
        self._sent_from = 0.0

    async def run(self) -> None:
        receiver = asyncio.create_task(self._receive())
        try:
            started, index = time.monotonic(), 0
            while not receiver.done():
                await self.ws.send(self._next_frame(time.monotonic()).tobytes())
                index += 1
                await asyncio.sleep(max(0.0, started + index * 0.02 - time.monotonic()))
        except websockets.ConnectionClosed:
            pass
        finally:
            receiver.cancel()

    def say(self, pcm: np.ndarray) -> None:
        loud = np.flatnonzero(np.abs(pcm) > SILENCE_LEVEL)
        self._speech = (loud[0] / RATE, (loud[-1] + 1) / RATE) if loud.size else (0.0, len(pcm) / RATE)
        self.queued.extend(pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME))

    def _next_frame(self, now: float) -> np.ndarray:
        if not self.queued:
            return np.zeros(FRAME, np.int16)
        if self._speech is not None:  # the first frame of a new utterance goes out now
            onset, end = self._speech
            self.spoken.append((now + onset, now + end))
            self._speech = None
        return self.queued.popleft()

    async def _receive(self) -> None:
        try:
            async for message in self.ws:
                now = time.monotonic()
                if isinstance(message, bytes):
                    self.heard.append(_Heard("audio", now, self.turn))
                    continue
                event = json.loads(message)
                if event["type"] == "reply":
                    self.turn = event["turn"]
                self.heard.append(_Heard(event["type"], now, event.get("turn", self.turn), event))
        except websockets.ConnectionClosed:
            pass

    async def until(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("the hotline did not answer in time")
            await asyncio.sleep(0.02)

    def audio_s(self, turn: int) -> float:
        return sum(0.02 for h in self.heard if h.kind == "audio" and h.turn == turn)  # the hotline sends 20 ms frames

    def greeting_stopped(self) -> bool | None:
        """True once the greeting was interrupted, False once it was played to the end, None meanwhile."""
        if self.first("interrupted", 1) is not None:
            return True
        end = self.first("reply_end", 1)
        return None if end is None or end.event["interrupted"] else False

    def answered_after(self, turn: int) -> bool:
        return any(h.kind == "reply_end" and h.turn > turn for h in self.heard)

    def first(self, kind: str, turn: int) -> _Heard | None:
        return next((h for h in self.heard if h.kind == kind and h.turn == turn), None)


@dataclass
class VoiceFigures:
    stop_from_onset: list[float] = field(default_factory=list)  # -> `interrupted`
    stop_from_threshold: list[float] = field(default_factory=list)
    last_frame_from_onset: list[float] = field(default_factory=list)  # -> the last greeting frame that came
    not_interrupted: int = 0
    objection_stop_from_onset: list[float] = field(default_factory=list)
    objection_not_interrupted: int = 0
    speech_end_to_audio: list[float] = field(default_factory=list)
    text_to_audio: list[float] = field(default_factory=list)
    sentences_seen: set[str] = field(default_factory=set)


@asynccontextmanager
async def _bench_call(url: str, **start: str) -> AsyncIterator[BenchLine]:
    """A call whose line is read while the body runs, stopped and drained when it ends."""
    async with websockets.connect(url, max_size=1 << 22) as ws:
        await ws.send(json.dumps({"type": "start", "codec": "pcm16", "sample_rate": RATE, **start}))
        line = BenchLine(ws)
        running = asyncio.create_task(line.run())
        try:
            yield line
        finally:
            await ws.send(json.dumps({"type": "stop"}))
            await asyncio.wait_for(running, WAIT_S)


async def _one_call(url: str, interruption: np.ndarray, question: np.ndarray, min_speech_s: float,
                    figures: VoiceFigures) -> None:
    async with _bench_call(url) as line:
        await line.until(lambda: line.audio_s(1) >= CUT_IN_AFTER_S)
        line.say(interruption)
        await line.until(lambda: line.greeting_stopped() is not None)
        _time_the_stop(line, min_speech_s, figures)
        await line.until(lambda: line.answered_after(1))
        await asyncio.sleep(1.5)  # the interruption may have been heard as two utterances
        await line.until(lambda: not line.heard or line.first("reply_end", line.turn) is not None)
        asked_after = line.turn
        line.say(question)
        await line.until(lambda: line.answered_after(asked_after))
        _time_the_answer(line, asked_after, figures)


async def _objection_call(url: str, objection: np.ndarray, figures: VoiceFigures) -> None:
    # a Mandarin line: with `auto`, the language of a clip this short is a guess
    async with _bench_call(url, dialect="mandarin") as line:
        await line.until(lambda: line.audio_s(1) >= CUT_IN_AFTER_S)
        line.say(objection)
        await line.until(lambda: line.greeting_stopped() is not None)
        if (stopped := line.first("interrupted", 1)) is None:
            figures.objection_not_interrupted += 1
            finals = [h.event.get("text") for h in line.heard if h.kind == "final"]
            print(f"hotline bench voice: {OBJECTION!r} did not stop the greeting; heard {finals}", file=sys.stderr,
                  flush=True)
        else:
            figures.objection_stop_from_onset.append(stopped.at - line.spoken[0][0])


def _time_the_stop(line: BenchLine, min_speech_s: float, figures: VoiceFigures) -> None:
    onset = line.spoken[0][0]
    stopped = line.first("interrupted", 1)
    if stopped is None:
        figures.not_interrupted += 1
        heard = [(round(h.at - onset, 3), h.kind, h.event.get("text")) for h in line.heard
                 if h.kind in ("partial", "final", "reply_end")]
        print(f"hotline bench voice: the greeting was not interrupted; heard {heard}", file=sys.stderr, flush=True)
        return
    figures.stop_from_onset.append(stopped.at - onset)
    figures.stop_from_threshold.append(stopped.at - onset - min_speech_s)
    last_frame = max(h.at for h in line.heard if h.kind == "audio" and h.turn == 1)
    figures.last_frame_from_onset.append(last_frame - onset)


def _time_the_answer(line: BenchLine, asked_after: int, figures: VoiceFigures) -> None:
    speech_end = line.spoken[-1][1]
    answer = next(h.turn for h in line.heard if h.kind == "reply" and h.turn > asked_after)
    if (audio := line.first("audio", answer)) is not None:
        figures.speech_end_to_audio.append(audio.at - speech_end)
    for index, heard in enumerate(line.heard):
        if heard.kind != "reply" or heard.turn != answer or heard.event["text"] in figures.sentences_seen:
            continue
        figures.sentences_seen.add(heard.event["text"])
        frame = next((h for h in line.heard[index + 1 :] if h.kind == "audio"), None)
        if frame is not None:
            figures.text_to_audio.append(frame.at - heard.at)


def _ms(values: list[float]) -> dict[str, float | None]:
    return _percentiles([v * 1000 for v in values])


def run_bench(rounds: int, url: str | None, settings: Settings) -> dict[str, Any]:
    from tts.loader import load_synthesizer

    synth = load_synthesizer(settings.tts.backend, threads=settings.tts.threads, coqui=settings.tts.coqui_voice())
    with tempfile.TemporaryDirectory(prefix="hotline-bench-voice-") as folder:
        speech = {}
        for index, text in enumerate((INTERRUPTION, OBJECTION, *QUESTIONS)):
            path = Path(folder) / f"{index}.wav"
            write_speech(synth, text, path, RATE)
            speech[text] = load_audio(path, RATE)
    server = None
    if url is None:
        url, server = start_in_process(settings)
    figures = VoiceFigures()
    min_speech_s = settings.calls.barge_in_min_speech_s
    try:
        for index in range(rounds):
            asyncio.run(_one_call(url, speech[INTERRUPTION], speech[QUESTIONS[index % len(QUESTIONS)]],
                                  min_speech_s, figures))
            asyncio.run(_objection_call(url, speech[OBJECTION], figures))
    finally:
        if server is not None:
            server.should_exit = True
    return {"rounds": rounds, "barge_in_min_speech_s": min_speech_s,
            "barge_in_check_words": settings.calls.barge_in_check_words,
            "interrupted_from_onset_ms": _ms(figures.stop_from_onset),
            "interrupted_from_threshold_ms": _ms(figures.stop_from_threshold),
            "last_greeting_frame_from_onset_ms": _ms(figures.last_frame_from_onset),
            "not_interrupted": figures.not_interrupted,
            "objection_interrupted_from_onset_ms": _ms(figures.objection_stop_from_onset),
            "objection_not_interrupted": figures.objection_not_interrupted,
            "speech_end_to_reply_audio_ms": _ms(figures.speech_end_to_audio),
            "reply_text_to_audio_ms": _ms(figures.text_to_audio), "sentences_timed": len(figures.text_to_audio)}


def main(rounds: int, url: str | None, settings: Settings) -> int:
    summary = run_bench(rounds, url, settings)
    print(f"hotline bench voice: {rounds} rounds, {summary['not_interrupted']} not interrupted, "
          f"{summary['objection_not_interrupted']} objections not heard", file=sys.stderr)
    print(json.dumps(summary), flush=True)
    return 0 if summary["not_interrupted"] == summary["objection_not_interrupted"] == 0 else 1
