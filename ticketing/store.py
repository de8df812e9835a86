"""Data access for call records, tickets and escalations.

Every function takes a SQLAlchemy `Session` first and keyword-only arguments after it. A write
commits everything that belongs together in one transaction (a ticket and its `created` event)
and rolls back on any error, so a session passed in should carry no unrelated pending changes.
Timestamps come from the caller's injected clock as aware datetimes. Transcript text is stored
as given: callers pass it already masked. Functions return pydantic schemas, never ORM objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, case, func, not_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

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
    TicketNotFound,
    UnsupportedDatabaseError,
)
from ticketing.masking import mask_phone
from ticketing.models import (
    OPEN_STATUSES,
    CallRecord,
    CallTurn,
    Escalation,
    EscalationStatus,
    Speaker,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketEventKind,
    TicketNumberCounter,
    TicketPriority,
    TicketStatus,
)
from ticketing.schemas import (
    CallRecordPublic,
    CallSummaryPublic,
    CallTurnPublic,
    EscalationPublic,
    TicketPage,
    TicketPublic,
)
from ticketing.sla import DEFAULT_SLA, SlaPolicy

# Ticket numbers carry the caller's local date (China has no daylight saving time).
TICKET_NUMBER_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_PAGE_SIZE = 500
_E = TypeVar("_E", Speaker, TicketCategory, TicketStatus, TicketPriority, EscalationStatus)

_S = TicketStatus
# new -> assigned -> in_progress <-> pending_customer -> resolved -> closed; any open state may be
# resolved or closed (a duplicate); resolved and closed tickets reopen to in_progress. `assigned`
# and `new` follow the owner: giving a new ticket an owner assigns it, taking the owner away makes it new.
TICKET_TRANSITIONS: Mapping[TicketStatus, frozenset[TicketStatus]] = {
    _S.NEW: frozenset({_S.ASSIGNED, _S.IN_PROGRESS, _S.RESOLVED, _S.CLOSED}),
    _S.ASSIGNED: frozenset({_S.NEW, _S.IN_PROGRESS, _S.PENDING_CUSTOMER, _S.RESOLVED, _S.CLOSED}),
    _S.IN_PROGRESS: frozenset({_S.PENDING_CUSTOMER, _S.RESOLVED, _S.CLOSED}),
    _S.PENDING_CUSTOMER: frozenset({_S.IN_PROGRESS, _S.RESOLVED, _S.CLOSED}),
    _S.RESOLVED: frozenset({_S.IN_PROGRESS, _S.CLOSED}),
    _S.CLOSED: frozenset({_S.IN_PROGRESS}),
}
ESCALATION_TRANSITIONS: Mapping[EscalationStatus, frozenset[EscalationStatus]] = {
    EscalationStatus.WAITING: frozenset({EscalationStatus.ACCEPTED, EscalationStatus.CLOSED,
                                         EscalationStatus.ABANDONED}),
    # back to waiting: the agent's console went away and the call waits for another
    EscalationStatus.ACCEPTED: frozenset({EscalationStatus.WAITING, EscalationStatus.HANDED_BACK,
                                          EscalationStatus.CLOSED}),
    EscalationStatus.HANDED_BACK: frozenset({EscalationStatus.CLOSED}),
    EscalationStatus.CLOSED: frozenset(),
    EscalationStatus.ABANDONED: frozenset(),
}


# ---------------------------------------------------------------- helpers


@contextmanager
def _transaction(session: Session) -> Iterator[None]:
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _require_aware(value: datetime, name: str = "now") -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(f"{name}={value.isoformat()} has no timezone; pass an aware datetime (UTC)")
    return value


def _require_text(value: str, name: str, *, max_length: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise InvalidInputError(f"{name} must not be empty")
    if len(value) > max_length:
        raise InvalidInputError(f"{name} is {len(value)} characters long; at most {max_length} are allowed")
    if "\x00" in value:  # PostgreSQL text cannot hold it: refused here on SQLite too
        raise InvalidInputError(f"{name} must not contain NUL characters")
    return value


def _optional_text(value: str | None, name: str, *, max_length: int) -> str | None:
    if value is None:
        return None
    value = _require_text(value, name, max_length=max_length, allow_empty=True).strip()
    return value or None


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    if offset < 0:
        raise InvalidInputError(f"offset must not be negative, got {offset}")


def _coerce_enum(enum: type[_E], value: object, name: str) -> _E:
    if isinstance(value, enum):
        return value
    known = ", ".join(member.value for member in enum)
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    raise InvalidInputError(f"unknown {name} {value!r} (expected one of: {known})")


def _require_call_exists(session: Session, call_id: str) -> None:
    if session.get(CallRecord, call_id) is None:
        raise CallNotFound(call_id)


def mask_caller_id(caller_id: str) -> str:
    """Mask a phone number for storage: keep the first 3 and last 4 digits (13812345678 -> 138****5678)."""
    return mask_phone(caller_id)


# ---------------------------------------------------------------- call records


def start_call(
    session: Session,
    *,
    codec: str,
    sample_rate: int,
    now: datetime,
    caller_id: str | None = None,
    dialect: str | None = None,
    call_id: str | None = None,
) -> CallSummaryPublic:
    """Record the start of a call. The caller id is masked before it is stored."""
    _require_aware(now)
    codec = _require_text(codec, "codec", max_length=16)
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise InvalidInputError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    record = CallRecord(
        id=_require_text(call_id, "call_id", max_length=36) if call_id is not None else str(uuid.uuid4()),
        caller_id=mask_caller_id(_require_text(caller_id, "caller_id", max_length=32)) if caller_id else None,
        codec=codec,
        sample_rate=sample_rate,
        dialect=_optional_text(dialect, "dialect", max_length=32),
        started_at=now,
        turn_count=0,
    )
    try:
        with _transaction(session):
            session.add(record)
            session.flush()
            public = CallSummaryPublic.model_validate(record)
    except IntegrityError as error:
        raise CallAlreadyExists(record.id) from error
    return public


def add_turn(
    session: Session,
    *,
    call_id: str,
    speaker: Speaker | str,
    text: str,
    now: datetime,
    dialect: str | None = None,
    interrupted: bool = False,
    seq: int | None = None,
) -> CallTurnPublic:
    """Append a turn (already-masked text) to a call; turns are numbered 1, 2, 3... per call.

    With `seq` (the writer numbers its own turns) the write is idempotent: a turn already stored
    under that number is returned as it is, so a write retried after a lost commit adds nothing.
    """
    _require_aware(now)
    speaker = _coerce_enum(Speaker, speaker, "speaker")
    text = _require_text(text, "text", max_length=20_000, allow_empty=True)
    dialect = _optional_text(dialect, "dialect", max_length=32)
    if seq is not None and (not isinstance(seq, int) or seq < 1):
        raise InvalidInputError(f"seq must be a positive integer, got {seq!r}")
    with _transaction(session):
        if seq is None:
            # The increment is the transaction's first statement: it takes the row's write lock at once.
            seq = session.execute(
                update(CallRecord)
                .where(CallRecord.id == call_id)
                .values(turn_count=CallRecord.turn_count + 1)
                .returning(CallRecord.turn_count)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
            if seq is None:
                raise CallNotFound(call_id)
        else:
            stored = session.scalar(select(CallTurn).where(CallTurn.call_id == call_id, CallTurn.seq == seq))
            if stored is not None:
                return CallTurnPublic.model_validate(stored)
            result = session.execute(
                update(CallRecord)
                .where(CallRecord.id == call_id)
                .values(turn_count=func.max(CallRecord.turn_count, seq) if _is_sqlite(session)
                        else func.greatest(CallRecord.turn_count, seq))
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise CallNotFound(call_id)
        turn = CallTurn(
            call_id=call_id,
            seq=seq,
            speaker=speaker,
            text=text,
            dialect=dialect,
            at=now,
            interrupted=interrupted,
        )
        session.add(turn)
        session.flush()
        public = CallTurnPublic.model_validate(turn)
    return public


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def end_call(session: Session, *, call_id: str, outcome: str, now: datetime) -> CallSummaryPublic:
    """Mark a call as ended with its outcome (e.g. answered, ticket, escalated, abandoned)."""
    _require_aware(now)
    outcome = _require_text(outcome, "outcome", max_length=32).strip()
    with _transaction(session):
        result = session.execute(
            update(CallRecord)
            .where(CallRecord.id == call_id, CallRecord.ended_at.is_(None))
            .values(ended_at=now, outcome=outcome)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            _require_call_exists(session, call_id)
            raise CallAlreadyEnded(call_id)
        # Nobody is waiting on the line any more: its escalations leave the agents' queue.
        session.execute(
            update(Escalation)
            .where(Escalation.call_id == call_id, Escalation.status == EscalationStatus.WAITING)
            .values(status=EscalationStatus.CLOSED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        record = session.get(CallRecord, call_id, populate_existing=True)
        assert record is not None
        public = CallSummaryPublic.model_validate(record)
    return public


def get_call(session: Session, *, call_id: str) -> CallRecordPublic:
    record = session.scalar(
        select(CallRecord).where(CallRecord.id == call_id).options(selectinload(CallRecord.turns))
    )
    if record is None:
        raise CallNotFound(call_id)
    return CallRecordPublic.model_validate(record)


def list_calls(session: Session, *, limit: int = 50, offset: int = 0) -> list[CallSummaryPublic]:
    """Calls, newest first."""
    _check_page(limit, offset)
    records = session.scalars(
        select(CallRecord).order_by(CallRecord.started_at.desc(), CallRecord.id).limit(limit).offset(offset)
    )
    return [CallSummaryPublic.model_validate(record) for record in records]


# ---------------------------------------------------------------- tickets


def format_ticket_number(local_day: str, seq: int) -> str:
    """'261122' + 7 -> '2611220007'; more than 9999 tickets a day simply widen the number."""
    return f"{local_day}{seq:04d}"


def _next_ticket_seq(session: Session, local_day: str) -> int:
    """Atomically take the next sequence number of the day.

    An upsert on the day's counter row: concurrent transactions (other threads, other gateways)
    queue on that row's lock until the holder commits, so numbers never repeat, and a rolled-back
    ticket gives its number back.
    """
    dialect = session.get_bind().dialect.name
    insert: Callable[..., Any]
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise UnsupportedDatabaseError(dialect)
    statement = (
        insert(TicketNumberCounter)
        .values(day=local_day, last_seq=1)
        .on_conflict_do_update(
            index_elements=[TicketNumberCounter.day],
            set_={"last_seq": TicketNumberCounter.last_seq + 1},
        )
        .returning(TicketNumberCounter.last_seq)
    )
    return int(session.execute(statement).scalar_one())


def _clean_slots(slots: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(slots, Mapping):
        raise InvalidInputError(f"slots must be a mapping of str to str, got {type(slots).__name__}")
    cleaned: dict[str, str] = {}
    for key, value in slots.items():
        if not isinstance(key, str) or not key.strip() or "\x00" in key:
            raise InvalidInputError(f"slot names must be non-empty strings, got {key!r}")
        if not isinstance(value, str):
            raise InvalidInputError(f"slot {key!r} must be a string, got {type(value).__name__}")
        cleaned[key.strip()] = _require_text(
            value, f"slot {key!r}", max_length=1000, allow_empty=True
        ).strip()
    return cleaned


def _load_ticket(session: Session, ticket_id: int, *, for_update: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.id == ticket_id).options(selectinload(Ticket.events))
    if for_update:
        query = query.with_for_update(of=Ticket)  # PostgreSQL row lock; SQLite serialises writers anyway
    ticket = session.scalar(query)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return ticket



_PRIORITY_RANK = {TicketPriority.LOW: 0, TicketPriority.NORMAL: 1, TicketPriority.HIGH: 2, TicketPriority.URGENT: 3}
_CATEGORY_PRIORITY = {TicketCategory.COMPLAINT: TicketPriority.HIGH}


def default_priority(category: TicketCategory) -> TicketPriority:
    """Complaints start high, everything else normal."""
    return _CATEGORY_PRIORITY.get(category, TicketPriority.NORMAL)


def _sla_of(session: Session, sla: SlaPolicy | None) -> SlaPolicy:
    """The policy given, else the one the gateway put in its sessions' `info` (from settings), else defaults."""
    if sla is not None:
        return sla
    configured = session.info.get("sla")
    return configured if isinstance(configured, SlaPolicy) else DEFAULT_SLA


