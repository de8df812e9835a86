"""Tickets, escalations and call records.

Data access is in `ticketing.store` (keyword-only functions taking a SQLAlchemy Session first),
API schemas in `ticketing.schemas`, SLA targets in `ticketing.sla`, errors in `ticketing.errors`,
the dashboard's figures in `ticketing.reports`, phone masking in `ticketing.masking`.
The ORM models (`ticketing.models`) stay inside this package and the migrations.
"""

from ticketing.errors import (
    CallAlreadyEnded,
    CallAlreadyExists,
    CallNotFound,
    ConcurrentUpdateError,
    EscalationNotFound,
    EscalationTaken,
    InvalidInputError,
    InvalidStatusTransition,
    NaiveDatetimeError,
    NotFoundError,
    TicketingError,
    TicketNotFound,
)
from ticketing.models import (
    EscalationStatus,
    Speaker,
    TicketCategory,
    TicketEventKind,
    TicketPriority,
    TicketStatus,
)
from ticketing.schemas import (
    CallRecordPublic,
    CallSummaryPublic,
    CallTurnPublic,
    DashboardPublic,
    EscalationCreate,
    EscalationPublic,
    EscalationStatusUpdate,
    TicketCreate,
    TicketEventPublic,
    TicketNoteCreate,
    TicketPage,
    TicketPublic,
    TicketStatusUpdate,
    TicketUpdate,
)
from ticketing.sla import DEFAULT_SLA, SlaPolicy

__all__ = [
    "DEFAULT_SLA",
    "CallAlreadyEnded",
    "CallAlreadyExists",
    "CallNotFound",
    "CallRecordPublic",
    "CallSummaryPublic",
    "CallTurnPublic",
    "DashboardPublic",
    "ConcurrentUpdateError",
    "EscalationCreate",
    "EscalationNotFound",
    "EscalationTaken",
    "EscalationPublic",
    "EscalationStatus",
    "EscalationStatusUpdate",
    "InvalidInputError",
    "InvalidStatusTransition",
    "NaiveDatetimeError",
    "NotFoundError",
    "SlaPolicy",
    "Speaker",
    "TicketCategory",
    "TicketCreate",
    "TicketEventKind",
    "TicketEventPublic",
    "TicketNoteCreate",
    "TicketNotFound",
    "TicketPage",
    "TicketPriority",
    "TicketPublic",
    "TicketStatus",
    "TicketStatusUpdate",
    "TicketUpdate",
    "TicketingError",
]
