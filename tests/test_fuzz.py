"""Hostile input: the REST API fuzzed from its own OpenAPI schema (schemathesis), and the call socket
fed random and huge frames, text where audio belongs, silence instead of `start`, and a client that
stops reading. Nothing may answer 5xx, hang a line or stop the hotline answering others."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from conftest import events_until_closed

REST_EXAMPLES = 40  # per operation and generation mode
START = json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000})


def _fuzz_rest(schema: Any, call: Any, *, allowed_5xx: Callable[[Any, Any], bool] = lambda c, r: False) -> None:
    """Every operation of `schema`, valid and invalid input, REST_EXAMPLES each: no 5xx, no traceback or SQL."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    cases_run = 0
    server_errors: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=REST_EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def probe(case: Any) -> None:
                nonlocal cases_run
                response = call(case)
                cases_run += 1
                if response.status_code >= 500 and not allowed_5xx(case, response):
                    server_errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                         f"{response.content[:200]!r}")
                body = response.content  # bytes: an export is a zip, not text
                assert b"Traceback" not in body and b"sqlalchemy" not in body.lower()

            try:
                probe()
            except Unsatisfiable:  # no parameters to make invalid (GET /healthz): nothing negative to send
                assert mode is GenerationMode.NEGATIVE
    print(f"REST fuzz: {cases_run} cases over {len(list(schema.get_all_operations()))} operations")
    assert cases_run >= 100
    assert not server_errors, server_errors[:5]


@pytest.mark.slow
def test_rest_api_fuzzed_from_its_openapi_schema_never_answers_5xx(live_hotline):
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{live_hotline.base}/openapi.json")
    _fuzz_rest(schema, lambda case: case.call(base_url=live_hotline.base, headers=live_hotline.headers, timeout=30))


def test_rest_api_without_models_fuzzed_never_answers_5xx(tmp_path):
    """The same fuzz in-process (ASGI), no models loaded: only the knowledge base (whose search and writes
    need the embedder) may say 503, that it is still loading."""
    import schemathesis
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.settings import Settings

    token = "admin-token-of-the-fuzz-0123456789"
    app = create_app(Settings(data_dir=tmp_path, admin_token=token), models=())
    with TestClient(app):
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        _fuzz_rest(schema, lambda case: case.call(headers={"Authorization": f"Bearer {token}"}),
                   allowed_5xx=lambda case, response: case.path.startswith("/v1/kb") and response.status_code == 503
                   and b"still loading" in response.content)


def _still_answers(live_hotline) -> None:
    assert httpx.get(f"{live_hotline.base}/healthz").status_code == 200

    async def fresh_call() -> dict[str, Any]:
        async with websockets.connect(live_hotline.url) as ws:
            await ws.send(START)
            return dict(json.loads(await ws.recv()))

    assert asyncio.run(fresh_call())["type"] == "ready"


@pytest.mark.slow
def test_random_and_huge_frames_and_text_where_audio_belongs_keep_the_call(live_hotline):
    rng = random.Random(6)
    frames: list[str | bytes] = []
    for _ in range(60):
        kind = rng.choice(["bytes", "odd", "big", "text", "json"])
        if kind == "bytes":
            frames.append(rng.randbytes(rng.randrange(2, 4000, 2)))
        elif kind == "odd":
            frames.append(rng.randbytes(rng.randrange(1, 4000, 2)))
        elif kind == "big":
            frames.append(rng.randbytes(rng.choice([64_001, 200_000, 900_000])))
        elif kind == "text":
            frames.append("".join(chr(rng.randrange(32, 0x9FFF)) for _ in range(rng.randrange(1, 300))))
        else:
            frames.append(json.dumps(rng.choice([{"type": "start"}, {"type": None}, [1, 2], "stop", {"type": "dial"}])))

    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        events: list[dict[str, Any]] = []
        async with websockets.connect(live_hotline.url, max_size=None) as ws:
            await ws.send(START)
            listener = asyncio.create_task(events_until_closed(ws, events))
            for frame in frames:
                await ws.send(frame)
            await ws.send(json.dumps({"type": "stop"}))
            await listener
            return events, ws.close_code

    events, close_code = asyncio.run(scenario())
    assert events[0]["type"] == "ready" and events[-1]["type"] == "end", events[-3:]
    assert events[-1]["reason"] == "caller_stop" and close_code == 1000
    codes = {e["code"] for e in events if e["type"] == "error"}
    assert codes <= {"bad_audio", "bad_message", "audio_too_fast"} and {"bad_audio", "bad_message"} <= codes
    assert all("Traceback" not in e.get("message", "") for e in events)
    _still_answers(live_hotline)


@pytest.mark.slow
def test_a_frame_over_the_socket_limit_closes_only_that_call(live_hotline):
    async def scenario() -> int | None:
        async with websockets.connect(live_hotline.url, max_size=None) as ws:
            await ws.send(START)
            await ws.recv()
            with pytest.raises(websockets.ConnectionClosed):
                await ws.send(b"\x00" * (20 << 20))  # 20 MiB in one frame
                await asyncio.wait_for(events_until_closed(ws, []), 60)
                await ws.recv()
            return ws.close_code

    assert asyncio.run(scenario()) in (1009, 1006, 1011, None)
    _still_answers(live_hotline)


@pytest.mark.slow
def test_a_client_that_never_sends_start_is_closed(live_hotline):
    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        events: list[dict[str, Any]] = []
        async with websockets.connect(live_hotline.url) as ws:
            await asyncio.wait_for(events_until_closed(ws, events), 60)  # says nothing at all
            return events, ws.close_code

    events, close_code = asyncio.run(scenario())
    assert events == [{"type": "error", "code": "start_timeout", "message": events[0]["message"]}]
    assert close_code == 4408
    _still_answers(live_hotline)


@pytest.mark.slow
def test_a_client_that_stops_reading_is_dropped_and_its_call_recorded(live_hotline):
    port = int(live_hotline.base.rsplit(":", 1)[1])

    async def scenario() -> str:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills up fast
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        async with websockets.connect(live_hotline.url, sock=sock, max_queue=1) as ws:
            await ws.send(START)
            call_id = str(json.loads(await ws.recv())["call_id"])
            silence = bytes(640)
            deadline = time.monotonic() + 120
            try:
                while time.monotonic() < deadline:  # the line stays open; nothing is read any more
                    await ws.send(silence)
                    await asyncio.sleep(0.02)
            except websockets.ConnectionClosed:
                pass
            return call_id

    call_id = asyncio.run(scenario())
    for _ in range(240):
        record = httpx.get(f"{live_hotline.base}/v1/calls/{call_id}", headers=live_hotline.headers).json()
        if record.get("ended_at"):
            break
        time.sleep(0.5)
    assert record["outcome"] == "dropped", record
    _still_answers(live_hotline)
