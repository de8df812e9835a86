"""`hotline bench desk`: a caller asks for a person, an agent takes the call, types a reply and hands
the call back, N times; prints how long an escalation takes to reach the agent's console and how long
the agent's typed reply takes to reach the caller as audio.

The takeover itself (`takeover`) is also what the tests drive, on one gateway and across two.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets
from pydantic import SecretStr

from gateway.caller import Caller, CallOptions, CallTrace, load_audio, start_in_process, write_speech
from gateway.settings import Settings

HUMAN = "我要转人工客服。"
QUESTION = "请问宽带安装费是多少？"
AGENT_LINE = "您好，我是客服小李，宽带安装免费。"
# Agents type something new each time: short fixed phrases are synthesized once and kept, so the bench's
# replies differ from round to round to time the voice, not the cache.
BENCH_LINES = ("您的宽带工单已经加急处理，请保持电话畅通。", "本月账单已经为您核对，没有多收的费用。",
               "您的号码已经开通国际漫游，出国前请重启手机。", "光猫重启后如果仍然不亮，我们会派师傅上门。",
               "新套餐下个月一号生效，本月仍按原套餐计费。")
WAIT_S = 240.0


class AgentConsole:
    """The agent's side of /v1/agent: every event kept with when it came."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.arrived: list[float] = []

    async def receive(self) -> None:
        async for message in self.ws:
            self.events.append(json.loads(message))
            self.arrived.append(time.monotonic())

    def of_type(self, kind: str, call_id: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind and (call_id is None or e.get("call_id") == call_id)]

    def waiting(self, call_id: str) -> tuple[dict[str, Any], float] | None:
        """The call's queue item and when it first appeared."""
        for event, at in zip(self.events, self.arrived, strict=True):
            if event["type"] == "queue":
                for item in event["waiting"]:
                    if item["call_id"] == call_id:
                        return item, at
        return None

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message, ensure_ascii=False))


@dataclass
class Takeover:
    """What a takeover left: the caller's trace, the console, and its two delays."""

    caller: CallTrace
    console: AgentConsole
    call_id: str
    waiting: dict[str, Any]
    escalation_to_console_s: float
    reply_to_audio_s: float | None
    notes: list[str] = field(default_factory=list)


async def takeover(call_url: str, desk_base: str, agent_token: str, human: np.ndarray, question: np.ndarray,
                   agent_line: str = AGENT_LINE, quiet: bool = False) -> Takeover:
    """A caller on `call_url` asks for a person; an agent whose console is on the gateway `desk_base` takes
    the call, sees the caller's next words, answers by typing, and hands the call back."""
    agent_url = desk_base.replace("http://", "ws://").replace("https://", "wss://") + f"/v1/agent?token={agent_token}"
    caller = Caller(call_url, CallOptions(files=[], fast=True, quiet=quiet))
    trace = caller.trace
    async with websockets.connect(agent_url) as agent_ws, caller.line() as line:
        if line is None:
            raise RuntimeError(f"the hotline refused the call: {trace.events}")
        console = AgentConsole(agent_ws)
        receiving = asyncio.create_task(console.receive())
        try:
            await caller.speak(line, human)
            call_id = trace.of_type("ready")[0]["call_id"]
            escalated_at = _arrival(caller, "escalation")
            await _listen(caller, line, lambda: console.waiting(call_id) is not None, "the call in the queue")
            waiting, queued_at = console.waiting(call_id)  # type: ignore[misc]

            await console.send({"type": "accept", "escalation_id": waiting["escalation_id"]})
            await _listen(caller, line, lambda: trace.of_type("agent"), "the agent joining")
            await _listen(caller, line, lambda: not trace.speaking, "the joining announcement")
            await caller.speak(line, question, wait_for_answer=False)
            await _listen(caller, line, lambda: console.of_type("assist", call_id), "agent assist")

            turns_before = len(trace.reply_ends)
            said_at = time.monotonic()
            await console.send({"type": "say", "call_id": call_id, "text": agent_line})
            await _listen(caller, line, lambda: len(trace.reply_ends) > turns_before, "the agent's reply")
            await _listen(caller, line, lambda: console.of_type("spoken", call_id), "the spoken report")
            turn = _turn_of(trace, agent_line)
            heard_at = caller.audio_started.get(turn) if turn is not None else None

            await console.send({"type": "hand_back", "call_id": call_id})
            await _listen(caller, line, lambda: console.of_type("released", call_id), "the hand-back")
            await caller.listen_until(line, lambda: not trace.speaking, WAIT_S)
            await line.send(json.dumps({"type": "stop"}))
            await caller.listen_until(line, lambda: trace.of_type("end"), 60)
        finally:
            receiving.cancel()
    return Takeover(trace, console, call_id, waiting, queued_at - escalated_at,
                    None if heard_at is None else heard_at - said_at)


