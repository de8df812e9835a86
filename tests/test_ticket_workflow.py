"""Tickets that people work, on a real SQLite file and a real PostgreSQL database: the status machine,
owners, priorities, SLA due times and the overdue flag, events with actors, lists, the caller who calls again."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from conftest import CLOCK_START, ManualClock
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dialogue.base import OpenTicket
from dialogue.manager import CallState
from gateway import events
from gateway.db import session_factory
from gateway.desk import StoreDesk
from gateway.settings import Settings
from ticketing import store
from ticketing.errors import ConcurrentUpdateError, InvalidInputError, InvalidStatusTransition
from ticketing.models import TicketStatus
from ticketing.store import TICKET_TRANSITIONS, TicketQuery

START = CLOCK_START






def _open(session: Session, clock: ManualClock, category: str = "broadband", phone: str = "13812345678", **kw):
    return store.open_ticket(session, call_id=None, category=category, slots={"phone": phone},
                             summary=kw.pop("summary", "宽带无法上网"), now=clock.now(), **kw)


# ---------------------------------------------------------------- the status machine

# How to bring a new ticket into each status, by a person.
_PATHS: dict[TicketStatus, list[dict[str, object]]] = {
    TicketStatus.NEW: [],
    TicketStatus.ASSIGNED: [{"owner": "alice"}],
    TicketStatus.IN_PROGRESS: [{"status": "in_progress"}],
    TicketStatus.PENDING_CUSTOMER: [{"status": "in_progress"}, {"status": "pending_customer"}],
    TicketStatus.RESOLVED: [{"status": "resolved"}],
    TicketStatus.CLOSED: [{"status": "closed"}],
}
_MOVES = [(a, b) for a in TicketStatus for b in TicketStatus if a is not b]


def _ticket_in(session: Session, clock: ManualClock, status: TicketStatus):
    ticket = _open(session, clock)
    for step in _PATHS[status]:
        ticket = store.update_ticket(session, ticket_id=ticket.id, now=clock.now(), actor="alice", **step)
    assert ticket.status is status
    return ticket


@pytest.mark.parametrize(("current", "requested"), _MOVES, ids=[f"{a}->{b}" for a, b in _MOVES])
def test_every_move_is_allowed_or_refused_as_the_table_says(
    session: Session, clock: ManualClock, current: TicketStatus, requested: TicketStatus
) -> None:
    ticket = _ticket_in(session, clock, current)
    events = len(ticket.events)
    if requested is TicketStatus.ASSIGNED:
        change: dict[str, object] = {"status": requested, "owner": "bob"}  # assigning needs an owner
    else:
        change = {"status": requested}
    if requested in TICKET_TRANSITIONS[current]:
        moved = store.update_ticket(session, ticket_id=ticket.id, now=clock.now(), actor="bob", **change)
        assert moved.status is requested
        assert moved.events[-1].kind == "status_changed" and moved.events[-1].actor == "bob"
    else:
        with pytest.raises(InvalidStatusTransition) as refused:
            store.update_ticket(session, ticket_id=ticket.id, now=clock.now(), actor="bob", **change)
        assert refused.value.allowed == sorted(s.value for s in TICKET_TRANSITIONS[current])
        stored = store.get_ticket(session, ticket_id=ticket.id)
        assert stored.status is current and len(stored.events) == events and stored.owner == ticket.owner


def test_the_lifecycle_sets_and_clears_its_times(session: Session, clock: ManualClock) -> None:
    ticket = _open(session, clock)
    assert ticket.first_responded_at is None and ticket.updated_at == START
    assigned = store.update_ticket(session, ticket_id=ticket.id, owner="alice", now=clock.advance(minutes=30),
                                   actor="lead")
    assert (assigned.status, assigned.owner) == ("assigned", "alice")
    assert assigned.first_responded_at == clock.now()
    assert [(e.kind, e.detail, e.actor) for e in assigned.events[1:]] == [
        ("assigned", {"from": None, "to": "alice"}, "lead"),
        ("status_changed", {"from": "new", "to": "assigned"}, "lead"),
    ]
    working = store.update_ticket(session, ticket_id=ticket.id, status="in_progress", now=clock.advance(hours=1),
                                  actor="alice")
    assert working.first_responded_at == START + timedelta(minutes=30)  # the first response stays the first
    resolved = store.update_ticket(session, ticket_id=ticket.id, status="resolved", note="光猫已更换",
                                   now=clock.advance(hours=1), actor="alice")
    assert resolved.resolved_at == clock.now() and resolved.updated_at == clock.now()
    assert resolved.events[-1].detail == {"from": "in_progress", "to": "resolved", "note": "光猫已更换"}
    closed = store.update_ticket(session, ticket_id=ticket.id, status="closed", now=clock.advance(days=1))
    assert closed.resolved_at == START + timedelta(hours=2, minutes=30)
    reopened = store.update_ticket(session, ticket_id=ticket.id, status="in_progress", now=clock.advance(hours=1),
                                   actor="alice")
    assert reopened.status == "in_progress" and reopened.resolved_at is None and reopened.owner == "alice"


def test_unassigning_puts_an_assigned_ticket_back_in_the_queue(session: Session, clock: ManualClock) -> None:
    ticket = store.update_ticket(session, ticket_id=_open(session, clock).id, owner="alice", now=clock.now())
    back = store.update_ticket(session, ticket_id=ticket.id, owner=None, now=clock.now(), actor="lead")
    assert (back.status, back.owner) == ("new", None)
    assert back.events[-2].detail == {"from": "alice", "to": None}
    again = store.update_ticket(session, ticket_id=ticket.id, owner="bob", now=clock.now())
    by_status = store.update_ticket(session, ticket_id=again.id, status="new", now=clock.now())
    assert (by_status.status, by_status.owner) == ("new", None)
    working = store.update_ticket(session, ticket_id=ticket.id, owner="bob", status="in_progress", now=clock.now())
    kept = store.update_ticket(session, ticket_id=working.id, owner=None, now=clock.now())
    assert (kept.status, kept.owner) == ("in_progress", None)  # only `assigned` follows the owner
    with pytest.raises(InvalidInputError, match="needs an owner"):
        store.update_ticket(session, ticket_id=_open(session, clock).id, status="assigned", now=clock.now())


def test_asking_for_the_status_a_ticket_has_changes_nothing(session: Session, clock: ManualClock) -> None:
    ticket = _ticket_in(session, clock, TicketStatus.IN_PROGRESS)
    same = store.update_ticket(session, ticket_id=ticket.id, status="in_progress", now=clock.advance(hours=1))
    assert same.events == ticket.events and same.updated_at == ticket.updated_at


def test_priority_defaults_from_the_category_and_changes_with_an_event(session: Session, clock: ManualClock) -> None:
    assert _open(session, clock, category="complaint").priority == "high"
    assert _open(session, clock, category="billing").priority == "normal"
    assert _open(session, clock, category="billing", priority="urgent").priority == "urgent"
    ticket = _open(session, clock)
    raised = store.update_ticket(session, ticket_id=ticket.id, priority="urgent", now=clock.now(), actor="alice")
    assert raised.priority == "urgent"
    assert (raised.events[-1].kind, raised.events[-1].detail) == ("priority_changed", {"from": "normal", "to": "urgent"})
    assert raised.first_responded_at is None  # a priority is not an answer to the customer
    with pytest.raises(InvalidInputError, match="unknown priority 'asap'"):
        store.update_ticket(session, ticket_id=ticket.id, priority="asap", now=clock.now())


def test_concurrent_changes_move_a_ticket_once(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    with sessions() as session:
        ticket = _open(session, clock)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def take(name: str) -> None:
        barrier.wait()
        with sessions() as session:
            try:
                store.update_ticket(session, ticket_id=ticket.id, owner=name, now=clock.now(), actor=name)
                outcomes.append("ok")
            except ConcurrentUpdateError:
                outcomes.append("conflict")

    threads = [threading.Thread(target=take, args=(f"agent{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with sessions() as session:
        stored = store.get_ticket(session, ticket_id=ticket.id)
    assigned = [e for e in stored.events if e.kind == "assigned"]
    # Every change that succeeded is recorded, and each saw the owner before it (no lost update).
    assert len(assigned) == outcomes.count("ok") >= 1
    assert [e.detail["from"] for e in assigned] == [None, *(e.detail["to"] for e in assigned[:-1])]
    assert stored.owner == assigned[-1].detail["to"]


# ---------------------------------------------------------------- SLA and overdue


def test_sla_due_times_come_from_settings(session: Session, clock: ManualClock) -> None:
    settings = Settings(sla={"first_response_hours": {"complaint": 1}, "resolution_hours": {"billing": 5}})  # type: ignore[arg-type]
    policy = settings.sla.policy()
    complaint = _open(session, clock, category="complaint", sla=policy)
    billing = _open(session, clock, category="billing", sla=policy)
    assert complaint.first_response_due_at == START + timedelta(hours=1)
    assert complaint.resolution_due_at == START + timedelta(hours=72)  # the default
    assert billing.first_response_due_at == START + timedelta(hours=8)
    assert billing.resolution_due_at == START + timedelta(hours=5)
    with pytest.raises(ValueError, match="unknown ticket category 'fax'"):
        Settings(sla={"resolution_hours": {"fax": 3}})  # type: ignore[arg-type]


def test_the_sessions_carry_the_configured_policy(migrated_engine: Engine, clock: ManualClock) -> None:
    policy = Settings(sla={"first_response_hours": {"broadband": 1}}).sla.policy()  # type: ignore[arg-type]
    with session_factory(migrated_engine, info={"sla": policy})() as session:
        assert _open(session, clock).first_response_due_at == START + timedelta(hours=1)


def test_overdue_follows_the_clock_and_what_was_met(session: Session, clock: ManualClock) -> None:
    ticket = _open(session, clock)  # broadband: first response in 4 h, resolution in 24 h
    assert store.get_ticket(session, ticket_id=ticket.id, now=clock.advance(hours=3, minutes=59)).overdue is False
    assert store.get_ticket(session, ticket_id=ticket.id, now=clock.advance(minutes=2)).overdue is True
    responded = store.add_ticket_note(session, ticket_id=ticket.id, text="已联系用户", now=clock.now(), actor="alice")
    assert responded.overdue is False and responded.first_responded_at == clock.now()
    assert store.get_ticket(session, ticket_id=ticket.id, now=clock.advance(hours=21)).overdue is True
    resolved = store.update_ticket(session, ticket_id=ticket.id, status="resolved", now=clock.now(), actor="alice")
    assert resolved.overdue is False  # resolved late, but resolved
    assert store.get_ticket(session, ticket_id=ticket.id).overdue is None  # no clock, no verdict


def test_the_hotline_does_not_count_as_a_first_response(session: Session, clock: ManualClock) -> None:
    ticket = _open(session, clock)
    noted = store.add_ticket_note(session, ticket_id=ticket.id, text="来电人再次来电", now=clock.now())
    assert noted.first_responded_at is None and noted.events[-1].actor is None
    by_agent = _open(session, clock, actor="alice")
    assert by_agent.first_responded_at == clock.now() and by_agent.events[0].actor == "alice"


# ---------------------------------------------------------------- lists


def test_lists_filter_sort_and_page(session: Session, clock: ManualClock) -> None:
    a = _open(session, clock, summary="宽带断网", phone="13800000001")
    b = _open(session, clock, category="complaint", summary="营业员态度差", phone="13800000002")
    c = _open(session, clock, category="billing", summary="多扣费", phone="13800000003", priority="low")
    clock.advance(minutes=1)
    d = store.open_ticket(session, call_id=None, category="broadband", slots={"address": "朝阳区建国路88号"},
                          summary="光猫红灯", now=clock.now(), priority="urgent")
    store.update_ticket(session, ticket_id=a.id, owner="alice", now=clock.now(), actor="lead")
    store.update_ticket(session, ticket_id=c.id, status="resolved", now=clock.now(), actor="bob")
    now = clock.advance(hours=5)  # past the first-response targets of a (met), b and d (not met)

    def ids(**kw: object) -> list[int]:
        return [t.id for t in store.search_tickets(session, query=TicketQuery(**kw), now=now).items]  # type: ignore[arg-type]

    assert ids() == [d.id, c.id, b.id, a.id]
    assert ids(statuses=("new", "assigned")) == [d.id, b.id, a.id]
    assert ids(category="complaint") == [b.id]
    assert ids(owner="alice") == [a.id] == ids(unassigned=False)
    assert ids(unassigned=True) == [d.id, c.id, b.id]
    assert ids(priority="urgent") == [d.id]
    assert ids(overdue=True) == [d.id, b.id]
    assert ids(overdue=False) == [c.id, a.id]
    assert ids(phone="138-0000-0002") == [b.id]
    assert ids(text="建国路") == [d.id] and ids(text="扣费") == [c.id] and ids(text=a.number) == [a.id]
    assert ids(text="100%") == []
    assert ids(sort="-priority") == [d.id, b.id, a.id, c.id]
    assert ids(sort="priority") == [c.id, a.id, b.id, d.id]
    assert ids(sort="due")[0] == a.id  # broadband is due first (24 h), the later-opened d after it
    page = store.search_tickets(session, query=TicketQuery(limit=2, offset=1), now=now)
    assert [t.id for t in page.items] == [c.id, b.id] and page.total == 4
    with pytest.raises(InvalidInputError, match="unknown sort"):
        ids(sort="colour")
    with pytest.raises(InvalidInputError, match="unknown ticket status"):
        ids(statuses=("open",))


# ---------------------------------------------------------------- the caller who calls again


def test_an_open_ticket_is_found_by_phone_and_category(session: Session, clock: ManualClock) -> None:
    ticket = _open(session, clock)
    assert store.find_open_ticket(session, phones=["138 1234 5678"], category="broadband").id == ticket.id
    assert store.find_open_ticket(session, phones=["13812345678"], category="billing") is None
    assert store.find_open_ticket(session, phones=[], category="broadband") is None
    store.update_ticket(session, ticket_id=ticket.id, status="resolved", now=clock.now())
    assert store.find_open_ticket(session, phones=["13812345678"], category="broadband") is None


async def test_the_desk_tells_a_caller_about_the_ticket_they_have(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    with sessions() as session:
        call = store.start_call(session, codec="pcm16", sample_rate=16000, now=clock.now())
        first = _open(session, clock)
        store.update_ticket(session, ticket_id=first.id, status="in_progress", now=clock.now(), actor="alice")
    told: list[events.ServerEvent] = []

    async def notify(event: events.ServerEvent) -> None:
        told.append(event)

    desk = StoreDesk(sessions, clock, CallState(call.id, caller_id="13812345678"), notify=notify)
    receipt = await desk.open_ticket(OpenTicket("broadband", {"address": "朝阳区"}, "宽带又断了"))
    assert (receipt.id, receipt.number, receipt.existing_status) == (first.id, first.number, "in_progress")
    assert told == [events.Ticket(id=first.id, number=first.number, category="broadband", existing=True,
                                  status="in_progress")]
    with sessions() as session:
        stored = store.get_ticket(session, ticket_id=first.id)
        assert store.count_tickets(session) == 1
    assert stored.events[-1].kind == "note" and "宽带又断了" in stored.events[-1].detail["text"]
    other = await desk.open_ticket(OpenTicket("billing", {}, "多扣费"))
    assert other.existing_status is None and other.id != first.id
    with sessions() as session:
        assert store.get_ticket(session, ticket_id=other.id).phone == "13812345678"  # the calling number
    fresh = StoreDesk(sessions, clock, CallState(call.id, caller_id="13812345678"), reuse_open=False)
    assert (await fresh.open_ticket(OpenTicket("broadband", {}, "再开一张"))).existing_status is None
