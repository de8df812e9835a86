"""Barge-in through the real socket and models: caller audio injected half-way through the greeting.

A cough, a short "嗯" or "对", and the bot's own voice coming back (its reply frames sent back into the
line, attenuated, as a speakerphone does) must not cut the bot off nor be answered; a real interruption
stops it within one frame of the words that decide it, and only what was played stays in the history.
Each call ends with `stop`: the hotline then answers whatever it had taken as a turn (text only) before
`end`, so a turn 2 reply on the line means the injected audio was answered.
"""

from __future__ import annotations

import asyncio
import json
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets
from conftest import ended_call_record

from gateway.settings import OBJECTIONS

pytestmark = pytest.mark.slow

FRAME = 320  # 20 ms at 16 kHz
SILENCE = np.zeros(FRAME, np.int16)
START = json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000})
# A call that says it speaks Mandarin: with `auto` the language of a clip under half a second is a guess,
# and "哎不对" once came back as English ("Aibudueng").
MANDARIN_START = json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000, "dialect": "mandarin"})
HALF_WAY_S = 1.5  # the greeting (about 5 s) is this far along when the caller's audio comes in
ECHO_GAIN = 0.25  # the bot's voice coming back through a speakerphone, 12 dB down
INTERRUPTION = "等一下，我想问别的"


@pytest.fixture
def words_not_checked(live_hotline) -> Iterator[None]:
    """New calls stop the bot on lasting speech alone, as on a line with echo cancellation."""
    calls = live_hotline.settings.calls
    calls.barge_in_check_words = False
    yield
    calls.barge_in_check_words = True


@dataclass
class Line:
    """Everything that came back, in order: ("event", dict) and ("audio", bytes)."""

    timeline: list[tuple[str, Any]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # when each item of the timeline came (monotonic clock)

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [item for tag, item in self.timeline if tag == "event" and item["type"] == kind]

    def greeting_frames(self) -> list[bytes]:
        return [item for tag, item in self.timeline if tag == "audio"]

    def greeting_heard_s(self) -> float:
        return sum(len(frame) for frame in self.greeting_frames()) / 32000

    def greeting_over(self) -> bool:
        return any(e["turn"] == 1 for e in self.events("reply_end"))


Microphone = Callable[[Line, int], np.ndarray | None]  # (what came back, frame index) -> next frame, None: nothing more


def speech_from(pcm: np.ndarray) -> Microphone:
    """The caller says `pcm` once the greeting is half-way, then is quiet."""
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME)]
    started: list[int] = []

    def next_frame(line: Line, index: int) -> np.ndarray | None:
        if not started and line.greeting_heard_s() >= HALF_WAY_S:
            started.append(index)
        if not started:
            return SILENCE
        at = index - started[0]
        return frames[at] if at < len(frames) else None

    return next_frame


def echo_of_the_bot() -> Microphone:
    """From half-way on, the microphone hears the greeting the caller's speaker plays, attenuated."""
    position: list[int] = []

    def next_frame(line: Line, index: int) -> np.ndarray | None:
        frames = line.greeting_frames()
        if not position:
            if line.greeting_heard_s() < HALF_WAY_S:
                return SILENCE
            position.append(round(HALF_WAY_S * 50) - 15)  # what is playing now: the line runs 0.3 s ahead
        if position[0] >= len(frames):
            return None if line.greeting_over() else SILENCE
        frame = np.frombuffer(frames[position[0]], np.int16)
        position[0] += 1
        return (frame * ECHO_GAIN).astype(np.int16)

    return next_frame


def after_the_greeting(pcm: np.ndarray) -> Microphone:
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME)]
    started: list[int] = []

    def next_frame(line: Line, index: int) -> np.ndarray | None:
        if not started and line.greeting_over():
            started.append(index + 25)  # half a second after the greeting's audio was all sent
        if not started or index < started[0]:
            return SILENCE
        at = index - started[0]
        return frames[at] if at < len(frames) else None

    return next_frame


async def _call(url: str, microphone: Microphone, listen_after_s: float = 3.0, start: str = START) -> Line:
    line = Line()
    async with websockets.connect(url) as ws:
        await ws.send(start)

        async def receive() -> None:
            try:
                async for message in ws:
                    line.arrived.append(time.monotonic())
                    if isinstance(message, bytes):
                        line.timeline.append(("audio", message))
                    else:
                        line.timeline.append(("event", json.loads(message)))
            except websockets.ConnectionClosed:
                pass

        receiver = asyncio.create_task(receive())
        started, index, quiet_since = time.monotonic(), 0, None
        while time.monotonic() - started < 120:
            frame = microphone(line, index)
            if frame is None:
                quiet_since = quiet_since or index
                frame = SILENCE
            if quiet_since is not None and line.greeting_over() and index - quiet_since >= listen_after_s * 50:
                break
            await ws.send(frame.tobytes())
            index += 1
            ahead = started + index * 0.02 - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        await ws.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(receiver, 120)
    return line


