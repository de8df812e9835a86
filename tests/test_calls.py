"""End to end: the real app on a real socket, real models, speech made by the project's own TTS."""

from __future__ import annotations

import asyncio
import json
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from conftest import TTS_VOICE_CER, events_until_closed

from asr.cer import cer
from core.audio import Codec, decode, encode
from gateway.caller import Caller, CallOptions

pytestmark = pytest.mark.slow

QUESTION = "请问宽带安装费是多少？"
FAULT_TURNS = (
    "我家宽带从昨天晚上开始就上不了网了。",
    "地址是东城区人民路十八号。",
    "我的电话是一三八零零一二三四五六。",
)
HUMAN = "我要转人工客服。"
ADMIN_TOKEN = "admin-token-of-the-call-tests-0123456789"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OPENER = "你好，我想问一下。"


@pytest.fixture(scope="module")
def served(live_hotline) -> tuple[str, Any]:
    """(ws call URL, uvicorn server) of the hotline, served the way `hotline call` serves it."""
    return live_hotline.url, live_hotline.server


@pytest.fixture(scope="module")
def hotline(live_hotline) -> tuple[str, str]:
    """(ws call URL, http base URL) of the hotline."""
    return live_hotline.url, live_hotline.base


@pytest.fixture(scope="module")
def voice(say) -> dict[str, Path]:
    """Caller utterances synthesized once with the project's own TTS, as 16 kHz WAV files."""
    return {text: say(text) for text in (QUESTION, *FAULT_TURNS, HUMAN, OPENER)}


def _call(url: str, files: list[Path], codec: str, rate: int, tmp_path: Path) -> Caller:
    caller = Caller(url, CallOptions(files=files, codec=codec, rate=rate, fast=True, out_dir=tmp_path))
    asyncio.run(caller.run())
    return caller


def test_consultation_is_answered_from_the_kb_with_citation(hotline, voice, tmp_path):
    url, base = hotline
    caller = _call(url, [voice[QUESTION]], "pcm16", 16000, tmp_path)
    trace = caller.trace
    finals = trace.of_type("final")
    assert finals, trace.events
    assert cer(QUESTION, finals[0]["text"]) < TTS_VOICE_CER, finals[0]["text"]
    assert finals[0]["normalized"] and finals[0]["dialect"]  # the dialogue's form rides beside the verbatim text
    replies = [e for e in trace.of_type("reply") if e["turn"] > 1]
    assert replies and any(e["citations"] for e in replies), trace.events
    cited = {doc for e in replies for doc in e["citations"]}
    listed = httpx.get(f"{base}/v1/kb/documents", params={"limit": 500}, headers=AS_ADMIN).json()
    documents = {d["id"] for d in listed["items"]}
    assert cited <= documents
    answer_audio = trace.audio[replies[0]["turn"]]
    assert len(answer_audio) % 2 == 0 and len(answer_audio) > 16000  # pcm16: over half a second
    assert trace.of_type("end")


def test_fault_report_opens_a_ticket_and_a_human_can_be_asked_for(hotline, voice, tmp_path):
    url, base = hotline
    files = [voice[text] for text in FAULT_TURNS] + [voice[HUMAN]]
    opened_before = _metrics(base).get(("hotline_tickets_opened_total", (("category", "broadband"),)), 0.0)
    caller = _call(url, files, "mulaw", 8000, tmp_path)
    trace = caller.trace
    tickets = trace.of_type("ticket")
    assert tickets, trace.events
    opened = _metrics(base).get(("hotline_tickets_opened_total", (("category", "broadband"),)), 0.0)
    # a ticket the same number already had open (an earlier test's caller) is told, not opened again
    assert opened == opened_before + len({t["id"] for t in tickets if "updated" not in t and not t.get("existing")})
    number = tickets[0]["number"]
    assert any(number in e["text"] for e in trace.of_type("reply")), "the ticket number is read back"
    stored = httpx.get(f"{base}/v1/tickets/{tickets[0]['id']}", headers=AS_ADMIN).json()
    assert stored["number"] == number and stored["category"] == "broadband"
    assert stored["phone"] == "13800123456"
    assert "人民路" in (stored["address"] or "")
    assert trace.of_type("escalation")
    escalations = httpx.get(f"{base}/v1/escalations", headers=AS_ADMIN).json()
    assert any(e["id"] == trace.of_type("escalation")[0]["id"] for e in escalations)
    # reply audio comes back as 8 kHz mu-law: decodes to speech, not noise or silence
    audio = decode(bytes(trace.audio[tickets and trace.of_type("reply")[-1]["turn"]]), Codec.MULAW)
    assert audio.size > 8000 and np.abs(audio).max() > 1000
    call_id = trace.of_type("ready")[0]["call_id"]
    record = httpx.get(f"{base}/v1/calls/{call_id}", headers=AS_ADMIN).json()
    assert [t["speaker"] for t in record["turns"]].count("caller") >= 4
    assert "13800123456" not in json.dumps(record, ensure_ascii=False), "phone numbers are masked in transcripts"


