"""Limits of a call, through the real socket: a dead line, an endless call, audio faster than real
time, a calling number that is not one; and log lines that name their call and mask numbers."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets
from conftest import TTS_VOICE_CER, ended_call_record, events_until_closed

from asr.cer import cer
from gateway.logs import LOG_FORMAT, MaskingFormatter, current_call

QUESTION = "请问宽带安装费是多少？"
SILENCE = np.zeros(320, np.int16).tobytes()  # 20 ms at 16 kHz
START = json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000})


@pytest.fixture
def limits(live_hotline) -> Iterator[Callable[..., None]]:
    """Sets call limits of the live hotline for one test (new calls read them), then puts them back."""
    calls = live_hotline.settings.calls
    saved = calls.model_copy()

    def change(**values: Any) -> None:
        for name, value in values.items():
            setattr(calls, name, value)

    yield change
    for name in type(calls).model_fields:
        setattr(calls, name, getattr(saved, name))


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the hotline logs meanwhile, formatted as `hotline serve` formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter(LOG_FORMAT))
    logger = logging.getLogger("hotline")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _wav_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as source:
        return np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)


@pytest.mark.slow
def test_a_line_that_sends_no_audio_is_ended_as_idle(live_hotline, limits, log_lines):
    limits(idle_timeout_s=2.0)

    async def scenario() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async with websockets.connect(live_hotline.url) as ws:
            await ws.send(START)
            await events_until_closed(ws, events)  # sends nothing: the hotline must end the call by itself
        return events

    events = asyncio.run(scenario())
    assert events[0]["type"] == "ready" and events[-1]["type"] == "end", events
    assert events[-1]["reason"] == "idle"
    call_id = events[0]["call_id"]
    assert ended_call_record(live_hotline.base, call_id)["outcome"] == "idle"
    assert f"[call {call_id}]" in log_lines.getvalue()


@pytest.mark.slow
def test_a_call_past_its_maximum_duration_is_ended(live_hotline, limits):
    limits(max_duration_s=3.0)

    async def scenario() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async with websockets.connect(live_hotline.url) as ws:
            await ws.send(START)
            listener = asyncio.create_task(events_until_closed(ws, events))
            with pytest.raises(websockets.ConnectionClosed):
                while True:  # an open line that never hangs up
                    await ws.send(SILENCE)
                    await asyncio.sleep(0.02)
            await listener
        return events

    events = asyncio.run(scenario())
    assert events[-1] == {"type": "end", "call_id": events[0]["call_id"], "reason": "max_duration"}
    assert ended_call_record(live_hotline.base, events[0]["call_id"])["outcome"] == "max_duration"


@pytest.mark.slow
def test_audio_far_ahead_of_real_time_is_paced_and_still_heard(live_hotline, limits, say):
    limits(max_audio_lead_s=0.5)
    speech = _wav_pcm(say(QUESTION))

    async def scenario() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async with websockets.connect(live_hotline.url) as ws:
            await ws.send(START)
            listener = asyncio.create_task(events_until_closed(ws, events))
            for offset in range(0, len(speech), 320):  # the whole utterance at once
                await ws.send(speech[offset : offset + 320].tobytes())
            for _ in range(3000):  # then a quiet line at real-time pace, until the answer
                if any(e["type"] == "reply" and e["turn"] > 1 for e in events):
                    break
                await ws.send(SILENCE)
                await asyncio.sleep(0.02)
            await ws.send(json.dumps({"type": "stop"}))
            await listener
        return events

    events = asyncio.run(scenario())
    warnings = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in warnings] == ["audio_too_fast"], warnings
    assert "real time" in warnings[0]["message"]
    finals = [e for e in events if e["type"] == "final"]
    assert finals and cer(QUESTION, finals[0]["text"]) < TTS_VOICE_CER, finals
    assert events[-1]["type"] == "end"


@pytest.mark.slow
@pytest.mark.parametrize(
    "caller_id",
    ["1" * 40, "138abc45678", "13812345678; DROP TABLE call_records", "12", "+", "１３８１２３４５６７８"],
)
def test_a_caller_id_that_is_not_a_phone_number_is_refused_at_start(live_hotline, caller_id):
    async def scenario() -> tuple[dict[str, Any], int | None]:
        async with websockets.connect(live_hotline.url) as ws:
            await ws.send(json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000,
                                      "caller_id": caller_id}))
            first = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return first, ws.close_code

    first, close_code = asyncio.run(scenario())
    assert first["type"] == "error" and first["code"] == "bad_caller_id", first
    assert "phone number" in first["message"] or "characters" in first["message"]
    assert close_code == 4400


@pytest.mark.slow
def test_a_caller_id_with_separators_is_normalised_and_stored_masked(live_hotline):
    async def scenario() -> str:
        async with websockets.connect(live_hotline.url) as ws:
            await ws.send(json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000,
                                      "caller_id": "+86 138-0013-8000"}))
            ready = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "stop"}))
            await events_until_closed(ws, [])
            return ready["call_id"]

    record = ended_call_record(live_hotline.base, asyncio.run(scenario()))
    assert record["caller_id"] == "+86*******8000"


def test_log_lines_name_their_call_and_mask_phone_and_id_numbers():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter(LOG_FORMAT))
    logger = logging.getLogger("hotline.test-logs")
    logger.addHandler(handler)
    logger.propagate = False
    token = current_call.set("5a1c0e2e-1234-4567-8901-123456789012")
    try:
        logger.warning("caller said %s", "我的电话是13812345678，身份证110101199003071234")
        try:
            raise ValueError("slot 'phone' 13987654321 is not valid")
        except ValueError:
            logger.exception("turn failed")
    finally:
        current_call.reset(token)
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "13812345678" not in text and "110101199003071234" not in text and "13987654321" not in text
    assert "138****5678" in text and "139****4321" in text
    assert text.count("[call 5a1c0e2e-1234-4567-8901-123456789012]") == 2  # the call id is not masked
    assert "ValueError" in text  # the traceback is kept, masked