def is_overdue(ticket: TicketPublic, now: datetime) -> bool:
    """A first response or a resolution that is past due and has not happened."""
    late_response = ticket.first_responded_at is None and now > ticket.first_response_due_at
    late_resolution = ticket.resolved_at is None and now > ticket.resolution_due_at
    return late_response or late_resolution


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """`is_overdue` as SQL."""
    return or_(
        and_(Ticket.first_responded_at.is_(None), Ticket.first_response_due_at < now),
        and_(Ticket.resolved_at.is_(None), Ticket.resolution_due_at < now),
    )


def _public(ticket: Ticket, now: datetime | None) -> TicketPublic:
    public = TicketPublic.model_validate(ticket)
    return public if now is None else public.model_copy(update={"overdue": is_overdue(public, now)})


def _clean_phone(value: str | None) -> str | None:
    if value is None:
        return None
    digits = "".join(ch for ch in _require_text(value, "phone", max_length=40, allow_empty=True) if ch not in " -()")
    return _optional_text(digits, "phone", max_length=32)


def open_ticket(
    session: Session,
    *,
    call_id: str | None,
    category: TicketCategory | str,
    slots: Mapping[str, str],
    summary: str,
    now: datetime,
    sla: SlaPolicy | None = None,
    request_key: str | None = None,
    phone: str | None = None,
    address: str | None = None,
    priority: TicketPriority | str | None = None,
    actor: str | None = None,
) -> TicketPublic:
    """Open a ticket (status `new`) and its `created` event in one transaction; the number is unique across gateways.

    `phone` and `address` fill the slots of those names. A ticket a person (`actor`) opens has had
    its first response. With `request_key` (made by the writer, unique per request, needs `call_id`)
    the write is idempotent: a ticket this call already opened under that key is returned instead of a second one.
    """
    _require_aware(now)
    if request_key is not None:
        request_key = _require_text(request_key, "request_key", max_length=64)
        if call_id is None:
            raise InvalidInputError("a ticket opened with a request_key must belong to a call")
    category = _coerce_enum(TicketCategory, category, "ticket category")
    priority = default_priority(category) if priority is None else _coerce_enum(TicketPriority, priority, "priority")
    slots = _clean_slots({**slots, **({"phone": phone} if phone else {}), **({"address": address} if address else {})})
    summary = _require_text(summary, "summary", max_length=4000, allow_empty=True).strip()
    actor = _optional_text(actor, "actor", max_length=64)
    policy = _sla_of(session, sla)
    local_day = now.astimezone(TICKET_NUMBER_TZ).strftime("%y%m%d")
    with _transaction(session):
        if call_id is not None and request_key is not None:
            if (existing := _ticket_by_request_key(session, call_id, request_key)) is not None:
                return _public(existing, now)
        number = format_ticket_number(local_day, _next_ticket_seq(session, local_day))
        if call_id is not None:
            _require_call_exists(session, call_id)
        detail = {"number": number, "category": category.value, "priority": priority.value}
        if request_key is not None:
            detail["request_key"] = request_key
        ticket = Ticket(
            number=number,
            category=category,
            status=TicketStatus.NEW,
            priority=priority,
            slots=slots,
            phone=_clean_phone(slots.get("phone")),
            address=_optional_text(slots.get("address"), "slot 'address'", max_length=255),
            summary=summary,
            call_id=call_id,
            created_at=now,
            updated_at=now,
            first_response_due_at=policy.first_response_due_at(category, now),
            resolution_due_at=policy.due_at(category, now),
            first_responded_at=now if actor else None,
        )
        ticket.events.append(TicketEvent(kind=TicketEventKind.CREATED, at=now, detail=detail, actor=actor))
        session.add(ticket)
        session.flush()
        public = _public(ticket, now)
    return public


