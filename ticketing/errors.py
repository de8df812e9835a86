"""Errors raised by the ticketing store; each message says what was wrong."""

from __future__ import annotations


class TicketingError(Exception):
    """Base of every error the ticketing store raises on purpose."""


class NotFoundError(TicketingError, LookupError):
    """An id that does not exist."""


class TicketNotFound(NotFoundError):
    def __init__(self, ticket: int | str) -> None:
        super().__init__(f"no ticket {ticket!r}")
        self.ticket = ticket


class CallNotFound(NotFoundError):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"no call record {call_id!r}")
        self.call_id = call_id


class EscalationNotFound(NotFoundError):
    def __init__(self, escalation_id: int) -> None:
        super().__init__(f"no escalation {escalation_id!r}")
        self.escalation_id = escalation_id


class InvalidInputError(TicketingError, ValueError):
    """A value the store cannot accept (unknown category, naive timestamp, oversized field, ...)."""


class NaiveDatetimeError(InvalidInputError):
    """A timestamp without a timezone where an aware UTC one is required."""


class InvalidStatusTransition(InvalidInputError):
    def __init__(self, kind: str, current: str, requested: str, allowed: frozenset[str]) -> None:
        allowed_text = ", ".join(sorted(allowed)) or "none"
        super().__init__(
            f"{kind} cannot go from {current!r} to {requested!r} (allowed from {current!r}: {allowed_text})"
        )
        self.current = current
        self.requested = requested
        self.allowed = sorted(allowed)


class CallAlreadyEnded(TicketingError):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"call {call_id!r} has already ended")
        self.call_id = call_id


class CallAlreadyExists(TicketingError):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"a call record with id {call_id!r} already exists")
        self.call_id = call_id


class ConcurrentUpdateError(TicketingError):
    """Someone else changed the row between our read and our write; reload and try again."""


class EscalationTaken(ConcurrentUpdateError):
    def __init__(self, escalation_id: int, agent: str | None) -> None:
        super().__init__(f"escalation {escalation_id} has already been taken by {agent or 'another agent'}")
        self.escalation_id = escalation_id
        self.agent = agent


class UnsupportedDatabaseError(TicketingError):
    def __init__(self, dialect: str) -> None:
        super().__init__(f"ticket numbering supports SQLite and PostgreSQL, not {dialect!r}")
