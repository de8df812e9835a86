"""A person takes an escalated call live: a simulated caller on the real call socket, an agent on the
real agent socket, the hotline with its real models; on one gateway (the session's shared
`live_hotline`) and across two gateway processes sharing one PostgreSQL and one Redis."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.bench_desk import AGENT_LINE, HUMAN, QUESTION, Takeover, add_agent, takeover
from gateway.caller import load_audio
from gateway.kb_live_bench import gateways

pytestmark = pytest.mark.slow


def _takeover(call_url: str, desk_base: str, admin_token: str, agent: str,
              say: Callable[[str], Path]) -> Takeover:
    token = add_agent(desk_base, admin_token, agent)
    human, question = (load_audio(say(text), 16000) for text in (HUMAN, QUESTION))
    return asyncio.run(takeover(call_url, desk_base, token, human, question))


def _check(outcome: Takeover, base: str, admin: dict[str, str], agent: str) -> None:
    trace, console, call_id = outcome.caller, outcome.console, outcome.call_id
    assert outcome.waiting["reason"] and any(turn["role"] == "caller" for turn in outcome.waiting["transcript"])
    desk_lines = [e["text"] for e in trace.of_type("reply") if e.get("by") == "desk"]
    assert any("等待" in text for text in desk_lines), "the caller hears their place in the queue"
    assert any("接通人工" in text for text in desk_lines)

    assert console.of_type("final", call_id), "the caller's words reach the agent"
    assist = console.of_type("assist", call_id)[-1]
    assert assist["passages"] and assist["suggestion"]

    agent_replies = [e for e in trace.of_type("reply") if e.get("by") == "agent"]
    assert [e["text"] for e in agent_replies] == [AGENT_LINE]
    assert len(trace.audio.get(agent_replies[0]["turn"], b"")) > 16000, "the agent's words are heard as audio"
    assert outcome.reply_to_audio_s is not None and outcome.escalation_to_console_s >= 0
    assert console.of_type("spoken", call_id)[-1]["by"] == "agent"
    assert console.of_type("released", call_id)[-1]["reason"] == "handed_back"
    assert trace.of_type("agent")[-1]["state"] == "handed_back"

    record = httpx.get(f"{base}/v1/calls/{call_id}", headers=admin).json()
    assert any(turn["speaker"] == "agent" and turn["text"] == AGENT_LINE for turn in record["turns"])
    escalations = httpx.get(f"{base}/v1/escalations", headers=admin).json()
    mine = [e for e in escalations if e["call_id"] == call_id]
    assert mine and mine[0]["status"] == "handed_back" and mine[0]["agent"] == agent


def test_an_agent_takes_the_call_hears_the_caller_and_is_heard(live_hotline, say):
    admin_token = live_hotline.headers["Authorization"].removeprefix("Bearer ")
    outcome = _takeover(live_hotline.url, live_hotline.base, admin_token, "takeover-li", say)
    _check(outcome, live_hotline.base, live_hotline.headers, "takeover-li")


@pytest.mark.postgres
def test_an_agent_on_another_gateway_takes_the_call(database_url: str, redis_url: str, say, tmp_path: Path):
    """The call is on gateway A (all models), the agent's console on gateway B (knowledge base only)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("two gateways share a PostgreSQL store here")
    token = secrets.token_urlsafe(24)
    env = {"HOTLINE_REDIS_URL": redis_url, "HOTLINE_MODEL_DIR": os.environ.get("HOTLINE_TEST_MODEL_CACHE", "/tmp/mc"),
           "HOTLINE_LLM__MODEL": "bundled:qwen2.5-0.5b"}
    with gateways(2, database_url=database_url, data_dir=tmp_path, admin_token=token, extra_env=env,
                  models=("asr,llm,tts,kb", "kb")) as (calls_gateway, desk_gateway):
        call_url = calls_gateway.url.replace("http://", "ws://") + "/v1/calls"
        outcome = _takeover(call_url, desk_gateway.url, token, "other-gateway-li", say)
        admin = {"Authorization": f"Bearer {token}"}
        _check(outcome, desk_gateway.url, admin, "other-gateway-li")
        escalation = httpx.get(f"{desk_gateway.url}/v1/escalations", headers=admin).json()[0]
        assert escalation["gateway"] and escalation["agent"] == "other-gateway-li"
