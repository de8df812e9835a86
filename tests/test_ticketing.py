"""Ticketing store on a real SQLite file and a real PostgreSQL database (see conftest `database_url`)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ManualClock
from pydantic import ValidationError
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from ticketing import store
from ticketing.errors import (
    CallAlreadyEnded,
    CallAlreadyExists,
    CallNotFound,
    EscalationNotFound,
    EscalationTaken,
    InvalidInputError,
    InvalidStatusTransition,
    NaiveDatetimeError,
    TicketNotFound,
)
from ticketing.models import Ticket, TicketEvent, TicketNumberCounter
from ticketing.schemas import TicketCreate
from ticketing.sla import SlaPolicy


def _start_call(session: Session, clock: ManualClock, caller: str | None = "13812345678") -> str:
    call = store.start_call(
        session, codec="pcmu", sample_rate=8000, caller_id=caller, dialect="mandarin", now=clock.now()
    )
    return call.id


def _open(session: Session, clock: ManualClock, call_id: str | None = None, **slots: str):
    return store.open_ticket(
        session,
        call_id=call_id,
        category="broadband",
        slots={"phone": "13812345678", "address": "朝阳区建国路88号", "fault_type": "无法上网", **slots},
        summary="宽带无法上网",
        now=clock.now(),
    )


# ---------------------------------------------------------------- call records


def test_call_record_with_turns_round_trips(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    started = clock.now()
    with sessions() as session:
        call_id = _start_call(session, clock)
        store.add_turn(
            session,
            call_id=call_id,
            speaker="bot",
            text="您好，请问有什么可以帮您？",
            now=clock.advance(seconds=1),
        )
        store.add_turn(
            session,
            call_id=call_id,
            speaker="caller",
            text="我家宽带断了，电话138****5678",
            dialect="cantonese",
            now=clock.advance(seconds=4),
        )
        store.add_turn(
            session,
            call_id=call_id,
            speaker="bot",
            text="好的，我帮您",
            interrupted=True,
            now=clock.advance(seconds=2),
        )
        ended = store.end_call(session, call_id=call_id, outcome="ticket", now=clock.advance(seconds=30))
    assert ended.ended_at == started + timedelta(seconds=37)

    with sessions() as session:
        call = store.get_call(session, call_id=call_id)
    assert call.caller_id == "138****5678"
    assert (call.codec, call.sample_rate, call.dialect, call.outcome) == ("pcmu", 8000, "mandarin", "ticket")
    assert call.started_at == started and call.started_at.tzinfo is not None
    assert call.turn_count == 3
    assert [(t.seq, t.speaker, t.interrupted) for t in call.turns] == [
        (1, "bot", False),
        (2, "caller", False),
        (3, "bot", True),
    ]
    assert call.turns[1].text == "我家宽带断了，电话138****5678"
    assert call.turns[1].dialect == "cantonese"
    assert call.turns[2].at == started + timedelta(seconds=7)
    assert call.turns[2].at.utcoffset() == timedelta(0)


def test_call_errors_are_specific(session: Session, clock: ManualClock) -> None:
    with pytest.raises(CallNotFound, match="no call record 'missing'"):
        store.get_call(session, call_id="missing")
    with pytest.raises(CallNotFound):
        store.add_turn(session, call_id="missing", speaker="caller", text="喂", now=clock.now())
    with pytest.raises(CallNotFound):
        store.end_call(session, call_id="missing", outcome="abandoned", now=clock.now())
    call_id = _start_call(session, clock)
    with pytest.raises(InvalidInputError, match="unknown speaker 'operator'"):
        store.add_turn(session, call_id=call_id, speaker="operator", text="喂", now=clock.now())
    with pytest.raises(CallAlreadyExists):
        store.start_call(session, codec="pcm16", sample_rate=16000, call_id=call_id, now=clock.now())
    store.end_call(session, call_id=call_id, outcome="abandoned", now=clock.now())
    with pytest.raises(CallAlreadyEnded):
        store.end_call(session, call_id=call_id, outcome="abandoned", now=clock.now())
    assert store.get_call(session, call_id=call_id).turns == []


def test_list_calls_newest_first(session: Session, clock: ManualClock) -> None:
    first = _start_call(session, clock)
    clock.advance(minutes=1)
    second = _start_call(session, clock, caller=None)
    calls = store.list_calls(session, limit=10)
    assert [c.id for c in calls] == [second, first]
    assert calls[0].caller_id is None


def test_naive_timestamps_are_rejected(session: Session) -> None:
    with pytest.raises(NaiveDatetimeError, match="has no timezone"):
        store.start_call(session, codec="pcmu", sample_rate=8000, now=datetime(2026, 1, 1, 12, 0))


# ---------------------------------------------------------------- tickets


def test_open_ticket_commits_ticket_and_event_in_one_transaction(
    migrated_engine: Engine, sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    with sessions() as session:
        call_id = _start_call(session, clock)
    log: list[str] = []
    listeners = {
        "begin": lambda *_: log.append("BEGIN"),
        "commit": lambda *_: log.append("COMMIT"),
        "rollback": lambda *_: log.append("ROLLBACK"),
        "before_cursor_execute": lambda _c, _cur, statement, *_: log.append(statement.split("(")[0].strip()),
    }
    for name, listener in listeners.items():
        event.listen(migrated_engine, name, listener)
    try:
        with sessions() as session:
            ticket = _open(session, clock, call_id=call_id)
    finally:
        for name, listener in listeners.items():
            event.remove(migrated_engine, name, listener)

    writes = [entry for entry in log if entry.startswith(("INSERT", "UPDATE", "DELETE", "COMMIT", "BEGIN"))]
    assert writes.count("COMMIT") == 1
    assert "ROLLBACK" not in log
    inside = writes[writes.index("BEGIN") + 1 : writes.index("COMMIT")]
    assert any(statement.startswith("INSERT INTO ticket_number_counters") for statement in inside)
    assert "INSERT INTO tickets" in inside and "INSERT INTO ticket_events" in inside

    with sessions() as other:
        stored = store.get_ticket(other, ticket_id=ticket.id, now=clock.now())
    assert stored == ticket
    assert [e.kind for e in stored.events] == ["created"]
    assert stored.events[0].detail == {"number": ticket.number, "category": "broadband", "priority": "normal"}
    assert stored.call_id == call_id


def test_failed_open_leaves_nothing_behind(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    with sessions() as session:
        with pytest.raises(CallNotFound):
            _open(session, clock, call_id="no-such-call")
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
        assert session.scalar(select(func.count()).select_from(TicketEvent)) == 0
        assert session.scalar(select(func.count()).select_from(TicketNumberCounter)) == 0
        # The number taken by the failed attempt was given back.
        assert _open(session, clock).number == "2611220001"


def test_ticket_fields_phone_and_sla(session: Session, clock: ManualClock) -> None:
    ticket = _open(session, clock)
    assert ticket.status == "new" and ticket.category == "broadband" and ticket.priority == "normal"
    assert ticket.phone == "13812345678"  # the ticket keeps the full callback number
    assert ticket.address == "朝阳区建国路88号"
    assert ticket.slots["fault_type"] == "无法上网"
    assert ticket.created_at == clock.now()
    assert ticket.due_at == ticket.resolution_due_at == clock.now() + timedelta(hours=24)
    assert ticket.first_response_due_at == clock.now() + timedelta(hours=4)
    assert ticket.owner is None and ticket.first_responded_at is None and ticket.resolved_at is None

    fast = SlaPolicy.from_hours({"billing": 4})
    billing = store.open_ticket(
        session, call_id=None, category="billing", slots={}, summary="多扣费", now=clock.now(), sla=fast
    )
    assert billing.due_at == clock.now() + timedelta(hours=4)
    assert billing.phone is None and billing.address is None
    with pytest.raises(ValueError, match="unknown ticket category 'fax'"):
        SlaPolicy.from_hours({"fax": 1})


def test_ticket_numbers_follow_the_local_day(session: Session, clock: ManualClock) -> None:
    assert [_open(session, clock).number for _ in range(3)] == ["2611220001", "2611220002", "2611220003"]
    # 16:30 UTC is already the next day in China (UTC+8): a new day starts again at 0001.
    clock.current = datetime(2026, 11, 22, 16, 30, tzinfo=UTC)
    assert _open(session, clock).number == "2611230001"
    assert store.get_ticket_by_number(session, number="261123-0001").number == "2611230001"


def test_ticket_numbers_unique_under_concurrent_opens(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    threads_n, per_thread = 4, 8
    barrier = threading.Barrier(threads_n)
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def open_many() -> None:
        try:
            barrier.wait()
            with sessions() as session:
                for _ in range(per_thread):
                    number = _open(session, clock).number
                    with lock:
                        numbers.append(number)
        except BaseException as error:  # reported below, with the thread's traceback
            errors.append(error)

    threads = [threading.Thread(target=open_many) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = {f"261122{seq:04d}" for seq in range(1, threads_n * per_thread + 1)}
    assert sorted(numbers) == sorted(expected)
    with sessions() as session:
        assert store.count_tickets(session) == threads_n * per_thread


def test_unknown_ticket_raises(session: Session, clock: ManualClock) -> None:
    with pytest.raises(TicketNotFound, match="no ticket 4242"):
        store.get_ticket(session, ticket_id=4242)
    with pytest.raises(TicketNotFound):
        store.get_ticket_by_number(session, number="2611229999")
    with pytest.raises(TicketNotFound):
        store.update_ticket_status(session, ticket_id=4242, status="closed", now=clock.now())
    with pytest.raises(TicketNotFound):
        store.add_ticket_note(session, ticket_id=4242, text="回访", now=clock.now())


def test_status_change_adds_an_event(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    with sessions() as session:
        ticket = _open(session, clock)
        store.update_ticket_status(
            session, ticket_id=ticket.id, status="in_progress", now=clock.advance(hours=1)
        )
        store.add_ticket_note(session, ticket_id=ticket.id, text="已派装维", now=clock.advance(minutes=5))
        resolved = store.update_ticket_status(
            session, ticket_id=ticket.id, status="resolved", note="光猫已更换", now=clock.advance(hours=2)
        )
    assert resolved.status == "resolved"
    with sessions() as session:
        stored = store.get_ticket(session, ticket_id=ticket.id)
    assert [e.kind for e in stored.events] == ["created", "status_changed", "note", "status_changed"]
    assert stored.events[1].detail == {"from": "new", "to": "in_progress"}
    assert stored.events[3].detail == {"from": "in_progress", "to": "resolved", "note": "光猫已更换"}
    assert stored.events[3].at == clock.now()


def test_corrected_slots_update_the_ticket_with_an_event(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    with sessions() as session:
        ticket = _open(session, clock)
        updated = store.update_ticket_slots(
            session,
            ticket_id=ticket.id,
            slots={"phone": "13987654321", "fault_type": "无法上网"},
            now=clock.advance(seconds=20),
        )
        unchanged = store.update_ticket_slots(
            session, ticket_id=ticket.id, slots={"phone": "13987654321"}, now=clock.now()
        )
    assert updated.phone == "13987654321" and updated.slots["phone"] == "13987654321"
    assert updated.address == ticket.address and updated.number == ticket.number
    assert unchanged.events == updated.events
    with sessions() as session:
        stored = store.get_ticket(session, ticket_id=ticket.id)
    assert stored.phone == "13987654321"
    assert [e.kind for e in stored.events] == ["created", "slots_updated"]
    assert stored.events[1].actor is None
    assert stored.events[1].detail["slots"] == {"phone": {"from": "13812345678", "to": "13987654321"}}
    with sessions() as session:
        store.update_ticket_status(session, ticket_id=ticket.id, status="closed", now=clock.now())
        with pytest.raises(InvalidInputError, match="is closed"):
            store.update_ticket_slots(session, ticket_id=ticket.id, slots={"phone": "1"}, now=clock.now())
        with pytest.raises(TicketNotFound):
            store.update_ticket_slots(session, ticket_id=4242, slots={}, now=clock.now())


def test_invalid_status_change_is_refused_without_an_event(session: Session, clock: ManualClock) -> None:
    ticket = _open(session, clock)
    store.update_ticket_status(session, ticket_id=ticket.id, status="closed", now=clock.now())
    with pytest.raises(InvalidStatusTransition, match="cannot go from 'closed' to 'resolved'"):
        store.update_ticket_status(session, ticket_id=ticket.id, status="resolved", now=clock.now())
    with pytest.raises(InvalidInputError, match="unknown ticket status 'open'"):
        store.update_ticket_status(session, ticket_id=ticket.id, status="open", now=clock.now())
    with pytest.raises(InvalidInputError, match="unknown ticket status 'done'"):
        store.update_ticket_status(session, ticket_id=ticket.id, status="done", now=clock.now())
    assert [e.kind for e in store.get_ticket(session, ticket_id=ticket.id).events] == [
        "created",
        "status_changed",
    ]


def test_bad_ticket_input_is_refused(session: Session, clock: ManualClock) -> None:
    with pytest.raises(InvalidInputError, match="unknown ticket category 'fax'"):
        store.open_ticket(session, call_id=None, category="fax", slots={}, summary="", now=clock.now())
    with pytest.raises(InvalidInputError, match="slot 'phone' must be a string"):
        store.open_ticket(
            session, call_id=None, category="billing", slots={"phone": 138}, summary="", now=clock.now()
        )
    with pytest.raises(InvalidInputError, match="limit must be between"):
        store.list_tickets(session, limit=0)
    with pytest.raises(ValidationError):
        TicketCreate.model_validate({"category": "fax"})
    assert store.count_tickets(session) == 0


def test_list_tickets_filters_and_pages(session: Session, clock: ManualClock) -> None:
    opened = [_open(session, clock) for _ in range(3)]
    clock.advance(minutes=1)
    complaint = store.open_ticket(
        session, call_id=None, category="complaint", slots={}, summary="投诉客服", now=clock.now()
    )
    store.update_ticket_status(session, ticket_id=opened[0].id, status="in_progress", now=clock.now())
    assert [t.id for t in store.list_tickets(session, limit=2)] == [complaint.id, opened[2].id]
    assert [t.id for t in store.list_tickets(session, limit=2, offset=2)] == [opened[1].id, opened[0].id]
    assert [t.id for t in store.list_tickets(session, status="in_progress")] == [opened[0].id]
    assert [t.id for t in store.list_tickets(session, category="complaint")] == [complaint.id]
    assert store.count_tickets(session, status="new") == 3


# ---------------------------------------------------------------- escalations


def test_escalation_queue(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    with sessions() as session:
        call_id = _start_call(session, clock)
        first = store.raise_escalation(
            session, call_id=call_id, reason="caller asked for a human", context={"turns": 3}, now=clock.now(),
            gateway="gw-a",
        )
        second = store.raise_escalation(
            session, call_id=None, reason="repeated failure", now=clock.advance(seconds=5)
        )
        with pytest.raises(CallNotFound):
            store.raise_escalation(session, call_id="missing", reason="x", now=clock.now())
    with sessions() as session:
        assert [e.id for e in store.list_escalations(session, status="waiting")] == [first.id, second.id]
        with pytest.raises(InvalidInputError, match="needs the agent"):
            store.update_escalation_status(session, escalation_id=first.id, status="accepted", now=clock.now())
        accepted = store.update_escalation_status(
            session, escalation_id=first.id, status="accepted", now=clock.advance(seconds=10), agent="li"
        )
        assert accepted.status == "accepted" and accepted.updated_at == clock.now()
        assert accepted.agent == "li" and accepted.accepted_at == clock.now() and accepted.gateway == "gw-a"
        assert accepted.context == {"turns": 3} and accepted.call_id == call_id
        with pytest.raises(EscalationTaken, match="taken by li"):
            store.update_escalation_status(session, escalation_id=first.id, status="accepted", now=clock.now(),
                                           agent="wang")
        with pytest.raises(EscalationNotFound):
            store.update_escalation_status(session, escalation_id=999, status="closed", now=clock.now())
        with pytest.raises(EscalationNotFound):
            store.get_escalation(session, escalation_id=999)
        assert [e.id for e in store.list_escalations(session, status="waiting")] == [second.id]
        requeued = store.update_escalation_status(session, escalation_id=first.id, status="waiting", now=clock.now())
        assert requeued.agent is None  # the agent's console went away: the call waits for another
        store.update_escalation_status(session, escalation_id=first.id, status="accepted", now=clock.now(),
                                       agent="wang")
        back = store.update_escalation_status(session, escalation_id=first.id, status="handed_back", now=clock.now())
        assert back.agent == "wang"
        with pytest.raises(InvalidStatusTransition, match="allowed from 'handed_back': closed"):
            store.update_escalation_status(session, escalation_id=first.id, status="waiting", now=clock.now())
        gone = store.update_escalation_status(session, escalation_id=second.id, status="abandoned", now=clock.now())
        assert gone.status == "abandoned" and store.list_escalations(session, status="waiting") == []


def test_mask_caller_id() -> None:
    assert store.mask_caller_id("13812345678") == "138****5678"
    assert store.mask_caller_id("138****5678") == "138****5678"
    assert store.mask_caller_id("10086") == "***86"