def test_reply_audio_in_alaw(hotline, tmp_path):
    url, _ = hotline
    caller = _call(url, [], "alaw", 8000, tmp_path)
    greeting = caller.trace.audio[1]
    audio = decode(bytes(greeting), Codec.ALAW)
    assert audio.size > 8000 and np.abs(audio).max() > 1000
    assert caller.write_replies(tmp_path / "wav")


async def _exchange(url: str, first: str | bytes) -> tuple[list[dict], int | None]:
    events = []
    async with websockets.connect(url) as ws:
        await ws.send(first)
        await events_until_closed(ws, events)
        return events, ws.close_code


@pytest.mark.parametrize(
    ("first", "code", "close_code"),
    [
        ("hello", "bad_start", 4400),
        (json.dumps({"type": "dial"}), "bad_start", 4400),
        (b"\x00\x01", "bad_start", 4400),
        (json.dumps({"type": "start", "codec": "opus", "sample_rate": 16000}), "unsupported_codec", 4415),
        (json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 44100}), "unsupported_rate", 4415),
        (json.dumps({"type": "start", "codec": "pcm16"}), "bad_start", 4400),
        (json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 8000, "dialect": "klingon"}),
         "unsupported_dialect", 4415),
    ],
)
def test_bad_start_gets_a_clear_error_and_close_code(hotline, first, code, close_code):
    url, _ = hotline
    events, closed_with = asyncio.run(_exchange(url, first))
    assert events[0]["type"] == "error" and events[0]["code"] == code, events
    assert events[0]["message"]
    assert closed_with == close_code


def _wait_for_end(base: str, call_id: str) -> dict:
    for _ in range(600):
        record = httpx.get(f"{base}/v1/calls/{call_id}", headers=AS_ADMIN).json()
        if record.get("ended_at"):
            return record
        time.sleep(0.2)
    raise AssertionError(f"call {call_id} was never closed: {record}")


def test_odd_pcm_frame_and_unknown_message_keep_the_call(hotline):
    url, base = hotline

    async def scenario() -> tuple[list[dict], str]:
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000}))
            ready = json.loads(await ws.recv())
            await ws.send(b"\x01\x02\x03")
            await ws.send("not json")
            await ws.send(np.zeros(320, np.int16).tobytes())
            await ws.send(json.dumps({"type": "stop"}))
            events = []
            async for message in ws:
                if isinstance(message, str):
                    events.append(json.loads(message))
            return events, ready["call_id"]

    events, call_id = asyncio.run(scenario())
    errors = [e for e in events if e["type"] == "error"]
    assert {e["code"] for e in errors} == {"bad_audio", "bad_message"}
    assert any("odd number of bytes" in e["message"] for e in errors)
    assert events[-1]["type"] == "end"
    assert _wait_for_end(base, call_id)["outcome"] == "caller_stop"


def test_socket_dropped_mid_reply_keeps_the_call_record(hotline, voice):
    url, base = hotline
    pcm = _wav_pcm(voice[QUESTION])

    async def scenario() -> str:
        ws = await websockets.connect(url)
        await ws.send(json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000}))
        call_id = json.loads(await ws.recv())["call_id"]
        for offset in range(0, len(pcm), 320):
            await ws.send(encode(pcm[offset : offset + 320], Codec.PCM16))
        silence = np.zeros(320, np.int16).tobytes()
        while True:  # keep the line open until the answer starts, then hang up mid-reply
            await ws.send(silence)
            try:
                message = await asyncio.wait_for(ws.recv(), 0.02)
            except TimeoutError:
                continue
            event = json.loads(message) if isinstance(message, str) else {}
            if event.get("type") == "reply" and event["turn"] > 1:
                break
        ws.transport.abort()  # no closing handshake: the line just drops
        return call_id

    call_id = asyncio.run(scenario())
    record = _wait_for_end(base, call_id)
    assert record["outcome"] in ("dropped", "caller_hangup")
    assert any(t["speaker"] == "caller" and t["text"] for t in record["turns"])