async def _listen(caller: Caller, line: Any, condition: Callable[[], Any], what: str) -> None:
    if not await caller.listen_until(line, condition, WAIT_S):
        raise RuntimeError(f"waited {WAIT_S:.0f} s for {what}; the caller saw {caller.trace.events[-8:]}")


def _arrival(caller: Caller, kind: str) -> float:
    for event, at in zip(caller.trace.events, caller.arrived, strict=False):
        if event.get("type") == kind:
            return at
    raise RuntimeError(f"no {kind} event; the caller saw {caller.trace.events[-8:]}")


def _turn_of(trace: CallTrace, text: str) -> int | None:
    return next((e["turn"] for e in trace.of_type("reply") if e.get("text") == text), None)


def add_agent(base: str, admin_token: str, name: str) -> str:
    made = httpx.post(f"{base}/v1/accounts", json={"name": name},
                      headers={"Authorization": f"Bearer {admin_token}"}, timeout=30)
    made.raise_for_status()
    return str(made.json()["token"])


def _voice(settings: Settings, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    from tts.loader import load_synthesizer

    synth = load_synthesizer(settings.tts.backend, threads=settings.tts.threads, coqui=settings.tts.coqui_voice())
    clips = []
    for name, text in (("human", HUMAN), ("question", QUESTION)):
        write_speech(synth, text, folder / f"{name}.wav", 16000)
        clips.append(load_audio(folder / f"{name}.wav", 16000))
    return clips[0], clips[1]


def run(rounds: int, url: str | None, admin_token: str | None, settings: Settings,
        desk_url: str | None = None) -> dict[str, Any]:
    server = None
    if url is None:
        admin_token = admin_token or secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"admin_token": SecretStr(admin_token)})
        url, server = start_in_process(settings)
    if admin_token is None:
        raise SystemExit("hotline bench desk: --token (or HOTLINE_ADMIN_TOKEN) is needed to add the bench agent")
    base = desk_url or url.replace("ws://", "http://").replace("wss://", "https://").removesuffix("/v1/calls")
    to_console, to_audio = [], []
    try:
        agent_token = add_agent(base, admin_token, f"bench-{secrets.token_hex(3)}")
        with tempfile.TemporaryDirectory(prefix="hotline-desk-") as folder:
            human, question = _voice(settings, Path(folder))
        for index in range(rounds):
            line = BENCH_LINES[index % len(BENCH_LINES)]
            line = line if index < len(BENCH_LINES) else f"第{index + 1}次：{line}"
            result = asyncio.run(takeover(url, base, agent_token, human, question, line, quiet=True))
            to_console.append(result.escalation_to_console_s * 1000)
            if result.reply_to_audio_s is not None:
                to_audio.append(result.reply_to_audio_s * 1000)
    finally:
        if server is not None:
            server.should_exit = True
    return {"rounds": rounds, "desk": base, "escalation_to_console_ms": _percentiles(to_console),
            "agent_reply_to_caller_audio_ms": _percentiles(to_audio)}


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    array = np.array(values)
    return {"p50": round(float(np.percentile(array, 50))), "p95": round(float(np.percentile(array, 95))),
            "max": round(float(array.max()))}


def main(rounds: int, url: str | None, admin_token: str | None, settings: Settings, desk_url: str | None = None) -> int:
    summary = run(rounds, url, admin_token, settings, desk_url)
    print(f"hotline bench desk: {rounds} takeovers", file=sys.stderr, flush=True)
    print(json.dumps(summary), flush=True)
    return 0