def _ticket_by_request_key(session: Session, call_id: str, request_key: str) -> Ticket | None:
    """The call's ticket whose `created` event carries `request_key` (a call opens few tickets)."""
    tickets = session.scalars(
        select(Ticket).where(Ticket.call_id == call_id).options(selectinload(Ticket.events))
    )
    for ticket in tickets:
        created = next((e for e in ticket.events if e.kind == TicketEventKind.CREATED), None)
        if created is not None and created.detail.get("request_key") == request_key:
            return ticket
    return None


def get_ticket_by_request_key(session: Session, *, call_id: str, request_key: str) -> TicketPublic:
    if (ticket := _ticket_by_request_key(session, call_id, request_key)) is None:
        raise TicketNotFound(request_key)
    return TicketPublic.model_validate(ticket)


def get_ticket(session: Session, *, ticket_id: int, now: datetime | None = None) -> TicketPublic:
    """One ticket with its events; with `now`, its `overdue` flag too."""
    return _public(_load_ticket(session, ticket_id), now)


def get_ticket_by_number(session: Session, *, number: str) -> TicketPublic:
    """The ticket a caller reads back, e.g. '2611220007' (spaces and dashes are ignored)."""
    normalised = "".join(ch for ch in number if ch not in " -")
    ticket = session.scalar(
        select(Ticket).where(Ticket.number == normalised).options(selectinload(Ticket.events))
    )
    if ticket is None:
        raise TicketNotFound(number)
    return TicketPublic.model_validate(ticket)


