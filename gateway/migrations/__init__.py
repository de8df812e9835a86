"""Alembic migrations of the hotline database, run by `gateway.db.migrate`."""
