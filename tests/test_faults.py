"""Faults with nothing lost, on real parts: a PostgreSQL server really stopped and started again in
the middle of a call, a SQLite store locked by another writer, a language-model server that fails
or never answers, a caller who hangs up while the model thinks."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from sqlalchemy import create_engine, text

from gateway.db import migrate_engine, session_factory
from gateway.journal import CallJournal
from ticketing import CallAlreadyExists, store

ADMIN_TOKEN = "admin-token-of-the-fault-tests-0123456789"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FAULT_TURNS = (
    "我家宽带从昨天晚上开始就上不了网了。",
    "地址是东城区人民路十八号。",
    "我的电话是一三八零零一二三四五六。",
)
UNSURE = "家里的机顶盒没动静了。"  # the rules cannot tell what this is: the judge is asked
SILENCE = np.zeros(320, np.int16).tobytes()
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


# ---- a PostgreSQL server of this test's own, so that stopping it disturbs nobody else ---------------


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        bin_dir = _pg_bin()
        assert bin_dir is not None
        self.bin = bin_dir
        self.data = folder / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as_owner, str(self.bin / tool), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.data / "log"), "-w", "start")

    def kill(self) -> None:
        """An immediate stop: connections cut, no goodbye, as when the server crashes or restarts."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    if not os.environ.get("HOTLINE_TEST_POSTGRES_URL"):
        pytest.skip("set HOTLINE_TEST_POSTGRES_URL to run the PostgreSQL tests")
    if _pg_bin() is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    # Not under pytest's temporary folder: that is private to root, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
    folder.chmod(0o755)
    server = PrivatePostgres(folder / "cluster")
    server.start()
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_hotline(postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from gateway.caller import start_in_process
    from gateway.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("pg-hotline"), database_url=postgres.url,
                        model_dir=Path(os.environ.get("HOTLINE_TEST_MODEL_CACHE", "/tmp/mc")),
                        llm={"model": "bundled:qwen2.5-0.5b"}, admin_token=ADMIN_TOKEN)
    url, server = start_in_process(settings)
    try:
        yield url, url.replace("ws://", "http://").removesuffix("/v1/calls"), server
    finally:
        server.should_exit = True


def _wav_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as source:
        return np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)


