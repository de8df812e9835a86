"""Who may do what: tokens and roles on every REST route, accounts, the call socket's token and origins.

The real app and store (SQLite and PostgreSQL) with no models loaded: none of this needs them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute
from starlette.websockets import WebSocketDisconnect

from gateway.app import create_app
from gateway.auth import require_admin, require_agent
from gateway.cli import main
from gateway.settings import Settings
from ticketing import store

ADMIN_TOKEN = "admin-token-for-the-tests-0123456789"
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# The call page and the titles it shows follow the call socket's rules (HOTLINE_CALL_TOKEN, origins):
# open when no call token is set, as here; with one, see tests/test_call_page.py.
OPEN_PATHS |= {"/", "/v1/call-page/sources"}
OPEN_PATHS |= {"/console"}  # the agents' console page itself; every data call it makes needs a token
CALLER_SOCKETS = {"/v1/calls"}
AGENT_SOCKETS = {"/v1/agent"}  # checks an agent's or admin's token itself (gateway/agent_socket.py)
ADMIN_ONLY = ("/v1/kb", "/v1/accounts")  # writes to the knowledge base; everything about accounts
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def _settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path / "data", "database_url": database_url,
                                 "admin_token": ADMIN_TOKEN, **overrides}
    return Settings(**values)  # type: ignore[arg-type]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path, database_url), models=())) as test_client:
        yield test_client


def _add_agent(client: TestClient, name: str) -> str:
    response = client.post("/v1/accounts", json={"name": name}, headers=_bearer(ADMIN_TOKEN))
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def _all_routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route of the app, also those of included routers (FastAPI keeps those as one entry each)."""
    for route in routes:
        if (included := getattr(route, "original_router", None)) is not None:
            yield from _all_routes(included.routes)
        else:
            yield route


def _declared_role(route: APIRoute) -> str | None:
    calls = {dependency.call for dependency in route.dependant.dependencies}
    if require_admin in calls:
        return "admin"
    if require_agent in calls:
        return "agent"
    return None


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_states_its_role_and_enforces_it(client: TestClient) -> None:
    agent = _add_agent(client, "alice")
    every = list(_all_routes(client.app.routes))  # type: ignore[attr-defined]
    routes = [r for r in every if isinstance(r, APIRoute)]
    sockets = {r.path for r in every if isinstance(r, APIWebSocketRoute)}
    assert sockets == CALLER_SOCKETS | AGENT_SOCKETS, "a new socket must check who opens it"
    assert {r.path for r in routes} >= {"/v1/tickets", "/v1/accounts", "/healthz"}
    for route in routes:
        role = _declared_role(route)
        for method in route.methods:
            url = _concrete(route.path)
            if route.path in OPEN_PATHS:
                assert role is None
                assert client.request(method, url).status_code not in (401, 403), url
                continue
            assert role is not None, f"{method} {route.path} does not state who may call it"
            if route.path.startswith(ADMIN_ONLY) and (method != "GET" or route.path.startswith("/v1/accounts")):
                assert role == "admin", f"{method} {route.path} changes the knowledge base or accounts: admins only"
            anonymous = client.request(method, url)
            assert anonymous.status_code == 401, (method, url, anonymous.text)
            assert anonymous.headers["www-authenticate"] == "Bearer"
            assert client.request(method, url, headers=_bearer("hl_not-a-token")).status_code == 401
            assert client.request(method, url, headers={"Authorization": "Basic YWxpY2U6cHc="}).status_code == 401
            as_agent = client.request(method, url, headers=_bearer(agent)).status_code
            assert as_agent == (403 if role == "admin" else as_agent) and as_agent != 401, (method, url, as_agent)
            if role == "agent":
                assert as_agent != 403, (method, url)
            assert client.request(method, url, headers=_bearer(ADMIN_TOKEN)).status_code not in (401, 403)


