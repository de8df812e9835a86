"""Tickets, escalations and call records."""