class FirstTurnNeverAnswers:
    """The real dialogue manager, except that it is still thinking about the call's first utterance
    when the next one comes: only a caller's newer words can move the call on."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.heard: list[str] = []

    def greeting(self) -> str:
        return self.real.greeting()

    async def turn(self, state: Any, text: str, desk: Any) -> AsyncIterator[Any]:
        self.heard.append(text)
        if len(self.heard) == 1:
            await asyncio.Event().wait()
        async for sentence in self.real.turn(state, text, desk):
            yield sentence


def test_new_utterance_supersedes_a_question_not_yet_answered(served, voice):
    url, server = served
    services = server.config.app.state.services
    thinking = FirstTurnNeverAnswers(services.models["manager"])
    services.models["manager"] = thinking
    silence = np.zeros(320, np.int16).tobytes()

    async def say(ws: Any, pcm: np.ndarray) -> None:
        for offset in range(0, len(pcm), 320):
            await ws.send(encode(pcm[offset : offset + 320], Codec.PCM16))

    async def scenario() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000}))
            await say(ws, _wav_pcm(voice[OPENER]))
            for pcm in (_wav_pcm(voice[QUESTION]), None):
                while True:  # silence until the utterance before has its final transcript
                    await ws.send(silence)
                    try:
                        message = await asyncio.wait_for(ws.recv(), 0.02)
                    except TimeoutError:
                        continue
                    if isinstance(message, str):
                        events.append(json.loads(message))
                    if events and events[-1]["type"] == ("final" if pcm is not None else "reply_end") and (
                        pcm is not None or events[-1]["turn"] > 1
                    ):
                        break
                if pcm is not None:
                    await say(ws, pcm)
        return events

    try:
        events = asyncio.run(asyncio.wait_for(scenario(), 300))
    finally:
        services.models["manager"] = thinking.real
    assert len(thinking.heard) == 2
    first, both = thinking.heard
    assert both.startswith(first) and len(both) > len(first) + 4
    replies = [e for e in events if e["type"] == "reply" and e["turn"] > 1]
    assert replies and {e["turn"] for e in replies} == {2}  # one answer, in the superseded turn's place
    assert any(e["citations"] for e in replies)


def _wav_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as source:
        return np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)


def test_cli_say_then_call_prints_json_lines_and_writes_replies(hotline, tmp_path, capsys):
    from gateway.cli import main

    url, _ = hotline
    question = tmp_path / "question.wav"
    assert main(["say", "我要转人工客服。", str(question)]) == 0
    capsys.readouterr()
    code = main(["call", str(question), "--url", url, "--json", "--fast", "--out", str(tmp_path / "replies")])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    kinds = [line["type"] for line in lines]
    assert kinds[0] == "ready" and "escalation" in kinds and "end" in kinds
    assert lines[-1]["type"] == "timing" and lines[-1]["turns"][0]["final_s"] is not None
    assert sorted(p.name for p in (tmp_path / "replies").iterdir())[:2] == ["reply-01.wav", "reply-02.wav"]


def _metrics(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics (no token: scrapers have none), as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{base}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def test_metrics_follow_a_real_call_and_carry_no_personal_data(hotline, voice, tmp_path):
    url, base = hotline
    before = _metrics(base)
    phone = "13912345678"
    caller = Caller(url, CallOptions(files=[voice[QUESTION]], caller_id=phone, out_dir=tmp_path))
    asyncio.run(caller.run())
    assert caller.trace.of_type("final") and caller.trace.of_type("end"), caller.trace.events
    asyncio.run(_exchange(url, "hello"))  # a bad start: counted as an error by its code

    def grew(name: str, labels: dict[str, str]) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    for _ in range(50):  # the call's last bookkeeping runs just after the caller hears `end`
        after = _metrics(base)
        if after[("hotline_calls_active", ())] == 0 and grew("hotline_calls_ended_total", {"reason": "caller_stop"}):
            break
        time.sleep(0.1)
    assert after[("hotline_calls_active", ())] == 0
    assert grew("hotline_calls_ended_total", {"reason": "caller_stop"}) == 1
    for stage in ("final", "reply_text", "reply_audio"):
        assert grew("hotline_turn_latency_seconds_count", {"stage": stage}) >= 1, stage
        assert grew("hotline_turn_latency_seconds_sum", {"stage": stage}) > 0, stage
    for model in ("asr", "tts", "kb"):  # the LLM is asked only when the answer is not plain from the KB
        assert grew("hotline_model_wait_seconds_count", {"model": model}) >= 1, model
    for model in ("asr", "llm", "tts", "kb"):
        assert after[("hotline_model_queue_depth", (("model", model),))] >= 0
        assert after[("hotline_model_jobs_running", (("model", model),))] >= 0
        assert after[("hotline_model_ready", (("model", model),))] == 1
    assert grew("hotline_errors_total", {"code": "bad_start"}) == 1
    assert after[("hotline_escalations_waiting", ())] >= 0
    text = httpx.get(f"{base}/metrics").text
    for personal in (phone, "139****5678", QUESTION[:4], caller.trace.of_type("ready")[0]["call_id"]):
        assert personal not in text


async def test_a_final_that_comes_while_the_trailing_silence_is_still_sent_is_timed() -> None:
    """The hotline may end a turn before the caller's clip has sent its last silence: the final still
    belongs to that turn, and a final from a pause inside the speech does not."""
    rate = 16000
    speech = (np.sin(np.arange(rate // 2) * 0.3) * 8000).astype(np.int16)
    pause, tail = np.zeros(rate // 2, dtype=np.int16), np.zeros(rate, dtype=np.int16)
    clip = np.concatenate([speech, pause, speech, tail])  # 0.5 s speech, 0.5 s pause, 0.5 s speech, 1 s silence
    caller = Caller("ws://unused", CallOptions(files=[], quiet=True))

    class Line:
        def __init__(self) -> None:
            self.frames = 0

        async def send(self, _frame: bytes) -> None:
            self.frames += 1
            if self.frames in (40, 100):  # 0.8 s, inside the pause; 2.0 s, half-way through the tail
                caller._on_event({"type": "final", "text": "…"}, time.monotonic())

    await caller.speak(Line(), clip, wait_for_answer=False)
    timing = caller.trace.timings[0]
    assert timing.final is not None
    assert 0.4 < timing.final - timing.speech_end < 0.7