def test_agents_and_admins_read_with_200(client: TestClient) -> None:
    agent = _add_agent(client, "alice")
    for path in ("/v1/tickets", "/v1/escalations", "/v1/calls", "/v1/kb/documents"):
        for token in (agent, ADMIN_TOKEN):
            assert client.get(path, headers=_bearer(token)).status_code == 200, path
    assert client.get("/v1/accounts", headers=_bearer(ADMIN_TOKEN)).status_code == 200
    assert client.get("/v1/accounts", headers=_bearer(agent)).status_code == 403
    assert client.get("/healthz").status_code == 200


def test_admin_creates_lists_and_disables_agents(client: TestClient) -> None:
    admin = _bearer(ADMIN_TOKEN)
    token = _add_agent(client, "bob")
    listed = client.get("/v1/accounts", headers=admin).json()
    assert {a["name"]: a["role"] for a in listed} == {"admin": "admin", "bob": "agent"}
    bob = next(a for a in listed if a["name"] == "bob")
    assert bob["active"] and bob["created_by"] == "admin" and set(bob) == {
        "name", "role", "active", "created_at", "created_by"}
    assert client.post("/v1/accounts", json={"name": "bob"}, headers=admin).status_code == 409
    assert client.post("/v1/accounts", json={"name": "no spaces!"}, headers=admin).status_code == 422
    assert client.post("/v1/accounts", json={"name": "carol", "role": "root"}, headers=admin).status_code == 422
    assert client.delete("/v1/accounts/admin", headers=admin).status_code == 409
    assert client.delete("/v1/accounts/nobody", headers=admin).status_code == 404
    assert client.get("/v1/tickets", headers=_bearer(token)).status_code == 200
    disabled = client.delete("/v1/accounts/bob", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert client.get("/v1/tickets", headers=_bearer(token)).status_code == 401


def test_tokens_are_stored_only_as_hashes(client: TestClient) -> None:
    token = _add_agent(client, "dave")
    engine = client.app.state.services.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(sa.text("SELECT * FROM accounts")).mappings()]
    dump = repr(rows)
    assert token not in dump and ADMIN_TOKEN not in dump
    hashes = {row["name"]: row["token_hash"] for row in rows}
    assert hashes == {"admin": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
                      "dave": hashlib.sha256(token.encode()).hexdigest()}


def test_ticket_changes_name_the_account(client: TestClient) -> None:
    agent = _add_agent(client, "erin")
    with client.app.state.services.sessions() as session:  # type: ignore[attr-defined]
        ticket = store.open_ticket(session, call_id=None, category="broadband", slots={}, summary="", now=NOW)
    changed = client.patch(f"/v1/tickets/{ticket.id}", json={"status": "in_progress"}, headers=_bearer(agent))
    assert changed.status_code == 200, changed.text
    closed = client.patch(f"/v1/tickets/{ticket.id}", json={"status": "closed"}, headers=_bearer(ADMIN_TOKEN))
    events = closed.json()["events"]
    assert [(e["kind"], e["actor"]) for e in events] == [
        ("created", None), ("status_changed", "erin"), ("status_changed", "admin")]


def test_first_start_makes_an_admin_token_logs_it_once_and_keeps_only_its_hash(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, database_url, admin_token=None)
    with caplog.at_level(logging.WARNING, logger="hotline.services"):
        with TestClient(create_app(settings, models=())) as first:
            shown = re.findall(r"admin token is (hl_\S+)", caplog.text)
            assert len(shown) == 1
            assert first.get("/v1/accounts", headers=_bearer(shown[0])).status_code == 200
        caplog.clear()
        with TestClient(create_app(settings, models=())) as second:
            assert "admin token" not in caplog.text
            assert second.get("/v1/accounts", headers=_bearer(shown[0])).status_code == 200


