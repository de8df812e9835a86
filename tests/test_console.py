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


# --- a real browser ----------------------------------------------------------------------------

WAIT_MS = 240_000  # models on a busy 2-core machine: recognition and answers can take a while
UI_MS = 30_000  # a page answer that needs no model


def _chromium(p: Any) -> Any:
    return p.chromium.launch(executable_path=CHROMIUM)


def _open_console(browser: Any, base: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base}/console")
    return page, errors


def _log_in(page: Any, token: str) -> None:
    page.fill("#token", token)
    page.click("#login")
    page.wait_for_selector("#who:not([hidden])", timeout=UI_MS)


def _log_out(page: Any) -> None:
    page.click("#logout")
    page.wait_for_selector("#view-login:not([hidden])", timeout=UI_MS)


def _new_agent(base: str, admin_headers: dict[str, str], name: str) -> str:
    import httpx

    created = httpx.post(f"{base}/v1/accounts", json={"name": name, "role": "agent"}, headers=admin_headers)
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


@pytest.fixture(scope="module")
def rest_gateway(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real gateway on a local port that loads no models: REST, the console and the store."""
    from gateway.caller import start_in_process

    settings = Settings(data_dir=tmp_path_factory.mktemp("console-data"), admin_token=ADMIN_TOKEN, models=[])
    url, server = start_in_process(settings)
    try:
        yield url.replace("ws://", "http://").removesuffix("/v1/calls")
    finally:
        server.should_exit = True


def _ticket_workflow_missing(base: str, headers: dict[str, str]) -> str | None:
    """Why this gateway cannot serve the console's ticket and dashboard views yet, or None."""
    import httpx

    listed = httpx.get(f"{base}/v1/tickets", headers=headers)
    if listed.status_code != 200 or not isinstance(listed.json(), dict) or "items" not in listed.json():
        return "GET /v1/tickets does not answer {items, total} yet (the ticket workflow REST is not merged)"
    if httpx.get(f"{base}/v1/dashboard", headers=headers).status_code == 404:
        return "GET /v1/dashboard is not served yet"
    return None


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium); the console test needs it")
def test_an_agent_logs_in_works_a_ticket_and_reads_the_dashboard(rest_gateway: str, tmp_path: Path):
    import httpx

    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    base, admin = rest_gateway, {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if (missing := _ticket_workflow_missing(base, admin)) is not None:
        pytest.skip(missing)
    opened = httpx.post(f"{base}/v1/tickets", headers=admin, json={
        "category": "broadband", "summary": "宽带断网，光猫指示灯闪红", "slots": {"phone": "13812345678",
                                                                       "address": "朝阳区建国路88号"}})
    assert opened.status_code == 201, opened.text
    ticket = opened.json()
    with playwright.sync_playwright() as p:
        browser = _chromium(p)
        try:
            page, errors = _open_console(browser, base)
            page.fill("#token", "not-a-token-of-this-hotline")
            page.click("#login")
            page.wait_for_selector("#login-error:not(:empty)", timeout=UI_MS)
            _log_in(page, ADMIN_TOKEN)
            assert page.inner_text("#who-role") == "管理员"
            token = _new_agent(base, admin, "wangfang")
            _log_out(page)
            _log_in(page, token)
            assert page.inner_text("#who-name") == "wangfang" and page.inner_text("#who-role") == "坐席"

            page.click('.tab[data-view="tickets"]')
            row = page.wait_for_selector(f'#ticket-rows tr[data-id="{ticket["id"]}"]', timeout=UI_MS)
            assert ticket["number"] in row.inner_text()
            row.click()
            detail = page.wait_for_selector(f'#ticket-detail[data-id="{ticket["id"]}"]', timeout=UI_MS)
            assert "宽带断网" in page.inner_text("#td-summary")
            page.click("#td-take")
            page.wait_for_function("document.getElementById('td-facts').innerText.includes('wangfang')",
                                   timeout=UI_MS)
            if detail.get_attribute("data-status") == "new":
                _move(page, "assigned")
            for status in ("in_progress", "pending_customer", "in_progress", "resolved", "closed"):
                _move(page, status)
            page.click('#td-status-buttons button[data-status="new"]')  # a closed ticket is not new again
            refusal = page.wait_for_selector("#td-error:not(:empty)", timeout=UI_MS).inner_text()
            assert refusal.startswith("不能这样变更：") and len(refusal) > len("不能这样变更："), refusal
            assert detail.get_attribute("data-status") == "closed"

            page.fill("#td-note", "已电话回访，客户确认恢复")
            page.press("#td-note", "Enter")
            page.wait_for_function("document.getElementById('td-events').innerText.includes('已电话回访，客户确认恢复')",
                                   timeout=UI_MS)
            assert "wangfang" in page.inner_text("#td-events")

            page.click('.tab[data-view="dashboard"]')
            page.wait_for_selector('.tile[data-key="calls-today"]', timeout=UI_MS)
            for key in ("calls-today", "resolved-share", "escalations-waiting", "longest-wait", "sla-breaches"):
                assert page.locator(f'.tile[data-key="{key}"] .value').inner_text().strip(), key
            assert page.locator("#hourly-chart rect.calls").count() == 24
            page.screenshot(path=str(tmp_path / "console-dashboard.png"))
            assert not errors, errors
        finally:
            browser.close()


def _move(page: Any, status: str) -> None:
    """Clicks the button that moves the open ticket to `status` and waits until the page shows it moved."""
    page.click(f'#td-status-buttons button[data-status="{status}"]')
    page.wait_for_function(
        f"document.getElementById('ticket-detail').dataset.status === '{status}'"
        " || document.getElementById('td-error').textContent !== ''", timeout=UI_MS)
    assert page.get_attribute("#ticket-detail", "data-status") == status, page.inner_text("#td-error")