class LiveCall:
    """A caller on the socket: speaks utterances at real-time pace and keeps every event."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._listener = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, str):
                    self.events.append(json.loads(message))
        except websockets.ConnectionClosed:
            pass

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def silence_until(self, condition: Any, within_s: float = 180) -> None:
        deadline = time.monotonic() + within_s
        while not condition():
            assert time.monotonic() < deadline, self.events
            await self.ws.send(SILENCE)
            await asyncio.sleep(0.02)

    async def say(self, pcm: np.ndarray) -> None:
        """Speaks, then keeps a quiet line open until the reply to it is over."""
        finals, ends = len(self.of_type("final")), len(self.of_type("reply_end"))
        for offset in range(0, len(pcm), 320):
            await self.ws.send(pcm[offset : offset + 320].tobytes())
            await asyncio.sleep(0.02)
        await self.silence_until(lambda: len(self.of_type("final")) > finals
                                 and len(self.of_type("reply_end")) > ends)

    async def hang_up(self) -> None:
        await self.ws.send(json.dumps({"type": "stop"}))
        await self._listener


def _stored_call(base: str, call_id: str, within_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while True:
        response = httpx.get(f"{base}/v1/calls/{call_id}", headers=AS_ADMIN)
        if response.status_code == 200 and response.json().get("ended_at"):
            return response.json()
        assert time.monotonic() < deadline, f"call {call_id} never reached the store: {response.text}"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_stopped_mid_call_loses_nothing(pg_hotline, postgres, say):
    url, base, _ = pg_hotline
    turns = [_wav_pcm(say(text)) for text in FAULT_TURNS]

    async def scenario() -> LiveCall:
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000}))
            call = LiveCall(ws)
            await call.silence_until(lambda: call.of_type("reply_end"))  # the greeting
            postgres.kill()
            try:
                for pcm in turns:
                    await call.say(pcm)
                refused = await asyncio.to_thread(httpx.get, f"{base}/v1/tickets", headers=AS_ADMIN)
                assert refused.status_code == 503 and "SQL" not in refused.text  # REST says so, plainly
            finally:
                postgres.start()
            await call.silence_until(lambda: any(e.get("number") for e in call.of_type("ticket")), 120)
            await call.hang_up()
            return call

    call = asyncio.run(scenario())
    pending = [e for e in call.of_type("ticket") if e.get("pending")]
    assert pending, call.events  # the store was away when the ticket was filed
    assert any("短信" in e["text"] for e in call.of_type("reply")), "the number is promised, not invented"
    number = next(e["number"] for e in call.of_type("ticket") if e.get("number"))
    call_id = call.of_type("ready")[0]["call_id"]
    record = _stored_call(base, call_id)
    said = [e["text"] for e in call.of_type("reply_end") if e["text"]]
    assert sum(t["speaker"] == "caller" for t in record["turns"]) == len(call.of_type("final"))
    assert sum(t["speaker"] == "bot" for t in record["turns"]) == len(said)
    assert [t["seq"] for t in record["turns"]] == list(range(1, len(record["turns"]) + 1))
    tickets = httpx.get(f"{base}/v1/tickets", params={"call_id": call_id}, headers=AS_ADMIN).json()["items"]
    assert [t["number"] for t in tickets] == [number]  # exactly one, no duplicate from the retries
    assert tickets[0]["phone"] == "13800123456"


# ---- a SQLite store that is locked by another writer -------------------------------------------------


def test_sqlite_locked_by_another_writer_keeps_the_writes_and_stores_them_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'hotline.db'}"
    engine = create_engine(url, connect_args={"timeout": 0.1})  # give up on a lock quickly
    migrate_engine(engine)
    sessions = session_factory(engine)

    async def scenario() -> tuple[Any, Any]:
        journal = CallJournal("call-1", sessions)
        runner = asyncio.create_task(journal.run())
        locker = engine.raw_connection()
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the database
        journal.submit(store.start_call, already=CallAlreadyExists, call_id="call-1", codec="pcm16",
                       sample_rate=16000, now=NOW)
        for seq, speaker in enumerate(("caller", "bot", "caller"), 1):
            journal.submit(store.add_turn, call_id="call-1", seq=seq, speaker=speaker, text=f"turn {seq}", now=NOW)
        ticket = journal.submit(store.open_ticket, call_id="call-1", category="broadband", slots={}, summary="",
                                now=NOW, request_key="k1")
        # a retry of the same ticket (as after a commit whose answer was lost) must not add a second one
        again = journal.submit(store.open_ticket, call_id="call-1", category="broadband", slots={}, summary="",
                               now=NOW, request_key="k1")
        assert await journal.result(ticket, 5) is None  # the store is away: kept, not failed
        assert journal.store_away.is_set() and len(journal.pending) == 6
        locker.rollback()
        locker.close()
        journal.close()
        await asyncio.wait_for(runner, 30)
        return ticket.result(), again.result()

    first, second = asyncio.run(scenario())
    assert first.id == second.id
    with sessions() as session:
        record = store.get_call(session, call_id="call-1")
        assert [t.text for t in record.turns] == ["turn 1", "turn 2", "turn 3"]
        assert len(store.list_tickets(session, call_id="call-1")) == 1
    with engine.connect() as connection:
        assert connection.execute(text("SELECT turn_count FROM call_records")).scalar_one() == 3
    engine.dispose()


# ---- a language-model server that fails or never answers ------------------------------------------------


class FailingModelServer:
    """An OpenAI-compatible endpoint that answers 500, or holds the request and never answers."""

    def __init__(self, mode: str) -> None:
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if mode == "hang":
                    time.sleep(6)  # longer than the judge waits; short, so the shared model worker is soon free
                    return
                body = json.dumps({"error": {"message": "CUDA out of memory", "type": "server_error"}}).encode()
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["500", "hang"])
def test_a_failing_language_model_gets_an_apology_and_the_offer_of_a_human(live_hotline, say, mode):
    from dialogue.judge import IntentJudge
    from dialogue.llm import OpenAICompatibleModel, load_language_model

    services = live_hotline.server.config.app.state.services
    real = services.models["manager"]
    failing = FailingModelServer(mode)
    model = load_language_model("any", cache_dir=Path("/nonexistent"), n_threads=1, n_ctx=512,
                                base_url=failing.url, api_key=None)
    assert isinstance(model, OpenAICompatibleModel)  # base_url selects the HTTP client
    services.models["manager"] = real.with_judge(IntentJudge(model, services.pools["llm"], timeout_s=2.0))
    pcm = _wav_pcm(say(UNSURE))

    async def scenario() -> LiveCall:
        async with websockets.connect(live_hotline.url) as ws:
            await ws.send(json.dumps({"type": "start", "codec": "pcm16", "sample_rate": 16000}))
            call = LiveCall(ws)
            await call.silence_until(lambda: call.of_type("reply_end"))
            await call.say(pcm)
            await call.hang_up()
            return call

    try:
        call = asyncio.run(scenario())
    finally:
        services.models["manager"] = real
        failing.close()
    assert failing.requests >= 1, call.events  # the model was asked, and failed
    answer = [e for e in call.of_type("reply") if e["turn"] > 1]
    assert answer and "抱歉" in answer[0]["text"] and "转人工" in answer[0]["text"], call.events
    assert not call.of_type("error"), "a model that fails is not the caller's error"
    assert "CUDA" not in json.dumps(call.events, ensure_ascii=False)


# ---- the store's side of it: idempotent writes, and escalations that stop waiting with their call ------


def test_retried_writes_are_stored_once_and_an_ended_call_stops_waiting_for_an_agent(migrated_engine):
    sessions = session_factory(migrated_engine)
    with sessions() as session:
        store.start_call(session, call_id="c1", codec="pcm16", sample_rate=16000, now=NOW)
        for _ in range(2):  # the same write twice, as after a commit whose answer was lost
            store.add_turn(session, call_id="c1", seq=1, speaker="caller", text="网断了", now=NOW)
            ticket = store.open_ticket(session, call_id="c1", category="broadband", slots={"phone": "13800001111"},
                                       summary="网断了", now=NOW, request_key="key-1")
            escalation = store.raise_escalation(session, call_id="c1", reason="caller_request", now=NOW,
                                                request_key="key-2")
        store.add_turn(session, call_id="c1", speaker="bot", text="好的", now=NOW)  # numbered after seq 1
        assert [t.seq for t in store.get_call(session, call_id="c1").turns] == [1, 2]
        assert [t.id for t in store.list_tickets(session, call_id="c1")] == [ticket.id]
        assert [e.id for e in store.list_escalations(session)] == [escalation.id]
        assert store.list_escalations(session, status="waiting")
        store.end_call(session, call_id="c1", outcome="caller_hangup", now=NOW)
        assert not store.list_escalations(session, status="waiting")
        assert store.get_escalation(session, escalation_id=escalation.id).status == "closed"


# ---- a hang-up stops the model's work for that call at once ----------------------------------------------


class SlowModel:
    """A language model that takes seconds over a judgement and notes whether it was let finish."""

    name = "slow"

    def __init__(self) -> None:
        self.pieces = 0
        self.finished = False

    def stream(self, messages: Any, options: Any) -> Iterator[str]:
        for piece in ('{"intent": ', '"fault_report", ', '"kind": "other"', "}") * 25:
            time.sleep(0.02)
            self.pieces += 1
            yield piece
        self.finished = True


def test_a_hang_up_stops_the_judge_of_that_call_at_once():
    from core.concurrency import InferencePool
    from dialogue.base import StopSignal
    from dialogue.judge import IntentJudge

    async def scenario() -> tuple[Any, SlowModel, int]:
        model, pool, stop = SlowModel(), InferencePool("llm"), StopSignal()
        judge = IntentJudge(model, pool, timeout_s=30)
        try:
            judging = asyncio.create_task(judge.judge("家里的机顶盒没动静了", stop))
            for _ in range(500):  # until the model is reading
                if model.pieces >= 3:
                    break
                await asyncio.sleep(0.01)
            stop.set()  # the caller hung up
            judgement = await judging
            await pool.run(lambda: None)  # the model's worker is free again
            return judgement, model, model.pieces
        finally:
            pool.close()

    judgement, model, pieces_when_free = asyncio.run(scenario())
    assert judgement is None  # nobody to answer: the rules decide what is left
    assert not model.finished and pieces_when_free < 100