def test_admin_token_from_the_environment_replaces_the_stored_one(tmp_path: Path, database_url: str) -> None:
    with TestClient(create_app(_settings(tmp_path, database_url), models=())):
        pass
    newer = "a-newer-admin-token-0123456789abcdef"
    with TestClient(create_app(_settings(tmp_path, database_url, admin_token=newer), models=())) as client:
        assert client.get("/v1/accounts", headers=_bearer(newer)).status_code == 200
        assert client.get("/v1/accounts", headers=_bearer(ADMIN_TOKEN)).status_code == 401


def test_cli_rotates_the_admin_token_and_adds_agents(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOTLINE_DATABASE_URL", database_url)
    monkeypatch.delenv("HOTLINE_ADMIN_TOKEN", raising=False)
    # main() sets up logging onto this test's captured stderr: the handler must not outlive the test
    monkeypatch.setattr(logging.getLogger(), "handlers", list(logging.getLogger().handlers))
    assert main(["token", "admin"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["token", "admin"]) == 0
    second = capsys.readouterr().out.strip()
    assert first.startswith("hl_") and second.startswith("hl_") and first != second
    assert main(["agent", "add", "frank"]) == 0
    frank = capsys.readouterr().out.strip()
    assert main(["agent", "add", "frank"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["agent", "add", "bad name"]) == 1
    with TestClient(create_app(Settings(), models=())) as client:
        assert client.get("/v1/accounts", headers=_bearer(first)).status_code == 401
        assert client.get("/v1/accounts", headers=_bearer(second)).status_code == 200
        assert client.get("/v1/tickets", headers=_bearer(frank)).status_code == 200
    assert main(["agent", "disable", "frank"]) == 0
    assert main(["agent", "list"]) == 0
    assert re.search(r"^frank\tagent\tdisabled", capsys.readouterr().out, re.M)
    monkeypatch.setenv("HOTLINE_ADMIN_TOKEN", ADMIN_TOKEN)
    assert main(["token", "admin"]) == 2


# ---------------------------------------------------------------- the call socket


def _refused(client: TestClient, url: str, headers: dict[str, str] | None = None) -> tuple[str, int]:
    """The error code the socket answers a start message that is bad on purpose, and its close code."""
    with client.websocket_connect(url, headers=dict(headers or {})) as ws:
        ws.send_text("not a start message")
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    return str(error["code"]), closed.value.code


def test_call_socket_is_open_by_default(client: TestClient) -> None:
    assert _refused(client, "/v1/calls", {"origin": "https://anywhere.example"}) == ("bad_start", 4400)


def test_call_token_and_origins_close_the_call_socket(tmp_path: Path) -> None:
    call_token = "call-token-for-the-tests-0123456789"
    settings = _settings(tmp_path, f"sqlite:///{tmp_path / 'h.db'}", call_token=call_token,
                         call_origins="https://console.example, https://desk.example:8443/")
    with TestClient(create_app(settings, models=())) as client:
        assert _refused(client, "/v1/calls") == ("unauthorized", 4401)
        assert _refused(client, "/v1/calls?token=wrong-token") == ("unauthorized", 4401)
        assert _refused(client, "/v1/calls", _bearer("wrong-token")) == ("unauthorized", 4401)
        # past the door: the bad start message is what is refused now
        assert _refused(client, f"/v1/calls?token={call_token}") == ("bad_start", 4400)
        assert _refused(client, "/v1/calls", _bearer(call_token)) == ("bad_start", 4400)
        allowed = {"origin": "https://desk.example:8443", **_bearer(call_token)}
        assert _refused(client, "/v1/calls", allowed) == ("bad_start", 4400)
        other = {"origin": "https://evil.example", **_bearer(call_token)}
        assert _refused(client, "/v1/calls", other) == ("forbidden_origin", 4403)


def test_call_tokens_in_a_socket_path_are_not_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000",
                                                "/v1/calls?dialect=auto&token=s3cret-call-token")
    assert "s3cret" not in caplog.text and "token=***" in caplog.text
