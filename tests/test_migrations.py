"""Migrations and database plumbing on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from gateway.db import (
    DatabaseUrlError,
    create_engine_for,
    current_revision,
    downgrade_engine,
    head_revision,
    migrate,
    migrate_engine,
    ping,
    session_factory,
)
from ticketing import store
from ticketing.models import Base as TicketingBase
from ticketing.models import JsonDict, UtcDateTime

TICKETING_TABLES = {
    "call_records",
    "call_turns",
    "tickets",
    "ticket_events",
    "ticket_number_counters",
    "escalations",
}
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def test_migrations_apply_to_an_empty_database(database_url: str) -> None:
    engine = create_engine_for(database_url)
    try:
        assert current_revision(engine) is None
        migrate(database_url)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert TICKETING_TABLES <= tables
        assert {"kb_documents", "kb_chunks"} <= tables
    finally:
        engine.dispose()


def test_migrations_are_idempotent_and_keep_data(database_url: str) -> None:
    migrate(database_url)
    engine = create_engine_for(database_url)
    try:
        with session_factory(engine)() as session:
            ticket = store.open_ticket(
                session, call_id=None, category="billing", slots={"phone": "13900001111"}, summary="", now=NOW
            )
        migrate(database_url)
        migrate(database_url)
        assert current_revision(engine) == head_revision()
        with session_factory(engine)() as session:
            assert store.get_ticket(session, ticket_id=ticket.id).number == ticket.number
    finally:
        engine.dispose()


def test_ticketing_migration_matches_the_models(database_url: str) -> None:
    """Autogenerate finds nothing to change in the ticketing tables: models and 0001 agree."""
    migrate(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, TicketingBase.metadata)
    finally:
        engine.dispose()

    def touches_ticketing(diff: object) -> bool:
        return any(name in repr(diff) for name in TICKETING_TABLES)

    assert [d for d in diffs if touches_ticketing(d)] == []


def test_concurrent_migrations_on_postgresql(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrent start-up of several gateways is a PostgreSQL deployment")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(database_url)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = create_engine_for(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_sqlite_engine_creates_its_folder_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "hotline.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert path.exists()
        assert ping(engine)
    finally:
        engine.dispose()


def test_ping_is_false_when_the_database_is_unreachable() -> None:
    engine = create_engine_for("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        assert ping(engine) is False
    finally:
        engine.dispose()


def test_postgres_urls_use_psycopg3() -> None:
    engine = create_engine_for("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["mysql://root@localhost/x", "not a url"])
def test_unsupported_database_urls_are_refused(url: str) -> None:
    with pytest.raises(DatabaseUrlError):
        create_engine_for(url)


def test_accounts_migration_matches_the_model(database_url: str) -> None:
    """Autogenerate finds nothing to change in the accounts table: the model and 0004 agree."""
    from gateway.accounts import Base as AccountsBase

    migrate(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, AccountsBase.metadata)
    finally:
        engine.dispose()
    assert [d for d in diffs if "accounts" in repr(d)] == []


def test_accounts_migration_downgrades(database_url: str) -> None:
    migrate(database_url)
    engine = create_engine_for(database_url)
    try:
        downgrade_engine(engine, "0003_kb_versions")
        assert "accounts" not in inspect(engine).get_table_names()
        assert "actor" not in {c["name"] for c in inspect(engine).get_columns("ticket_events")}
        migrate(database_url)
        assert "accounts" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


# ---------------------------------------------------------------- 0006: tickets that people work

_OLD_TICKETS = sa.table(
    "tickets", sa.column("id", sa.Integer()), sa.column("number", sa.String()), sa.column("category", sa.String()),
    sa.column("status", sa.String()), sa.column("slots", JsonDict), sa.column("phone", sa.String()),
    sa.column("summary", sa.Text()), sa.column("created_at", UtcDateTime()), sa.column("due_at", UtcDateTime()),
)
_OLD_EVENTS = sa.table(
    "ticket_events", sa.column("ticket_id", sa.Integer()), sa.column("kind", sa.String()),
    sa.column("at", UtcDateTime()), sa.column("detail", JsonDict), sa.column("actor", sa.String()),
)


def _seed_before_0006(engine: sa.Engine) -> None:
    hour = timedelta(hours=1)
    tickets = [
        {"id": 1, "number": "2611220001", "category": "complaint", "status": "open", "slots": {"phone": "13800000001"},
         "phone": "13800000001", "summary": "投诉", "created_at": NOW, "due_at": NOW + 72 * hour},
        {"id": 2, "number": "2611220002", "category": "broadband", "status": "resolved", "slots": {},
         "phone": None, "summary": "断网", "created_at": NOW, "due_at": NOW + 24 * hour},
    ]
    events = [
        {"ticket_id": 1, "kind": "created", "at": NOW, "detail": {"number": "2611220001"}, "actor": None},
        {"ticket_id": 2, "kind": "created", "at": NOW, "detail": {"number": "2611220002"}, "actor": None},
        {"ticket_id": 2, "kind": "note", "at": NOW + hour, "actor": None,
         "detail": {"text": "details updated: phone", "slots": {"phone": {"from": None, "to": "13800000002"}}}},
        {"ticket_id": 2, "kind": "status_changed", "at": NOW + 2 * hour, "detail": {"from": "open", "to": "resolved"},
         "actor": "alice"},
    ]
    with engine.begin() as connection:
        connection.execute(_OLD_TICKETS.insert(), tickets)
        connection.execute(_OLD_EVENTS.insert(), events)


def test_ticket_workflow_migration_upgrades_and_downgrades_with_data(database_url: str) -> None:
    engine = create_engine_for(database_url)
    try:
        migrate_engine(engine, "0005_escalation_desk")
        _seed_before_0006(engine)
        migrate_engine(engine)
        with session_factory(engine)() as session:
            complaint = store.get_ticket(session, ticket_id=1, now=NOW)
            resolved = store.get_ticket(session, ticket_id=2, now=NOW)
        assert (complaint.status, complaint.priority, complaint.owner) == ("new", "high", None)
        assert complaint.resolution_due_at == NOW + timedelta(hours=72)
        assert complaint.first_response_due_at == NOW + timedelta(hours=2)
        assert complaint.first_responded_at is None and complaint.resolved_at is None
        assert (resolved.status, resolved.priority) == ("resolved", "normal")
        assert resolved.resolved_at == resolved.first_responded_at == NOW + timedelta(hours=2)
        assert resolved.updated_at == NOW + timedelta(hours=2)
        assert [e.kind for e in resolved.events] == ["created", "slots_updated", "status_changed"]
        with session_factory(engine)() as session:  # the new statuses are accepted by the database
            store.update_ticket(session, ticket_id=1, owner="bob", now=NOW, actor="lead")
            store.update_ticket(session, ticket_id=2, status="in_progress", now=NOW, actor="bob")
            store.update_ticket(session, ticket_id=2, status="pending_customer", now=NOW, actor="bob")

        downgrade_engine(engine, "0005_escalation_desk")
        columns = {c["name"] for c in inspect(engine).get_columns("tickets")}
        assert "due_at" in columns and not columns & {"priority", "owner", "resolution_due_at", "resolved_at"}
        with engine.connect() as connection:
            rows = connection.execute(sa.select(_OLD_TICKETS.c.id, _OLD_TICKETS.c.status).order_by("id")).all()
            kinds = connection.execute(sa.select(_OLD_EVENTS.c.kind)).scalars().all()
        assert [tuple(r) for r in rows] == [(1, "open"), (2, "in_progress")]
        assert set(kinds) == {"created", "status_changed", "note"} and len(kinds) == 8  # no event lost
        with engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):  # the old CHECK is back
            connection.execute(_OLD_TICKETS.update().where(_OLD_TICKETS.c.id == 1).values(status="new"))
        migrate_engine(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
