"""The ticket routes and the dashboard through the real app and store (SQLite and PostgreSQL), no models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import CLOCK_START, ManualClock
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from ticketing import store

ADMIN_TOKEN = "admin-token-for-the-ticket-tests-0123"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NOW = CLOCK_START
PHONE = "13812345678"




@pytest.fixture
def client(tmp_path: Path, database_url: str, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
                        sla={"first_response_hours": {"complaint": 1}})
    with TestClient(create_app(settings, clock=clock, models=())) as test_client:
        yield test_client


def _agent(client: TestClient, name: str) -> dict[str, str]:
    response = client.post("/v1/accounts", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _create(client: TestClient, headers: dict[str, str], **body: object) -> dict:
    response = client.post("/v1/tickets", json={"category": "broadband", "summary": "宽带断网", "phone": PHONE,
                                                "address": "朝阳区建国路88号", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_an_agent_opens_a_ticket_with_its_sla_and_first_response(client: TestClient) -> None:
    alice = _agent(client, "alice")
    ticket = _create(client, alice, category="complaint", slots={"complaint_type": "attitude"})
    assert (ticket["status"], ticket["priority"], ticket["owner"]) == ("new", "high", None)
    assert ticket["slots"] == {"complaint_type": "attitude", "phone": "138****5678", "address": "朝阳区建国路88号"}
    assert ticket["first_response_due_at"] == "2026-11-22T04:00:00Z"  # from the settings: 1 h for complaints
    assert ticket["resolution_due_at"] == ticket["due_at"] == "2026-11-25T03:00:00Z"
    assert ticket["first_responded_at"] == "2026-11-22T03:00:00Z" and ticket["overdue"] is False
    assert [(e["kind"], e["actor"]) for e in ticket["events"]] == [("created", "alice")]


def test_the_phone_is_whole_for_the_owner_and_admins_only(client: TestClient) -> None:
    alice, bob = _agent(client, "alice"), _agent(client, "bob")
    ticket = _create(client, ADMIN)
    assert ticket["phone"] == PHONE  # an admin
    owned = client.patch(f"/v1/tickets/{ticket['id']}", json={"owner": "me"}, headers=alice)
    assert owned.status_code == 200 and owned.json()["owner"] == "alice" and owned.json()["phone"] == PHONE
    for headers, shown in ((alice, PHONE), (bob, "138****5678"), (ADMIN, PHONE)):
        one = client.get(f"/v1/tickets/{ticket['id']}", headers=headers).json()
        listed = client.get("/v1/tickets", headers=headers).json()["items"][0]
        assert one["phone"] == listed["phone"] == one["slots"]["phone"] == shown
    client.patch(f"/v1/tickets/{ticket['id']}", json={"owner": "bob"}, headers=ADMIN)
    assert client.get(f"/v1/tickets/{ticket['id']}", headers=alice).json()["phone"] == "138****5678"
    with client.app.state.services.sessions() as session:  # type: ignore[attr-defined]
        store.update_ticket_slots(session, ticket_id=ticket["id"], slots={"phone": "13987654321"}, now=NOW)
    events = client.get(f"/v1/tickets/{ticket['id']}/events", headers=alice).json()
    assert events[-1]["kind"] == "slots_updated"
    assert events[-1]["detail"]["slots"]["phone"] == {"from": "138****5678", "to": "139****4321"}
    found = client.get("/v1/tickets", params={"phone": "13987654321"}, headers=alice).json()
    assert [t["id"] for t in found["items"]] == [ticket["id"]] and found["items"][0]["phone"] == "139****4321"


def test_patch_moves_assigns_and_prioritises_with_events(client: TestClient) -> None:
    alice = _agent(client, "alice")
    ticket = _create(client, ADMIN)
    url = f"/v1/tickets/{ticket['id']}"
    assigned = client.patch(url, json={"owner": "alice", "priority": "urgent"}, headers=ADMIN).json()
    assert (assigned["status"], assigned["owner"], assigned["priority"]) == ("assigned", "alice", "urgent")
    working = client.patch(url, json={"status": "in_progress", "note": "已派装维"}, headers=alice).json()
    assert working["events"][-1] == {**working["events"][-1], "kind": "status_changed", "actor": "alice",
                                     "detail": {"from": "assigned", "to": "in_progress", "note": "已派装维"}}
    note = client.post(f"{url}/notes", json={"text": "用户说晚上在家"}, headers=alice)
    assert note.status_code == 201
    assert (note.json()["kind"], note.json()["actor"], note.json()["detail"]) == ("note", "alice", {"text": "用户说晚上在家"})
    kinds = [(e["kind"], e["actor"]) for e in client.get(f"{url}/events", headers=alice).json()]
    assert kinds == [("created", "admin"), ("assigned", "admin"), ("status_changed", "admin"),
                     ("priority_changed", "admin"), ("status_changed", "alice"), ("note", "alice")]
    unassigned = client.patch(url, json={"owner": None}, headers=ADMIN).json()
    assert unassigned["owner"] is None and unassigned["status"] == "in_progress"


def test_refusals_say_why(client: TestClient) -> None:
    alice = _agent(client, "alice")
    ticket = _create(client, alice)
    url = f"/v1/tickets/{ticket['id']}"
    assert client.patch(url, json={"status": "closed"}, headers=alice).status_code == 200
    illegal = client.patch(url, json={"status": "pending_customer"}, headers=alice)
    assert illegal.status_code == 409
    assert "cannot go from 'closed' to 'pending_customer'" in illegal.json()["detail"]
    assert "allowed from 'closed': in_progress" in illegal.json()["detail"]
    for missing in ("/v1/tickets/4242", "/v1/tickets/4242/events"):
        assert client.get(missing, headers=alice).status_code == 404
    assert client.patch("/v1/tickets/4242", json={"status": "closed"}, headers=alice).status_code == 404
    assert client.post("/v1/tickets/4242/notes", json={"text": "x"}, headers=alice).status_code == 404
    for body in ({"status": "open"}, {"priority": "asap"}, {"owner": "nobody"}, {"colour": "red"}):
        assert client.patch(url, json=body, headers=alice).status_code == 422, body
    assert client.post(f"{url}/notes", json={"text": ""}, headers=alice).status_code == 422
    for body in ({"category": "fax"}, {"category": "billing", "phone": "call me"},
                 {"category": "billing", "call_id": "no-such-call"}):
        assert client.post("/v1/tickets", json=body, headers=alice).status_code == 422, body
    nul = "断\x00网"  # PostgreSQL text cannot hold NUL: refused on both stores, never a 500
    assert client.post("/v1/tickets", json={"category": "billing", "summary": nul}, headers=alice).status_code == 422
    assert client.post(f"{url}/notes", json={"text": nul}, headers=alice).status_code == 422
    for params in ({"status": "open"}, {"sort": "colour"}, {"priority": "asap"}, {"limit": 0}, {"phone": "x"},
                   {"q": nul}, {"owner": nul}):
        assert client.get("/v1/tickets", params=params, headers=alice).status_code == 422, params


def test_the_list_filters_sorts_and_pages(client: TestClient, clock: ManualClock) -> None:
    alice = _agent(client, "alice")
    a = _create(client, ADMIN, summary="光猫红灯")
    b = _create(client, ADMIN, category="complaint", phone="13900000000")
    c = _create(client, ADMIN, category="billing", priority="low")
    client.patch(f"/v1/tickets/{a['id']}", json={"owner": "me"}, headers=alice)
    client.patch(f"/v1/tickets/{c['id']}", json={"status": "resolved"}, headers=ADMIN)

    def ids(**params: object) -> list[int]:
        response = client.get("/v1/tickets", params=params, headers=alice)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert ids() == [c["id"], b["id"], a["id"]]
    assert ids(status="new,assigned") == ids(status=["new", "assigned"]) == [b["id"], a["id"]]
    assert ids(owner="me") == [a["id"]] and ids(category="complaint") == [b["id"]]
    assert ids(unassigned="true") == [c["id"], b["id"]]
    assert ids(q="红灯") == [a["id"]] and ids(phone="13900000000") == [b["id"]]
    assert ids(sort="-priority") == [b["id"], a["id"], c["id"]]
    page = client.get("/v1/tickets", params={"limit": 1, "offset": 1}, headers=alice).json()
    assert [t["id"] for t in page["items"]] == [b["id"]] and page["total"] == 3
    assert ids(overdue="true") == []
    clock.current = NOW + timedelta(hours=100)  # every resolution target has passed
    assert ids(overdue="true") == [b["id"], a["id"]] and ids(overdue="false") == [c["id"]]


def test_the_dashboard_counts_today(client: TestClient, clock: ManualClock) -> None:
    with client.app.state.services.sessions() as session:  # type: ignore[attr-defined]
        def call(at: datetime, outcome: str | None = None) -> str:
            record = store.start_call(session, codec="pcm16", sample_rate=16000, now=at)
            if outcome is not None:
                store.end_call(session, call_id=record.id, outcome=outcome, now=at + timedelta(minutes=3))
            return record.id

        call(datetime(2026, 11, 21, 15, 0, tzinfo=UTC))  # 23:00 yesterday, local time
        call(datetime(2026, 11, 22, 1, 10, tzinfo=UTC), "ticket")  # 09:10
        escalated = store.start_call(session, codec="pcm16", sample_rate=16000, now=datetime(2026, 11, 22, 2, 5,
                                                                                               tzinfo=UTC))
        store.raise_escalation(session, call_id=escalated.id, reason="caller_request",
                               now=datetime(2026, 11, 22, 2, 6, tzinfo=UTC))  # 10:06
        store.end_call(session, call_id=escalated.id, outcome="escalated", now=datetime(2026, 11, 22, 2, 20, tzinfo=UTC))
        waiting = call(datetime(2026, 11, 22, 2, 30, tzinfo=UTC))  # 10:30, still on the line
        store.raise_escalation(session, call_id=waiting, reason="caller_frustrated",
                               now=datetime(2026, 11, 22, 2, 40, tzinfo=UTC))  # 10:40
        store.open_ticket(session, call_id=None, category="broadband", slots={}, summary="",
                          now=datetime(2026, 11, 21, 20, 0, tzinfo=UTC))  # first response due 00:00 UTC: missed
        store.open_ticket(session, call_id=None, category="complaint", slots={}, summary="", now=NOW)
        billing = store.open_ticket(session, call_id=None, category="billing", slots={}, summary="",
                                    now=datetime(2026, 11, 20, 0, 0, tzinfo=UTC))
        store.update_ticket(session, ticket_id=billing.id, status="resolved", now=NOW, actor="alice")
    board = client.get("/v1/dashboard", headers=_agent(client, "alice"))
    assert board.status_code == 200, board.text
    body = board.json()
    hours = body.pop("hours")
    assert body == {
        "day": "2026-11-22", "calls_today": 3, "calls_ended_today": 2, "resolved_without_person": 0.5,
        "escalations_waiting": 1, "longest_wait_s": 1200.0,
        "tickets_by_category": {"broadband": 1, "complaint": 1, "billing": 1},
        "tickets_by_status": {"new": 2, "resolved": 1}, "sla_breaches": 1,
    }
    assert len(hours) == 24 and [h["hour"] for h in hours] == list(range(24))
    assert {h["hour"]: (h["calls"], h["escalations"]) for h in hours if h["calls"] or h["escalations"]} == {
        9: (1, 0), 10: (2, 2)}


def test_the_routes_are_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/v1/tickets"]) and {"get", "patch"} <= set(paths["/v1/tickets/{ticket_id}"])
    assert "post" in paths["/v1/tickets/{ticket_id}/notes"] and "get" in paths["/v1/tickets/{ticket_id}/events"]
    listed = paths["/v1/tickets"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["$ref"].endswith("/TicketPage")
    assert paths["/v1/dashboard"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/DashboardPublic")
