"""A person takes an escalated call live: a simulated caller on the real call socket, an agent on the
real agent socket, the hotline with its real models (the session's shared `live_hotline`)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from gateway.caller import Caller, CallOptions, load_audio
from gateway.kb_live_bench import gateways

pytestmark = pytest.mark.slow

HUMAN = "我要转人工客服。"
QUESTION = "请问宽带安装费是多少？"
AGENT_LINE = "您好，我是客服小李，宽带安装免费。"
WAIT_S = 240.0


class AgentConsole:
    """The agent's side of /v1/agent: every event kept, in order."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def receive(self) -> None:
        async for message in self.ws:
            self.events.append(json.loads(message))
            self.changed.set()

    def of_type(self, kind: str, call_id: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind and (call_id is None or e.get("call_id") == call_id)]

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message, ensure_ascii=False))


def _agent_token(base: str, admin: dict[str, str], name: str) -> str:
    made = httpx.post(f"{base}/v1/accounts", json={"name": name}, headers=admin)
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def _waiting_call(console: AgentConsole, call_id: str) -> dict[str, Any] | None:
    for event in reversed(console.of_type("queue")):
        return next((item for item in event["waiting"] if item["call_id"] == call_id), None)
    return None


async def _scenario(url: str, desk_base: str, admin: dict[str, str], say: Callable[[str], Path],
                    agent: str = "takeover-li") -> dict[str, Any]:
    """A caller on `url` asks for a person; an agent whose console is on the gateway `desk_base` takes
    the call, answers by typing, and hands the call back."""
    token = _agent_token(desk_base, admin, agent)
    agent_url = desk_base.replace("http://", "ws://") + f"/v1/agent?token={token}"
    caller = Caller(url, CallOptions(files=[], fast=True))
    async with websockets.connect(agent_url) as agent_ws, caller.line() as line:
        assert line is not None, caller.trace.events
        console = AgentConsole(agent_ws)
        receiving = asyncio.create_task(console.receive())
        await caller.speak(line, load_audio(say(HUMAN), 16000))
        call_id = caller.trace.of_type("ready")[0]["call_id"]
        assert caller.trace.of_type("escalation"), caller.trace.events
        assert await caller.listen_until(line, lambda: _waiting_call(console, call_id) is not None, WAIT_S)
        waiting = _waiting_call(console, call_id)

        await console.send({"type": "accept", "escalation_id": waiting["escalation_id"]})
        assert await caller.listen_until(line, lambda: caller.trace.of_type("agent"), WAIT_S)
        assert await caller.listen_until(line, lambda: not caller.trace.speaking, WAIT_S)

        await caller.speak(line, load_audio(say(QUESTION), 16000), wait_for_answer=False)
        assert await caller.listen_until(line, lambda: console.of_type("assist", call_id), WAIT_S)

        turns_before = len(caller.trace.reply_ends)
        await console.send({"type": "say", "call_id": call_id, "text": AGENT_LINE})
        assert await caller.listen_until(line, lambda: len(caller.trace.reply_ends) > turns_before, WAIT_S)
        assert await caller.listen_until(line, lambda: console.of_type("spoken", call_id), WAIT_S)

        await console.send({"type": "hand_back", "call_id": call_id})
        assert await caller.listen_until(line, lambda: console.of_type("released", call_id), WAIT_S)
        await caller.listen_until(line, lambda: not caller.trace.speaking, WAIT_S)
        await line.send(json.dumps({"type": "stop"}))
        await caller.listen_until(line, lambda: caller.trace.of_type("end"), 60)
        receiving.cancel()
    return {"caller": caller.trace, "console": console, "call_id": call_id, "waiting": waiting}


def test_an_agent_takes_the_call_hears_the_caller_and_is_heard(live_hotline, say):
    outcome = asyncio.run(_scenario(live_hotline.url, live_hotline.base, live_hotline.headers, say))
    _check_takeover(outcome, live_hotline.base, live_hotline.headers, "takeover-li")


def _check_takeover(outcome: dict[str, Any], base: str, admin: dict[str, str], agent: str) -> None:
    trace, console, call_id = outcome["caller"], outcome["console"], outcome["call_id"]
    waiting = outcome["waiting"]
    assert waiting["reason"] and any(turn["role"] == "caller" for turn in waiting["transcript"])
    desk_lines = [e["text"] for e in trace.of_type("reply") if e.get("by") == "desk"]
    assert any("等待" in text for text in desk_lines), "the caller hears their place in the queue"
    assert any("接通人工" in text for text in desk_lines)

    assert console.of_type("final", call_id), "the caller's words reach the agent"
    assist = console.of_type("assist", call_id)[-1]
    assert assist["passages"] and assist["suggestion"]

    agent_replies = [e for e in trace.of_type("reply") if e.get("by") == "agent"]
    assert [e["text"] for e in agent_replies] == [AGENT_LINE]
    assert len(trace.audio.get(agent_replies[0]["turn"], b"")) > 16000, "the agent's words are heard as audio"
    assert console.of_type("spoken", call_id)[-1]["by"] == "agent"
    assert console.of_type("released", call_id)[-1]["reason"] == "handed_back"

    record = httpx.get(f"{base}/v1/calls/{call_id}", headers=admin).json()
    assert any(turn["speaker"] == "agent" and turn["text"] == AGENT_LINE for turn in record["turns"])
    escalations = httpx.get(f"{base}/v1/escalations", headers=admin).json()
    mine = [e for e in escalations if e["call_id"] == call_id]
    assert mine and mine[0]["status"] == "handed_back" and mine[0]["agent"] == agent


@pytest.mark.postgres
def test_an_agent_on_another_gateway_takes_the_call(database_url: str, redis_url: str, say, tmp_path: Path):
    """Two gateway processes, one PostgreSQL, one Redis: the call is on A (all models), the agent's
    console on B (knowledge base only)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("two gateways share a PostgreSQL store here")
    token = secrets.token_urlsafe(24)
    admin = {"Authorization": f"Bearer {token}"}
    env = {"HOTLINE_REDIS_URL": redis_url, "HOTLINE_MODEL_DIR": os.environ.get("HOTLINE_TEST_MODEL_CACHE", "/tmp/mc"),
           "HOTLINE_LLM__MODEL": "bundled:qwen2.5-0.5b"}
    with gateways(2, database_url=database_url, data_dir=tmp_path, admin_token=token, extra_env=env,
                  models=("asr,llm,tts,kb", "kb")) as (calls_gateway, desk_gateway):
        call_url = calls_gateway.url.replace("http://", "ws://") + "/v1/calls"
        outcome = asyncio.run(_scenario(call_url, desk_gateway.url, admin, say, agent="other-gateway-li"))
        _check_takeover(outcome, desk_gateway.url, admin, "other-gateway-li")
        escalation = httpx.get(f"{desk_gateway.url}/v1/escalations", headers=admin).json()[0]
        assert escalation["gateway"] != escalation["agent"] and escalation["gateway"]