def _wav_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as source:
        return np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)


def _cough() -> np.ndarray:
    """A fifth of a second of loud, decaying noise."""
    rng = np.random.default_rng(7)
    samples = FRAME * 10
    burst = rng.normal(0, 1, samples) * np.exp(-np.linspace(0, 5, samples)) * 12000
    quiet = np.zeros(4000, np.int16)
    return np.concatenate([quiet, burst.clip(-32767, 32767).astype(np.int16), quiet])


def _assert_not_cut_off_nor_answered(line: Line, base: str) -> None:
    said = [item for tag, item in line.timeline if tag == "event" and item["type"] in ("partial", "final", "reply",
                                                                                      "interrupted")]
    assert not line.events("interrupted"), json.dumps(said, ensure_ascii=False)
    greeting = line.events("reply")[0]["text"]
    assert line.events("reply_end")[0] == {"type": "reply_end", "turn": 1, "text": greeting, "interrupted": False}
    assert not [e for e in line.events("reply") if e["turn"] > 1], line.events("final")
    assert line.events("end")
    record = ended_call_record(base, line.events("ready")[0]["call_id"])
    heard = [t["text"] for t in record["turns"] if t["speaker"] == "caller"]
    assert len(heard) == len(line.events("final"))  # what was heard over the bot is kept in the record
    assert [t["text"] for t in record["turns"] if t["speaker"] == "bot"] == [greeting]


def test_a_cough_does_not_cut_the_bot_off(live_hotline):
    line = asyncio.run(_call(live_hotline.url, speech_from(_cough())))
    _assert_not_cut_off_nor_answered(line, live_hotline.base)


@pytest.mark.parametrize("word", ["嗯", "对"])
def test_a_short_backchannel_does_not_cut_the_bot_off_nor_get_an_answer(live_hotline, say, word):
    line = asyncio.run(_call(live_hotline.url, speech_from(_wav_pcm(say(word)))))
    _assert_not_cut_off_nor_answered(line, live_hotline.base)


def test_the_bots_own_voice_coming_back_does_not_cut_it_off(live_hotline):
    line = asyncio.run(_call(live_hotline.url, echo_of_the_bot()))
    _assert_not_cut_off_nor_answered(line, live_hotline.base)


def test_the_bots_echo_does_not_cut_it_off_when_words_are_not_waited_for(live_hotline, words_not_checked):
    line = asyncio.run(_call(live_hotline.url, echo_of_the_bot()))
    _assert_not_cut_off_nor_answered(line, live_hotline.base)


def test_without_waiting_for_words_an_interruption_stops_the_bot_on_speech_alone(live_hotline, say,
                                                                                  words_not_checked):
    line = asyncio.run(_call(live_hotline.url, speech_from(_wav_pcm(say(INTERRUPTION)))))
    interrupted = line.events("interrupted")
    assert interrupted == [{"type": "interrupted", "turn": 1}], line.timeline[-20:]
    assert line.events("reply_end")[0]["interrupted"] is True
    assert [e for e in line.events("reply") if e["turn"] == 2]


def test_a_real_interruption_stops_the_bot_within_a_frame_and_keeps_only_what_was_played(live_hotline, say,
                                                                                          greeting_s):
    line = asyncio.run(_call(live_hotline.url, speech_from(_wav_pcm(say(INTERRUPTION)))))
    interrupted = line.events("interrupted")
    assert interrupted == [{"type": "interrupted", "turn": 1}], line.timeline[-20:]
    at = line.timeline.index(("event", interrupted[0]))
    deciding = max(i for i, (tag, item) in enumerate(line.timeline[:at])
                   if tag == "event" and item["type"] in ("partial", "final"))
    frames_after_the_words = [tag for tag, _ in line.timeline[deciding:at] if tag == "audio"]
    assert len(frames_after_the_words) <= 1
    answer = next((i for i, (tag, item) in enumerate(line.timeline) if tag == "event" and item["type"] == "reply"
                   and item["turn"] == 2), len(line.timeline))
    assert not [tag for tag, _ in line.timeline[at:answer] if tag == "audio"]
    assert [e for e in line.events("reply") if e["turn"] == 2]
    _assert_only_what_was_played_is_kept(line, live_hotline.base, greeting_s)


