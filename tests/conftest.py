"""Shared fixtures. Keep this small and general; fixtures of one area live in its test file."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import websockets

# Before any OpenMP runtime loads (see gateway/cli.py): sleeping waits, not spinning ones.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import create_engine_for, migrate_engine, session_factory

POSTGRES_URL_ENV = "HOTLINE_TEST_POSTGRES_URL"
POSTGRES_SKIP_REASON = f"set {POSTGRES_URL_ENV} to run the PostgreSQL storage tests"


def _fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """Create an empty database next to the one `admin_url` names, yield its URL, drop it afterwards."""
    admin = create_engine_for(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"hotline_t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            # FORCE: a test that failed may have left a connection open.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, once per backend: a SQLite file, and a fresh PostgreSQL database
    created for this test (skipped unless HOTLINE_TEST_POSTGRES_URL names a server to create it on)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'hotline.db'}"
        return
    admin_url = os.environ.get(POSTGRES_URL_ENV)
    if not admin_url:
        pytest.skip(POSTGRES_SKIP_REASON)
    yield from _fresh_postgres_database(admin_url)


@pytest.fixture
def migrated_engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head (both backends, see `database_url`)."""
    engine = create_engine_for(database_url)
    migrate_engine(engine)
    try:
        yield engine
    finally:
        engine.dispose()


LIVE_ADMIN_TOKEN = "admin-token-of-the-call-tests-0123456789"
# The callers of the live tests speak with the project's own TTS, which the recognizer reads at ~14-21% CER
# (`hotline eval tts`); a final this far off still shows the words reached the dialogue.
TTS_VOICE_CER = 0.4


@dataclass(frozen=True)
class LiveHotline:
    """The real app served on a local port, models loaded, as `hotline call` serves it."""

    url: str  # ws://.../v1/calls
    base: str  # http://...
    settings: Any  # gateway.settings.Settings; tests may change its `calls` limits for a while
    server: Any  # the uvicorn server; `server.config.app.state.services` is what the app holds
    headers: dict[str, str]  # REST as the admin


@pytest.fixture(scope="session")
def live_hotline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHotline]:
    """One hotline for the whole session: loading the models is the slow part, so test files share it."""
    from gateway.caller import start_in_process
    from gateway.settings import Settings

    data_dir = tmp_path_factory.mktemp("hotline-data")
    model_dir = Path(os.environ.get("HOTLINE_TEST_MODEL_CACHE", "/tmp/mc"))
    settings = Settings(data_dir=data_dir, model_dir=model_dir, llm={"model": "bundled:qwen2.5-0.5b"},
                        admin_token=LIVE_ADMIN_TOKEN)
    url, server = start_in_process(settings)
    try:
        yield LiveHotline(url, url.replace("ws://", "http://").removesuffix("/v1/calls"), settings, server,
                          {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"})
    finally:
        server.should_exit = True


@pytest.fixture(scope="session")
def say(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Text -> a 16 kHz WAV of it in the project's own voice, with a quarter second of silence around it
    (synthesized once per text per session)."""
    import wave

    import numpy as np

    from core.audio import resample
    from tts.loader import load_synthesizer

    folder = tmp_path_factory.mktemp("voice")
    made: dict[str, Path] = {}
    synth: list[object] = []

    def make(text: str) -> Path:
        if text not in made:
            if not synth:
                synth.append(load_synthesizer("auto"))
            voice = synth[0]
            pcm = resample(voice.synthesize(text), voice.sample_rate, 16000)  # type: ignore[attr-defined]
            padded = np.concatenate([np.zeros(4000, np.int16), pcm, np.zeros(4000, np.int16)])
            path = folder / f"utt-{len(made)}.wav"
            with wave.open(str(path), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(16000)
                out.writeframes(padded.tobytes())
            made[text] = path
        return made[text]

    return make


async def events_until_closed(ws: Any, events: list[dict[str, Any]]) -> None:
    """Appends each JSON event a call socket sends to `events`, until the hotline closes it."""
    try:
        async for message in ws:
            if isinstance(message, str):
                events.append(json.loads(message))
    except websockets.ConnectionClosed:
        pass


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server of the tests' own, on a free port, with nothing kept on disk."""
    if (server_path := shutil.which("redis-server")) is None:
        pytest.skip("no redis-server on PATH (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen([server_path, "--port", str(port), "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


CLOCK_START = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 11:00 in China; the local day began at 16:00 UTC


@dataclass
class ManualClock:
    """A clock that moves only when told to."""

    current: datetime = field(default_factory=lambda: CLOCK_START)

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.current.timestamp()

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sessions(migrated_engine: Engine) -> sessionmaker[Session]:
    """Sessions on a database migrated to head (both backends)."""
    return session_factory(migrated_engine)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


def ended_call_record(base: str, call_id: str) -> dict[str, Any]:
    """The call's record once the store says it has ended (its last writes go through a journal)."""
    import httpx

    for _ in range(300):
        record = httpx.get(f"{base}/v1/calls/{call_id}", headers={"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}).json()
        if record.get("ended_at"):
            return record
        time.sleep(0.1)
    raise AssertionError(f"call {call_id} never ended: {record}")
