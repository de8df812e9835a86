"""The agents' and admins' console at `/console`: served offline by the gateway; a real headless Chromium
logs in, works tickets, reads the dashboard and takes an escalated call."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gateway.app import create_app
from gateway.protocol import CLOSE_UNAUTHORIZED
from gateway.settings import Settings

ADMIN_TOKEN = "admin-token-of-the-console-tests-0123456789"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CONSOLE_ASSETS = ["/static/console-dashboard.js", "/static/console-desk.js", "/static/console-tickets.js",
                  "/static/console.css", "/static/console.js"]
# Every REST route the console reads: each needs a token (401 without one) once it exists on this gateway.
DATA_CALLS = [("GET", "/v1/me"), ("GET", "/v1/tickets"), ("POST", "/v1/tickets"), ("GET", "/v1/tickets/1"),
              ("PATCH", "/v1/tickets/1"), ("POST", "/v1/tickets/1/notes"), ("GET", "/v1/calls/abc"),
              ("GET", "/v1/dashboard")]


def _app_client(tmp_path: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path, admin_token=ADMIN_TOKEN, **settings), models=()))


def _routes(app: Any) -> list[Any]:
    """The app's routes, those of included routers too (FastAPI keeps those behind a wrapper)."""
    flat = []
    for route in app.routes:
        flat.append(route)
        if (included := getattr(route, "original_router", None)) is not None:
            flat.extend(included.routes)  # its WebSocket routes are only here
        if (candidates := getattr(route, "effective_candidates", None)) is not None:
            flat.extend(candidates() if callable(candidates) else candidates)
    return flat


def _has_route(app: Any, method: str, path: str) -> bool:
    """Whether the app routes `method path` (a template like /v1/tickets/{ticket_id} matches /v1/tickets/1);
    method "WS" asks for a WebSocket route."""
    for route in _routes(app):
        pattern, methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if pattern is None or not pattern.match(path):
            continue
        if (method == "WS") == (methods is None) and (methods is None or method in methods):
            return True
    return False


def test_the_console_and_everything_it_loads_come_from_the_gateway(tmp_path: Path):
    with _app_client(tmp_path) as client:
        page = client.get("/console")  # no token: the page itself is public, its data is not
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sorted(assets) == CONSOLE_ASSETS
        texts = [page.text]
        for asset in assets:
            answer = client.get(asset)
            assert answer.status_code == 200, asset
            texts.append(answer.text)
        for text in texts:
            assert not re.search(r"https?://", text), "works offline: no CDN or other site"
        assert "坐席控制台" in page.text and 'lang="zh-CN"' in page.text


def test_every_data_call_of_the_console_needs_a_token(tmp_path: Path):
    with _app_client(tmp_path) as client:
        present = [(method, path) for method, path in DATA_CALLS if _has_route(client.app, method, path)]
        assert ("GET", "/v1/me") in present
        for method, path in present:
            answer = client.request(method, path, json={})
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert answer.headers.get("www-authenticate") == "Bearer"
        wrong = client.get("/v1/me", headers={"Authorization": "Bearer not-a-token-of-this-hotline"})
        assert wrong.status_code == 401


def test_me_names_the_token_s_account_and_role(tmp_path: Path):
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with _app_client(tmp_path) as client:
        assert client.get("/v1/me", headers=admin).json() == {"name": "admin", "role": "admin"}
        created = client.post("/v1/accounts", json={"name": "lihua", "role": "agent"}, headers=admin)
        assert created.status_code == 201
        agent = {"Authorization": f"Bearer {created.json()['token']}"}
        assert client.get("/v1/me", headers=agent).json() == {"name": "lihua", "role": "agent"}
        assert client.delete("/v1/accounts/lihua", headers=admin).status_code == 200
        assert client.get("/v1/me", headers=agent).status_code == 401


def test_the_agent_socket_refuses_a_missing_or_wrong_token(tmp_path: Path):
    with _app_client(tmp_path) as client:
        if not _has_route(client.app, "WS", "/v1/agent"):
            pytest.skip("this gateway has no agent socket (/v1/agent) yet")
        for url in ("/v1/agent", "/v1/agent?token=not-a-token-of-this-hotline"):
            with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(url) as ws:
                while True:  # an error event may come first; never a hello
                    assert ws.receive_json()["type"] != "hello"
            assert refused.value.code == CLOSE_UNAUTHORIZED, url  # the console stops reconnecting on this code
