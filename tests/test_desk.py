"""The live desk without models: the queue, one agent per call, a console that goes away, a caller who
hangs up, and two gateways sharing one desk through a real Redis. The store is real (SQLite and
PostgreSQL); the call side is a recorder of what the desk asks of a call, as a CallSession would get it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.clock import SystemClock
from gateway import events
from gateway.bus import LocalBus, RedisBus
from gateway.live import DeskError, LiveDesk
from ticketing import store


class RecordedCall:
    """The call side of the desk: what was done to the call, in order."""

    def __init__(self) -> None:
        self.done: list[tuple[str, ...]] = []
        self.changed = asyncio.Event()

    def _note(self, *what: str) -> None:
        self.done.append(what)
        self.changed.set()

    async def agent_joined(self, agent: str) -> None:
        self._note("joined", agent)

    async def agent_says(self, text: str) -> None:
        self._note("says", text)

    async def agent_left(self) -> None:
        self._note("left")

    async def handed_back(self) -> None:
        self._note("handed_back")

    async def agent_hung_up(self) -> None:
        self._note("hung_up")


class Console:
    """What an agent's console receives."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def send(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.changed.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


async def _until(condition: Any, changed: asyncio.Event, within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while not condition():
            changed.clear()
            await changed.wait()



def _escalated_call(sessions: sessionmaker[Session], caller: str = "13812345678") -> tuple[str, int]:
    clock = SystemClock()
    with sessions() as session:
        call = store.start_call(session, codec="pcm16", sample_rate=16000, caller_id=caller, now=clock.now())
        store.add_turn(session, call_id=call.id, seq=1, speaker="caller", text="我要转人工", now=clock.now())
        escalation = store.raise_escalation(
            session, call_id=call.id, reason="caller_request", now=clock.now(), gateway="gw-a",
            context={"dialect": "mandarin", "slots": {"phone": "13812345678"}, "summary": "我要转人工"},
        )
    return call.id, escalation.id


async def test_an_agent_takes_a_waiting_call_speaks_in_it_and_hands_it_back(sessions: sessionmaker[Session]):
    desk = LiveDesk(LocalBus(), sessions, SystemClock(), "gw-a")
    call_id, escalation_id = _escalated_call(sessions)
    call, li = RecordedCall(), Console()
    seat = await desk.sit("li", li.send)
    assert await desk.enqueue(call_id, escalation_id, call) == 0
    waiting = li.of_type("queue")[-1]["waiting"]
    assert [item["call_id"] for item in waiting] == [call_id]
    item = waiting[0]
    assert item["caller"] == "138****5678" and item["dialect"] == "mandarin" and item["slots"]
    assert item["transcript"] == [{"role": "caller", "text": "我要转人工"}]

    accepted = await desk.accept("li", escalation_id)
    assert accepted.call_id == call_id and accepted.transcript
    assert call.done == [("joined", "li")]
    assert li.of_type("queue")[-1]["waiting"] == []
    with pytest.raises(DeskError) as taken:
        await desk.accept("wang", escalation_id)
    assert taken.value.code == "taken" and "li" in taken.value.message
    with pytest.raises(DeskError) as not_yours:
        await desk.say("wang", call_id, "你好")
    assert not_yours.value.code == "not_yours"

    await desk.say("li", call_id, "您好，我是客服小李")
    await desk.tell_agent("li", events.CallerFinal(call_id=call_id, text="宽带断了", normalized="宽带断了"))
    assert li.of_type("final")[-1]["text"] == "宽带断了"
    await desk.hand_back("li", call_id)
    assert call.done[1:] == [("says", "您好，我是客服小李"), ("handed_back",)]
    assert li.of_type("released")[-1] == {"type": "released", "call_id": call_id, "reason": "handed_back"}
    with sessions() as session:
        assert store.get_escalation(session, escalation_id=escalation_id).status == "handed_back"
    await desk.stand(seat)


async def test_a_console_that_goes_away_puts_its_call_back_in_the_queue(sessions: sessionmaker[Session]):
    desk = LiveDesk(LocalBus(), sessions, SystemClock(), "gw-a")
    call_id, escalation_id = _escalated_call(sessions)
    call, li, wang = RecordedCall(), Console(), Console()
    seat = await desk.sit("li", li.send)
    await desk.sit("wang", wang.send)
    await desk.enqueue(call_id, escalation_id, call)
    await desk.accept("li", escalation_id)
    await desk.stand(seat)
    assert call.done == [("joined", "li"), ("left",)]
    assert [item["call_id"] for item in wang.of_type("queue")[-1]["waiting"]] == [call_id]
    await desk.accept("wang", escalation_id)
    assert call.done[-1] == ("joined", "wang")
    await desk.leave(call_id, "wang")  # the caller hangs up while wang holds the call
    assert wang.of_type("released")[-1]["reason"] == "caller_hangup"
    with sessions() as session:
        assert store.get_escalation(session, escalation_id=escalation_id).status == "closed"


async def test_a_caller_who_hangs_up_while_waiting_leaves_an_abandoned_record(sessions: sessionmaker[Session]):
    desk = LiveDesk(LocalBus(), sessions, SystemClock(), "gw-a")
    first_call, first = _escalated_call(sessions)
    second_call, second = _escalated_call(sessions, caller="13900001111")
    li = Console()
    await desk.sit("li", li.send)
    assert await desk.enqueue(first_call, first, RecordedCall()) == 0
    assert await desk.enqueue(second_call, second, RecordedCall()) == 1
    await desk.leave(first_call, None)
    assert await desk.position(second) == 0
    assert [item["call_id"] for item in li.of_type("queue")[-1]["waiting"]] == [second_call]
    with sessions() as session:
        assert store.get_escalation(session, escalation_id=first).status == "abandoned"
    with pytest.raises(DeskError) as gone:
        await desk.accept("li", first)
    assert gone.value.code == "not_waiting"


# --- two gateways, one Redis -------------------------------------------------------------------


async def test_an_agent_on_one_gateway_takes_a_call_held_by_another(sessions: sessionmaker[Session],
                                                                     redis_url: str):
    gateway_a = LiveDesk(RedisBus(redis_url), sessions, SystemClock(), "gw-a")  # holds the call
    gateway_b = LiveDesk(RedisBus(redis_url), sessions, SystemClock(), "gw-b")  # the agent's console
    await gateway_a.bus.start()
    await gateway_b.bus.start()
    try:
        call_id, escalation_id = _escalated_call(sessions)
        call, li = RecordedCall(), Console()
        seat = await gateway_b.sit("li", li.send)
        await gateway_a.enqueue(call_id, escalation_id, call)
        await _until(lambda: any(e["waiting"] for e in li.of_type("queue")), li.changed)
        await gateway_b.accept("li", escalation_id)
        await _until(lambda: ("joined", "li") in call.done, call.changed)
        await gateway_b.say("li", call_id, "您好")
        await _until(lambda: ("says", "您好") in call.done, call.changed)
        await gateway_a.tell_agent("li", events.CallerFinal(call_id=call_id, text="我家宽带断了", normalized="我家宽带断了"))
        await _until(lambda: bool(li.of_type("final")), li.changed)
        await gateway_b.stand(seat)  # the console on B goes away: A's call waits again
        await _until(lambda: ("left",) in call.done, call.changed)
    finally:
        await gateway_a.bus.close()
        await gateway_b.bus.close()


def test_the_agent_socket_needs_an_agents_token(tmp_path: Any):
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from gateway.app import create_app
    from gateway.settings import Settings

    admin = "admin-token-of-the-desk-tests-0123456789"
    with TestClient(create_app(Settings(data_dir=tmp_path, admin_token=admin), models=())) as client:
        for query in ("", "?token=not-a-token"):
            with client.websocket_connect(f"/v1/agent{query}") as ws:
                assert ws.receive_json()["code"] == "unauthorized"
                with pytest.raises(WebSocketDisconnect) as closed:
                    ws.receive_json()
                assert closed.value.code == 4401
        with client.websocket_connect(f"/v1/agent?token={admin}") as ws:
            assert ws.receive_json() == {"type": "hello", "agent": "admin"}
            assert ws.receive_json() == {"type": "queue", "waiting": []}
            ws.send_text("not json")
            assert ws.receive_json()["code"] == "bad_message"
            ws.send_json({"type": "accept", "escalation_id": 999})
            assert ws.receive_json()["code"] == "unknown_escalation"


def test_escalations_over_rest_one_agent_at_a_time(tmp_path: Any):
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.settings import Settings

    admin = {"Authorization": "Bearer admin-token-of-the-desk-tests-0123456789"}
    settings = Settings(data_dir=tmp_path, admin_token="admin-token-of-the-desk-tests-0123456789")
    with TestClient(create_app(settings, models=())) as client:
        tokens = {name: client.post("/v1/accounts", json={"name": name}, headers=admin).json()["token"]
                  for name in ("li", "wang")}
        li, wang = ({"Authorization": f"Bearer {tokens[name]}"} for name in ("li", "wang"))
        _, escalation_id = _escalated_call(client.app.state.services.sessions)
        path = f"/v1/escalations/{escalation_id}"

        taken = client.post(f"{path}/accept", headers=li)
        assert taken.status_code == 200 and taken.json()["agent"] == "li" and taken.json()["status"] == "accepted"
        refused = client.post(f"{path}/accept", headers=wang)
        assert refused.status_code == 409 and "taken by li" in refused.json()["detail"]
        assert client.post(f"{path}/hand-back", headers=wang).status_code == 409
        assert client.post(f"{path}/close", headers=wang).status_code == 409
        back = client.post(f"{path}/hand-back", headers=li)
        assert back.status_code == 200 and back.json()["status"] == "handed_back"
        closed = client.post(f"{path}/close", headers=li)
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        assert client.post(f"{path}/close", headers=li).status_code == 409
        assert client.post("/v1/escalations/999/accept", headers=li).status_code == 404
        assert client.post(f"{path}/accept").status_code == 401
