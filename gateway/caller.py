"""A scripted caller: streams audio files to the hotline as successive turns and records what comes back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

from core.audio import Codec, decode, encode, from_float, resample
from gateway.settings import Settings

FRAME_MS = 20
REPLY_TIMEOUT_S = 300.0
SILENCE_LEVEL = 300  # int16 amplitude under which a frame counts as silence


@dataclass(frozen=True)
class CallOptions:
    files: list[Path]
    codec: str = "pcm16"
    rate: int = 16000
    dialect: str = "auto"
    caller_id: str | None = None
    out_dir: Path | None = None
    json_lines: bool = False
    fast: bool = False
    token: str | None = None  # the hotline's call token, when it requires one
    quiet: bool = False  # print nothing of what the call brings (benches: many callers at once)


@dataclass
class TurnTiming:
    speech_end: float
    final: float | None = None
    reply_text: float | None = None
    reply_audio: float | None = None
    cited_answer: float | None = None  # the first sentence that cites the knowledge base

    def as_dict(self) -> dict[str, float | None]:
        def since(t: float | None) -> float | None:
            return None if t is None else round(t - self.speech_end, 3)

        return {"final_s": since(self.final), "first_reply_text_s": since(self.reply_text),
                "first_reply_audio_s": since(self.reply_audio), "first_cited_answer_s": since(self.cited_answer)}


@dataclass
class CallTrace:
    """What the caller saw, in order, with the client-side times that latency figures come from."""

    events: list[dict[str, Any]] = field(default_factory=list)
    audio: dict[int, bytearray] = field(default_factory=dict)
    timings: list[TurnTiming] = field(default_factory=list)
    finals: int = 0
    reply_ends: list[dict[str, Any]] = field(default_factory=list)
    current_turn: int = 0
    speaking: bool = False

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


def load_audio(path: Path, rate: int) -> np.ndarray:
    """Any audio file -> mono int16 at `rate`."""
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    from faster_whisper import decode_audio

    return from_float(decode_audio(str(path), sampling_rate=rate))


def _speech_tail(pcm: np.ndarray, rate: int) -> float:
    """Seconds of silence at the end of the clip."""
    frame = rate * FRAME_MS // 1000
    loud = [i for i in range(0, len(pcm), frame) if np.abs(pcm[i : i + frame]).max(initial=0) > SILENCE_LEVEL]
    return (len(pcm) - (loud[-1] + frame)) / rate if loud else len(pcm) / rate


class Caller:
    def __init__(self, url: str, options: CallOptions) -> None:
        self.url = url
        self.options = options
        self.codec = Codec(options.codec)
        self.trace = CallTrace()
        self.arrived: list[float] = []  # when each event of the trace came (monotonic clock)
        self.audio_started: dict[int, float] = {}  # turn -> when its first audio frame came
        self._changed = asyncio.Event()

    async def run(self) -> CallTrace:
        async with self.line() as ws:
            if ws is not None:
                for path in self.options.files:
                    await self.speak(ws, load_audio(path, self.options.rate))
                await ws.send(json.dumps({"type": "stop"}))
                await self._wait(lambda: self.trace.of_type("end"), 60)
        return self.trace

    @contextlib.asynccontextmanager
    async def line(self) -> AsyncIterator[Any]:
        """The open call once `ready` and the greeting are over (None when the hotline refused it);
        `speak` and `listen_until` script it from there."""
        headers = {"Authorization": f"Bearer {self.options.token}"} if self.options.token else None
        async with websockets.connect(self.url, max_size=1 << 22, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "start", "codec": self.options.codec, "sample_rate": self.options.rate,
                                      "dialect": self.options.dialect, "caller_id": self.options.caller_id}))
            receiver = asyncio.create_task(self._receive(ws))
            try:
                await self._wait(lambda: self.trace.of_type("ready") or self.trace.of_type("end"), 30)
                if not self.trace.of_type("ready"):
                    yield None
                    return
                await self._let_greeting_finish(ws)
                yield ws
            finally:
                receiver.cancel()

    async def listen_until(self, ws: Any, condition: Any, within_s: float) -> bool:
        """Keeps the line open (silence, as a phone sends) until `condition()` holds or time is up."""
        return await self._send_silence_until(ws, condition, within_s)

    async def _receive(self, ws: Any) -> None:
        try:
            async for message in ws:
                now = time.monotonic()
                if isinstance(message, bytes):
                    self._on_audio(message, now)
                else:
                    self._on_event(json.loads(message), now)
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.trace.events.append({"type": "closed"})
            self._changed.set()

    def _on_event(self, event: dict[str, Any], now: float) -> None:
        self.trace.events.append(event)
        self.arrived.append(now)
        self._print(event)
        timing = self.trace.timings[-1] if self.trace.timings else None
        kind = event.get("type")
        if kind == "final":
            self.trace.finals += 1
            if timing and timing.final is None and now >= timing.speech_end:  # not a pause inside the turn
                timing.final = now
        elif kind == "reply":
            self.trace.current_turn = event["turn"]
            self.trace.speaking = True
            if timing and timing.final is not None and timing.reply_text is None:
                timing.reply_text = now
            if timing and timing.final is not None and event.get("citations") and timing.cited_answer is None:
                timing.cited_answer = now
        elif kind == "reply_end":
            self.trace.reply_ends.append(event)
            self.trace.speaking = False

    def _on_audio(self, frame: bytes, now: float) -> None:
        self.trace.audio.setdefault(self.trace.current_turn, bytearray()).extend(frame)
        self.audio_started.setdefault(self.trace.current_turn, now)
        timing = self.trace.timings[-1] if self.trace.timings else None
        if timing and timing.reply_text is not None and timing.reply_audio is None:
            timing.reply_audio = now

    async def _wait(self, condition: Any, within_s: float) -> bool:
        deadline = time.monotonic() + within_s
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.trace.of_type("closed"):
                return bool(condition())
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass
        return True

    async def _let_greeting_finish(self, ws: Any) -> None:
        """Listens to the greeting with the line open: a phone sends silence, and a line that sends
        nothing at all is ended as idle."""
        if await self._send_silence_until(ws, lambda: bool(self.trace.of_type("reply")), 5.0):
            await self._send_silence_until(ws, lambda: bool(self.trace.reply_ends), 60.0)

    async def _send_silence_until(self, ws: Any, condition: Any, within_s: float) -> bool:
        frame = self.options.rate * FRAME_MS // 1000
        silence = encode(np.zeros(frame, dtype=np.int16), self.codec)
        started, index = time.monotonic(), 0
        while not condition():
            if time.monotonic() - started > within_s or self.trace.of_type("closed"):
                return False
            await ws.send(silence)
            index += 1
            await self._pace(started, index, always=True)
        return True

    async def speak(self, ws: Any, pcm: np.ndarray, *, wait_for_answer: bool = True) -> None:
        """One caller turn, then listening until it is answered (an agent holding the call answers
        when they choose: `wait_for_answer=False`)."""
        rate = self.options.rate
        finals_before, ends_before = self.trace.finals, len(self.trace.reply_ends)
        frame = rate * FRAME_MS // 1000
        started = time.monotonic()
        # The turn is timed from the start: its final may come while the trailing silence is still being sent.
        timing = TurnTiming(speech_end=started + len(pcm) / rate - _speech_tail(pcm, rate))
        self.trace.timings.append(timing)
        for index, offset in enumerate(range(0, len(pcm), frame)):
            await ws.send(encode(pcm[offset : offset + frame], self.codec))
            await self._pace(started, index + 1)
        if self.options.fast:  # sent faster than spoken: the speech ended, for the hotline, once all was sent
            timing.speech_end = time.monotonic() - _speech_tail(pcm, rate)
        if not wait_for_answer:
            return

        def answered() -> bool:
            heard = self.trace.finals > finals_before
            return heard and len(self.trace.reply_ends) - ends_before >= self.trace.finals - finals_before

        await self._send_silence_until(ws, answered, REPLY_TIMEOUT_S)
        # a little more listening, in case the reply has several turns in flight
        await self._send_silence_until(ws, lambda: not self.trace.speaking, 30.0)

    async def _pace(self, started: float, frames_sent: int, always: bool = False) -> None:
        if self.options.fast and not always:
            return
        ahead = started + frames_sent * FRAME_MS / 1000 - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)

    def _print(self, event: dict[str, Any]) -> None:
        if self.options.quiet:
            return
        if self.options.json_lines:
            print(json.dumps(event, ensure_ascii=False), flush=True)
            return
        kind = event.get("type")
        details = {k: v for k, v in event.items() if k != "type"}
        text = details.pop("text", None)
        line = f"[{kind}] {text}" if text is not None else f"[{kind}]"
        if details:
            line += "  " + " ".join(f"{k}={v}" for k, v in details.items())
        print(line, flush=True)

    def write_replies(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for turn, audio in sorted(self.trace.audio.items()):
            path = folder / f"reply-{turn:02d}.wav"
            with wave.open(str(path), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(self.options.rate)
                out.writeframes(decode(bytes(audio), self.codec).astype("<i2").tobytes())
            written.append(path)
        return written


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_in_process(settings: Settings) -> tuple[str, Any]:
    """Serves the same app as `hotline serve` on a free local port; returns its call URL once ready."""
    import uvicorn

    from gateway.app import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="hotline-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    print(f"hotline: starting in-process on {base}, loading models...", file=sys.stderr, flush=True)
    while True:
        if not thread.is_alive():
            raise RuntimeError("the in-process hotline stopped while starting; see the log above")
        try:
            response = httpx.get(f"{base}/readyz", timeout=2.0)
            if response.status_code == 200:
                break
            if (error := response.json().get("error")) is not None:
                raise RuntimeError(f"the hotline could not load its models: {error}")
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return f"ws://127.0.0.1:{port}/v1/calls", server


def run_call(options: CallOptions, *, url: str | None, settings: Settings) -> int:
    if options.token is None and settings.call_token is not None:
        options = replace(options, token=settings.call_token.get_secret_value())
    server = None
    if url is None:
        url, server = start_in_process(settings)
    caller = Caller(url, options)
    try:
        trace = asyncio.run(caller.run())
    finally:
        if server is not None:
            server.should_exit = True
    if options.out_dir is not None:
        for path in caller.write_replies(options.out_dir):
            print(f"wrote {path}", file=sys.stderr)
    summary = {"type": "timing", "turns": [t.as_dict() for t in trace.timings]}
    if options.json_lines:
        print(json.dumps(summary), flush=True)
    else:
        for number, timing in enumerate(trace.timings, 1):
            figures = ", ".join(f"{k} {v if v is not None else '-'}" for k, v in timing.as_dict().items())
            print(f"turn {number} after end of speech: {figures}", flush=True)
    errors = trace.of_type("error")
    return 1 if errors or not trace.of_type("end") else 0


def write_speech(synth: Any, text: str, out: Path, rate: int) -> float:
    """`text` spoken by `synth` into a WAV file at `rate`, a caller's breath of silence around it; its seconds."""
    pcm = resample(synth.synthesize(text), synth.sample_rate, rate)
    pause = np.zeros(rate // 4, dtype=np.int16)  # a caller breathes before and after
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.concatenate([pause, pcm, pause]).astype("<i2").tobytes())
    return len(pcm) / rate