@pytest.fixture(scope="module")
def greeting_s(live_hotline) -> float:
    """How long the whole greeting's audio lasts (a call in which the caller says nothing)."""
    line = asyncio.run(_call(live_hotline.url, lambda line, index: None if line.greeting_over() else SILENCE,
                             listen_after_s=0.5))
    return line.greeting_heard_s()


def _assert_only_what_was_played_is_kept(line: Line, base: str, greeting_s: float) -> None:
    """The greeting's only sentence was cut: the history and the call record keep the part of it that was
    played (from its first frame to `interrupted`), marked interrupted."""
    greeting = line.events("reply")[0]["text"]
    end = line.events("reply_end")[0]
    assert end["interrupted"] is True and end["turn"] == 1
    heard = end["text"]
    assert heard and greeting.startswith(heard) and len(heard) < len(greeting), (heard, greeting)
    first_frame = next(i for i, (tag, _) in enumerate(line.timeline) if tag == "audio")
    at = line.timeline.index(("event", line.events("interrupted")[0]))
    played_s = line.arrived[at] - line.arrived[first_frame]
    spoken = len([ch for ch in greeting if ch.isalnum()])
    # a voice's pace is not even, and a clause's pause counts with its clause: a margin of a few characters
    expected = spoken * played_s / greeting_s
    assert abs(len([ch for ch in heard if ch.isalnum()]) - expected) <= 5, (heard, expected)
    record = ended_call_record(base, line.events("ready")[0]["call_id"])
    bot = [(t["text"], t["interrupted"]) for t in record["turns"] if t["speaker"] == "bot"]
    assert bot[0] == (heard, True)


def test_a_backchannel_said_when_the_bot_is_silent_is_answered(live_hotline, say):
    line = asyncio.run(_call(live_hotline.url, after_the_greeting(_wav_pcm(say("好的")))))
    assert not line.events("interrupted")
    assert line.events("final"), line.timeline[-10:]
    assert [e for e in line.events("reply") if e["turn"] == 2]


# "不是": 0.38 s of speech in the bundled voice, under the 0.5 s a barge-in otherwise needs. Its "不对" and
# "哎不对" are as short, but Whisper base writes them as 无对, 姆队 (heard by sound) or as 舞台, 姿势,
# "i不断i不断" (not): too uncertain for a test.
# Even "不是" comes back misheard now and then ("不许", "不训"), and the same audio the same way each time: a
# caller not understood says it again, a little later and louder or softer, so the test calls up to four
# times with the objection so varied and judges the first call on which it was heard at all.
OBJECTION_TRIES = ((0, 1.0), (2000, 0.8), (1000, 1.0), (3200, 0.9))  # samples of silence before it, gain


def test_a_short_objection_half_way_through_a_reply_stops_it_and_is_answered(live_hotline, say, greeting_s):
    objection = _wav_pcm(say("不是")).astype(np.float32)
    for lead, gain in OBJECTION_TRIES:
        said_again = np.concatenate([np.zeros(lead, np.int16), (objection * gain).clip(-32767, 32767).astype(np.int16)])
        line = asyncio.run(_call(live_hotline.url, speech_from(said_again), start=MANDARIN_START))
        heard = [e["text"] for e in line.events("final")]
        if all(any(word in text for word in OBJECTIONS) for text in heard):
            break
    said = [item for tag, item in line.timeline if tag == "event" and item["type"] in ("final", "interrupted")]
    interrupted = line.events("interrupted")
    assert interrupted == [{"type": "interrupted", "turn": 1}], json.dumps(said, ensure_ascii=False)
    at = line.timeline.index(("event", interrupted[0]))
    # it stops as soon as its words are known: `interrupted` goes out before its final, no audio after it
    assert line.timeline[at + 1][0] == "event" and line.timeline[at + 1][1]["type"] == "final", line.timeline[at:at + 3]
    answer = next(i for i, (tag, item) in enumerate(line.timeline) if tag == "event" and item["type"] == "reply"
                  and item["turn"] == 2)
    assert not [tag for tag, _ in line.timeline[at:answer] if tag == "audio"]
    # the objection is a turn, answered as the dialogue answers a bare objection
    assert line.timeline[answer][1]["text"] in ("抱歉，请问哪里不对？您直接说正确的就好。", "好的，您请说。")
    _assert_only_what_was_played_is_kept(line, live_hotline.base, greeting_s)


def test_without_objection_words_a_short_objection_does_not_cut_in(live_hotline, say):
    calls = live_hotline.settings.calls
    calls.barge_in_objections = []
    try:
        line = asyncio.run(_call(live_hotline.url, speech_from(_wav_pcm(say("不是"))), start=MANDARIN_START))
    finally:
        calls.barge_in_objections = list(OBJECTIONS)
    _assert_not_cut_off_nor_answered(line, live_hotline.base)