def find_open_ticket(
    session: Session, *, phones: Sequence[str], category: TicketCategory | str
) -> TicketPublic | None:
    """The newest ticket not yet resolved or closed of `category` for any of `phones`, if there is one."""
    category = _coerce_enum(TicketCategory, category, "ticket category")
    numbers = {cleaned for phone in phones if (cleaned := _clean_phone(phone))}
    if not numbers:
        return None
    ticket = session.scalar(
        select(Ticket)
        .where(Ticket.phone.in_(numbers), Ticket.category == category, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(1)
        .options(selectinload(Ticket.events))
    )
    return None if ticket is None else TicketPublic.model_validate(ticket)


# ---------------------------------------------------------------- ticket lists


TICKET_SORTS = ("created_at", "updated_at", "priority", "due", "first_response_due", "number")


@dataclass(frozen=True)
class TicketQuery:
    """Which tickets, in which order, which page. Empty fields do not filter."""

    statuses: Sequence[TicketStatus | str] = ()
    category: TicketCategory | str | None = None
    owner: str | None = None
    unassigned: bool | None = None  # True: nobody owns it; False: somebody does
    priority: TicketPriority | str | None = None
    overdue: bool | None = None
    phone: str | None = None  # exact, as digits
    text: str | None = None  # in the summary, the address or the number
    call_id: str | None = None
    sort: str = "-created_at"  # one of TICKET_SORTS, '-' first for descending
    limit: int = 50
    offset: int = 0


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filters(query: TicketQuery, now: datetime | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.statuses:
        where.append(Ticket.status.in_([_coerce_enum(TicketStatus, s, "ticket status") for s in query.statuses]))
    if query.category is not None:
        where.append(Ticket.category == _coerce_enum(TicketCategory, query.category, "ticket category"))
    if query.priority is not None:
        where.append(Ticket.priority == _coerce_enum(TicketPriority, query.priority, "priority"))
    if query.owner is not None:
        where.append(Ticket.owner == _require_text(query.owner, "owner", max_length=64))
    if query.unassigned is not None:
        where.append(Ticket.owner.is_(None) if query.unassigned else Ticket.owner.is_not(None))
    if query.phone is not None:
        where.append(Ticket.phone == _clean_phone(query.phone))
    if query.call_id is not None:
        where.append(Ticket.call_id == query.call_id)
    if query.text and query.text.strip():
        pattern = _like(_require_text(query.text, "text", max_length=200).strip())
        where.append(or_(*(column.ilike(pattern, escape="\\")
                           for column in (Ticket.summary, Ticket.address, Ticket.number))))
    if query.overdue is not None:
        if now is None:
            raise InvalidInputError("filtering by overdue needs the time now")
        clause = overdue_clause(now)
        where.append(clause if query.overdue else not_(clause))
    return where


def _order(sort: str) -> list[Any]:
    name = sort.removeprefix("-")
    if name not in TICKET_SORTS:
        raise InvalidInputError(f"unknown sort {sort!r} (expected one of: {', '.join(TICKET_SORTS)}, '-' first to reverse)")
    rank = case(*((Ticket.priority == p, r) for p, r in _PRIORITY_RANK.items()), else_=1)
    column: Any = {"created_at": Ticket.created_at, "updated_at": Ticket.updated_at, "priority": rank,
                   "due": Ticket.resolution_due_at, "first_response_due": Ticket.first_response_due_at,
                   "number": Ticket.number}[name]
    if sort.startswith("-"):
        return [column.desc(), Ticket.id.desc()]
    return [column.asc(), Ticket.id.asc()]


def search_tickets(session: Session, *, query: TicketQuery, now: datetime | None = None) -> TicketPage:
    """One page of the tickets `query` selects, and how many it selects in all."""
    _check_page(query.limit, query.offset)
    where = _filters(query, now)
    total = session.scalar(select(func.count()).select_from(Ticket).where(*where))
    rows = session.scalars(
        select(Ticket).where(*where).options(selectinload(Ticket.events))
        .order_by(*_order(query.sort)).limit(query.limit).offset(query.offset)
    )
    return TicketPage(items=[_public(ticket, now) for ticket in rows], total=int(total or 0))


def list_tickets(
    session: Session,
    *,
    status: TicketStatus | str | None = None,
    category: TicketCategory | str | None = None,
    call_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> list[TicketPublic]:
    """Tickets, newest first, optionally filtered by status, category and the call that opened them."""
    query = TicketQuery(statuses=(status,) if status is not None else (), category=category, call_id=call_id,
                        limit=limit, offset=offset)
    return search_tickets(session, query=query, now=now).items


def count_tickets(session: Session, *, status: TicketStatus | str | None = None) -> int:
    query = select(func.count()).select_from(Ticket)
    if status is not None:
        query = query.where(Ticket.status == _coerce_enum(TicketStatus, status, "ticket status"))
    return int(session.scalar(query) or 0)


# ---------------------------------------------------------------- ticket changes


class _Unset:
    """No change asked for (an owner of None means: unassign)."""


UNSET: Any = _Unset()


@dataclass
class _Change:
    """What one update does to a ticket: the new column values and the events that record them."""

    now: datetime
    values: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[TicketEventKind, dict[str, Any]]] = field(default_factory=list)

    def status(self, current: TicketStatus) -> TicketStatus:
        return self.values.get("status", current)


def _owner_change(ticket: Ticket, owner: str | None, change: _Change) -> None:
    """A new owner; a `new` ticket that gets one is `assigned`, an `assigned` one that loses it is `new` again."""
    if owner == ticket.owner:
        return
    change.values["owner"] = owner
    change.events.append((TicketEventKind.ASSIGNED, {"from": ticket.owner, "to": owner}))
    if owner is not None and ticket.status is TicketStatus.NEW:
        _status_change(ticket, TicketStatus.ASSIGNED, change)
    elif owner is None and ticket.status is TicketStatus.ASSIGNED:
        _status_change(ticket, TicketStatus.NEW, change)


def _status_change(ticket: Ticket, requested: TicketStatus, change: _Change, note: str | None = None) -> None:
    current = change.status(ticket.status)
    if requested is current:
        return
    allowed = TICKET_TRANSITIONS[current]
    if requested not in allowed:
        raise InvalidStatusTransition("ticket", current.value, requested.value, frozenset(s.value for s in allowed))
    owner = change.values.get("owner", ticket.owner)
    if requested is TicketStatus.ASSIGNED and owner is None:
        raise InvalidInputError("an assigned ticket needs an owner: give one with the status")
    if requested is TicketStatus.NEW and owner is not None:
        if "owner" in change.values:
            raise InvalidInputError("a new ticket has no owner: give the owner or the status 'new', not both")
        _owner_change(ticket, None, change)  # back in the queue: unassigning makes it new
        return
    change.values["status"] = requested
    if requested in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        change.values["resolved_at"] = ticket.resolved_at or change.now
    elif current in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        change.values["resolved_at"] = None  # reopened: the resolution is due again
    detail: dict[str, Any] = {"from": current.value, "to": requested.value}
    if note:
        detail["note"] = note
    change.events.append((TicketEventKind.STATUS_CHANGED, detail))


def _plan(ticket: Ticket, *, status: TicketStatus | None, owner: Any, priority: TicketPriority | None,
          note: str | None, now: datetime) -> _Change:
    change = _Change(now)
    if owner is not UNSET:
        _owner_change(ticket, owner, change)
    if status is not None:
        _status_change(ticket, status, change, note)
    if note and not any(kind is TicketEventKind.STATUS_CHANGED and "note" in d for kind, d in change.events):
        change.events.append((TicketEventKind.NOTE, {"text": note}))
    if priority is not None and priority is not ticket.priority:
        change.values["priority"] = priority
        change.events.append((TicketEventKind.PRIORITY_CHANGED, {"from": ticket.priority.value, "to": priority.value}))
    return change


_RESPONSES = (TicketEventKind.ASSIGNED, TicketEventKind.STATUS_CHANGED, TicketEventKind.NOTE)


def _apply(session: Session, ticket: Ticket, change: _Change, *, now: datetime, actor: str | None) -> None:
    """Write the change conditional on the status and owner read, so two people cannot both move the ticket."""
    values = {**change.values, "updated_at": now}
    if actor is not None and ticket.first_responded_at is None and any(k in _RESPONSES for k, _ in change.events):
        values["first_responded_at"] = now
    result = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.status == ticket.status, Ticket.owner.is_not_distinct_from(ticket.owner))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentUpdateError(f"ticket {ticket.id} changed meanwhile; reload it and try again")
    for name, value in values.items():
        set_committed_value(ticket, name, value)
    for kind, detail in change.events:
        ticket.events.append(TicketEvent(kind=kind, at=now, detail=detail, actor=actor))
    session.flush()


def update_ticket(
    session: Session,
    *,
    ticket_id: int,
    now: datetime,
    actor: str | None = None,
    status: TicketStatus | str | None = None,
    owner: str | None = UNSET,
    priority: TicketPriority | str | None = None,
    note: str | None = None,
) -> TicketPublic:
    """A person's (`actor`) change: owner (None unassigns), status, priority, each recorded as an event.

    Asking for the status a ticket already has changes nothing. An illegal move raises
    `InvalidStatusTransition` and changes nothing at all.
    """
    _require_aware(now)
    actor = _optional_text(actor, "actor", max_length=64)
    requested = None if status is None else _coerce_enum(TicketStatus, status, "ticket status")
    priority = None if priority is None else _coerce_enum(TicketPriority, priority, "priority")
    if owner is not UNSET:
        owner = _optional_text(owner, "owner", max_length=64)
    note = _optional_text(note, "note", max_length=4000)
    with _transaction(session):
        ticket = _load_ticket(session, ticket_id)
        change = _plan(ticket, status=requested, owner=owner, priority=priority, note=note, now=now)
        if change.events:
            _apply(session, ticket, change, now=now, actor=actor)
        public = _public(ticket, now)
    return public


def update_ticket_status(
    session: Session,
    *,
    ticket_id: int,
    status: TicketStatus | str,
    now: datetime,
    note: str | None = None,
    actor: str | None = None,
) -> TicketPublic:
    """Move a ticket along its lifecycle and record a `status_changed` event (by `actor`) in the same transaction."""
    return update_ticket(session, ticket_id=ticket_id, status=status, now=now, note=note, actor=actor)


def update_ticket_slots(
    session: Session, *, ticket_id: int, slots: Mapping[str, str], now: datetime
) -> TicketPublic:
    """Merge corrected slot values (e.g. the caller restates the phone) into a ticket not yet closed.

    The phone and address columns follow their slots; the change is recorded as a `slots_updated`
    event with each slot's old and new value. Values that did not change add no event.
    """
    _require_aware(now)
    updates = _clean_slots(slots)
    with _transaction(session):
        ticket = _load_ticket(session, ticket_id, for_update=True)
        if ticket.status == TicketStatus.CLOSED:
            raise InvalidInputError(f"ticket {ticket_id} is closed; its details can no longer change")
        changes = {
            name: {"from": ticket.slots.get(name), "to": value}
            for name, value in updates.items()
            if ticket.slots.get(name) != value
        }
        if changes:
            merged = {**ticket.slots, **updates}
            ticket.slots = merged  # a new dict, so the JSON column is seen as changed
            ticket.phone = _clean_phone(merged.get("phone"))
            ticket.address = _optional_text(merged.get("address"), "slot 'address'", max_length=255)
            ticket.updated_at = now
            ticket.events.append(
                TicketEvent(
                    kind=TicketEventKind.SLOTS_UPDATED,
                    at=now,
                    detail={"text": f"details updated: {', '.join(sorted(changes))}", "slots": changes},
                )
            )
            session.flush()
        public = _public(ticket, now)
    return public


def add_ticket_note(
    session: Session, *, ticket_id: int, text: str, now: datetime, actor: str | None = None
) -> TicketPublic:
    """A note on the ticket (its newest event); a person's note is a first response."""
    _require_aware(now)
    text = _require_text(text, "note", max_length=4000).strip()
    actor = _optional_text(actor, "actor", max_length=64)
    with _transaction(session):
        ticket = _load_ticket(session, ticket_id, for_update=True)
        if actor is not None and ticket.first_responded_at is None:
            ticket.first_responded_at = now
        ticket.updated_at = now
        ticket.events.append(TicketEvent(kind=TicketEventKind.NOTE, at=now, detail={"text": text}, actor=actor))
        session.flush()
        public = _public(ticket, now)
    return public

# ---------------------------------------------------------------- escalations


def raise_escalation(
    session: Session,
    *,
    call_id: str | None,
    reason: str,
    now: datetime,
    context: Mapping[str, Any] | None = None,
    request_key: str | None = None,
    gateway: str | None = None,
) -> EscalationPublic:
    """Queue a call for a human agent; `context` (JSON-able) is what the agent sees first, `gateway`
    names the process that holds the call.

    With `request_key` (needs `call_id`) the write is idempotent, as for `open_ticket`; the key is
    kept in the context.
    """
    _require_aware(now)
    reason = _require_text(reason, "reason", max_length=4000).strip()
    context_dict = dict(context or {})
    if request_key is not None:
        context_dict["request_key"] = _require_text(request_key, "request_key", max_length=64)
        if call_id is None:
            raise InvalidInputError("an escalation raised with a request_key must belong to a call")
    with _transaction(session):
        if call_id is not None and request_key is not None:
            existing = session.scalars(select(Escalation).where(Escalation.call_id == call_id))
            for escalation in existing:
                if escalation.context.get("request_key") == request_key:
                    return EscalationPublic.model_validate(escalation)
        if call_id is not None:
            _require_call_exists(session, call_id)
        escalation = Escalation(
            call_id=call_id,
            reason=reason,
            status=EscalationStatus.WAITING,
            created_at=now,
            updated_at=now,
            context=context_dict,
            gateway=_optional_text(gateway, "gateway", max_length=64),
        )
        session.add(escalation)
        session.flush()
        public = EscalationPublic.model_validate(escalation)
    return public


def get_escalation(session: Session, *, escalation_id: int) -> EscalationPublic:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise EscalationNotFound(escalation_id)
    return EscalationPublic.model_validate(escalation)


def list_escalations(
    session: Session,
    *,
    status: EscalationStatus | str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[EscalationPublic]:
    """Escalations in queue order (oldest first), optionally filtered by status."""
    _check_page(limit, offset)
    query = select(Escalation)
    if status is not None:
        query = query.where(Escalation.status == _coerce_enum(EscalationStatus, status, "escalation status"))
    query = query.order_by(Escalation.created_at, Escalation.id).limit(limit).offset(offset)
    return [EscalationPublic.model_validate(escalation) for escalation in session.scalars(query)]


def count_escalations(session: Session, *, status: EscalationStatus | str | None = None) -> int:
    query = select(func.count()).select_from(Escalation)
    if status is not None:
        query = query.where(Escalation.status == _coerce_enum(EscalationStatus, status, "escalation status"))
    return int(session.scalar(query) or 0)


def update_escalation_status(
    session: Session, *, escalation_id: int, status: EscalationStatus | str, now: datetime,
    agent: str | None = None,
) -> EscalationPublic:
    """Moves an escalation along ESCALATION_TRANSITIONS. Accepting names the `agent`; of two agents
    accepting one waiting call only one succeeds, the other gets `EscalationTaken`."""
    _require_aware(now)
    requested = _coerce_enum(EscalationStatus, status, "escalation status")
    with _transaction(session):
        escalation = session.get(Escalation, escalation_id)
        if escalation is None:
            raise EscalationNotFound(escalation_id)
        current = escalation.status
        if requested is EscalationStatus.ACCEPTED and current is EscalationStatus.ACCEPTED:
            raise EscalationTaken(escalation_id, escalation.agent)
        allowed = ESCALATION_TRANSITIONS[current]
        if requested not in allowed:
            raise InvalidStatusTransition("escalation", current.value, requested.value, frozenset(allowed))
        result = session.execute(
            update(Escalation)
            .where(Escalation.id == escalation_id, Escalation.status == current)
            .values(status=requested, updated_at=now, **_holder(requested, escalation, agent, now))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            session.refresh(escalation)
            if requested is EscalationStatus.ACCEPTED:
                raise EscalationTaken(escalation_id, escalation.agent)
            raise ConcurrentUpdateError(f"escalation {escalation_id} changed status meanwhile; reload it")
        session.refresh(escalation)
        public = EscalationPublic.model_validate(escalation)
    return public


def _holder(status: EscalationStatus, escalation: Escalation, agent: str | None, now: datetime) -> dict[str, Any]:
    """Who holds the call once it is in `status`: the accepting agent, nobody again while it waits."""
    if status is EscalationStatus.ACCEPTED:
        if not agent:
            raise InvalidInputError("accepting an escalation needs the agent who takes it")
        return {"agent": agent, "accepted_at": now}
    if status is EscalationStatus.WAITING:
        return {"agent": None}
    return {}
