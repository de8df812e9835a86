"""Database plumbing: engines for SQLite and PostgreSQL, Alembic migrations, sessions, readiness."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
# Serialises concurrent `migrate` runs of several gateways starting against one PostgreSQL.
_MIGRATION_LOCK_KEY = 0x686F746C696E65  # "hotline"


class DatabaseUrlError(ValueError):
    """A database URL that is malformed or names a backend other than SQLite or PostgreSQL."""


def _parse_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DatabaseUrlError(f"not a database URL: {url!r}") from error
    backend = parsed.get_backend_name()
    if backend == "postgres":
        parsed = parsed.set(drivername="postgresql")
        backend = "postgresql"
    if backend == "postgresql":
        driver = parsed.get_driver_name()
        if driver != "psycopg":
            # psycopg 3 is the one PostgreSQL driver the project installs.
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        return parsed
    raise DatabaseUrlError(
        f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}: "
        "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
    )


def _is_sqlite_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or (url.query.get("mode") == "memory")


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a crash loses no committed transaction
    finally:
        cursor.close()


def create_engine_for(url: str | URL) -> Engine:
    """An engine for a SQLite file (folder created, WAL, foreign keys) or PostgreSQL via psycopg 3."""
    parsed = _parse_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, future=True)
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    if _is_sqlite_memory(parsed):
        # One shared connection, or every new connection would see a different empty database.
        engine = create_engine(parsed, connect_args=connect_args, poolclass=StaticPool)
    else:
        assert parsed.database is not None
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args=connect_args)
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _alembic_config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction to migrate in. On SQLite foreign keys are off meanwhile: batch mode copies a table
    and drops the old one, and dropping a table deletes (cascades to) the rows that refer to it."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside a transaction, or it is ignored
            connection.commit()
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                yield connection
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def migrate_engine(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision` (idempotent)."""
    with _migration_transaction(engine) as connection:
        command.upgrade(_alembic_config(connection), revision)


def downgrade_engine(engine: Engine, revision: str) -> None:
    """Downgrade the database behind `engine` to `revision` (an operator's way back from a release)."""
    with _migration_transaction(engine) as connection:
        command.downgrade(_alembic_config(connection), revision)


def migrate(url: str | URL, revision: str = "head") -> None:
    """Run the Alembic migrations shipped in the gateway package up to `revision` (default: head)."""
    engine = create_engine_for(url)
    try:
        migrate_engine(engine, revision)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an unmigrated database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()


def session_factory(engine: Engine, info: dict[str, Any] | None = None) -> sessionmaker[Session]:
    """Sessions on `engine`; `info` is what every session carries (the ticket SLA policy)."""
    return sessionmaker(bind=engine, expire_on_commit=False, info=info)


def ping(engine: Engine) -> bool:
    """True when the database answers a trivial query (readiness probe)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as error:
        log.warning("database ping failed: %s", error)
        return False
    return True
