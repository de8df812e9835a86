"""Figures for the agents' dashboard: today's calls, the escalation queue, tickets and their SLAs.

"Today" is the local day of ticket numbers (`store.TICKET_NUMBER_TZ`), from local midnight.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ticketing.models import OPEN_STATUSES, CallRecord, Escalation, EscalationStatus, Ticket
from ticketing.schemas import DashboardPublic, HourCounts
from ticketing.store import TICKET_NUMBER_TZ, _require_aware, overdue_clause

ESCALATED_OUTCOME = "escalated"  # the outcome of a call a person had to take over


def local_midnight(now: datetime) -> datetime:
    local = now.astimezone(TICKET_NUMBER_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _hours(times: Iterable[datetime]) -> Counter[int]:
    return Counter(moment.astimezone(TICKET_NUMBER_TZ).hour for moment in times)


def _counts(session: Session, column: object) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).group_by(column))  # type: ignore[call-overload]
    return {str(getattr(key, "value", key)): int(count) for key, count in rows}


def _calls_today(session: Session, start: datetime, end: datetime) -> tuple[list[datetime], int, int]:
    """(start times of today's calls, how many of them ended, how many ended without a person)."""
    rows = session.execute(
        select(CallRecord.started_at, CallRecord.ended_at, CallRecord.outcome)
        .where(CallRecord.started_at >= start, CallRecord.started_at < end)
    ).all()
    ended = [row for row in rows if row.ended_at is not None]
    by_bot = sum(1 for row in ended if row.outcome != ESCALATED_OUTCOME)
    return [row.started_at for row in rows], len(ended), by_bot


def _waiting(session: Session, now: datetime) -> tuple[int, float | None]:
    """(escalations waiting now, seconds the longest of them has waited)."""
    waiting = Escalation.status == EscalationStatus.WAITING
    count = int(session.scalar(select(func.count()).select_from(Escalation).where(waiting)) or 0)
    oldest = session.scalar(select(Escalation.created_at).where(waiting).order_by(Escalation.created_at).limit(1))
    return count, None if oldest is None else max((now - oldest).total_seconds(), 0.0)


def dashboard(session: Session, *, now: datetime) -> DashboardPublic:
    _require_aware(now)
    start = local_midnight(now)
    end = start + timedelta(days=1)
    call_starts, ended, by_bot = _calls_today(session, start, end)
    escalated_at = session.scalars(
        select(Escalation.created_at).where(Escalation.created_at >= start, Escalation.created_at < end)
    ).all()
    waiting, longest = _waiting(session, now)
    breaches = session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.status.in_(OPEN_STATUSES), overdue_clause(now))
    )
    calls_by_hour, escalations_by_hour = _hours(call_starts), _hours(escalated_at)
    return DashboardPublic(
        day=start.date().isoformat(),
        calls_today=len(call_starts),
        calls_ended_today=ended,
        resolved_without_person=round(by_bot / ended, 4) if ended else None,
        escalations_waiting=waiting,
        longest_wait_s=longest,
        tickets_by_category=_counts(session, Ticket.category),
        tickets_by_status=_counts(session, Ticket.status),
        sla_breaches=int(breaches or 0),
        hours=[HourCounts(hour=h, calls=calls_by_hour[h], escalations=escalations_by_hour[h]) for h in range(24)],
    )
