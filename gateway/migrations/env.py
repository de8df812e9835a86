"""Alembic environment for the hotline database (SQLite and PostgreSQL).

`gateway.db.migrate` passes an open connection in `config.attributes["connection"]`; with none,
the URL comes from the `sqlalchemy.url` option or the HOTLINE_DATABASE_URL environment variable.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from gateway.accounts import Base as AccountsBase
from kb.models import Base as KbBase
from ticketing.models import Base as TicketingBase

config = context.config
target_metadata = [TicketingBase.metadata, KbBase.metadata, AccountsBase.metadata]


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("HOTLINE_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set HOTLINE_DATABASE_URL or use gateway.db.migrate(url)")
    return url


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=True,
        compare_type=True,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    from gateway.db import create_engine_for

    engine = create_engine_for(_database_url())
    try:
        with engine.begin() as new_connection:
            _run_on(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
