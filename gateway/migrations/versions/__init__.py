"""Alembic revisions: 0001 ticketing and call records, 0002 knowledge base."""
