"""REST for tickets that people work (list, open, change, notes, events) and the agents' dashboard.

Agents and admins may call every route. A caller's phone number is shown in full to the ticket's
owner and to admins, masked (138****5678) to everyone else. Routes stay thin: the work is in
`ticketing.store` and `ticketing.reports`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from gateway import accounts
from gateway.auth import AgentDep, Principal, Role
from gateway.rest import CALL_ID_PATTERN, Offset, RowId, ServicesDep, SessionDep
from ticketing import reports, store
from ticketing.errors import (
    CallNotFound,
    ConcurrentUpdateError,
    InvalidInputError,
    InvalidStatusTransition,
    NotFoundError,
)
from ticketing.masking import mask_ticket
from ticketing.models import TicketCategory, TicketPriority
from ticketing.schemas import (
    ACCOUNT_NAME_PATTERN,
    DashboardPublic,
    TicketCreate,
    TicketEventPublic,
    TicketNoteCreate,
    TicketPage,
    TicketPublic,
    TicketUpdate,
)

router = APIRouter()

ME = "me"  # owner=me: the account that asks
SORT_PATTERN = rf"^-?({'|'.join(store.TICKET_SORTS)})$"
PHONE_PATTERN = r"^\+?[0-9]{3,20}$"


def _shown(ticket: TicketPublic, who: Principal) -> TicketPublic:
    return ticket if who.role is Role.ADMIN or ticket.owner == who.name else mask_ticket(ticket)


def _statuses(values: list[str] | None) -> tuple[str, ...]:
    """`status=new&status=assigned` or `status=new,assigned`."""
    return tuple(part.strip() for value in values or () for part in value.split(",") if part.strip())


def _refusal(exc: Exception) -> HTTPException:
    if isinstance(exc, NotFoundError):
        return HTTPException(status_code=404, detail=str(exc))
    if isinstance(exc, InvalidStatusTransition | ConcurrentUpdateError):
        return HTTPException(status_code=409, detail=str(exc))
    return HTTPException(status_code=422, detail=str(exc))


Refused = (NotFoundError, InvalidInputError, ConcurrentUpdateError)


@router.get("/v1/tickets", response_model=TicketPage)
def list_tickets(
    who: AgentDep, session: SessionDep, services: ServicesDep,
    status: Annotated[list[str] | None, Query(description="repeat it or separate with commas")] = None,
    category: TicketCategory | None = None,
    owner: Annotated[str | None, Query(pattern=ACCOUNT_NAME_PATTERN, description="an account name, or `me`")] = None,
    unassigned: Annotated[bool | None, Query(description="true: the queue nobody owns")] = None,
    priority: TicketPriority | None = None,
    overdue: bool | None = None,
    phone: Annotated[str | None, Query(pattern=PHONE_PATTERN)] = None,
    q: Annotated[str | None, Query(max_length=200, description="in the summary, address or number")] = None,
    call_id: Annotated[str | None, Query(pattern=CALL_ID_PATTERN)] = None,
    sort: Annotated[str, Query(pattern=SORT_PATTERN)] = "-created_at",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> TicketPage:
    """Tickets, newest first unless `sort` says otherwise (created_at, updated_at, priority, due,
    first_response_due, number; `-` first for descending), with how many match in all."""
    query = store.TicketQuery(statuses=_statuses(status), category=category, priority=priority,
                              owner=who.name if owner == ME else owner, unassigned=unassigned, overdue=overdue, phone=phone, text=q,
                              call_id=call_id, sort=sort, limit=limit, offset=offset)
    try:
        page = store.search_tickets(session, query=query, now=services.clock.now())
    except InvalidInputError as exc:
        raise _refusal(exc) from None
    return TicketPage(items=[_shown(ticket, who) for ticket in page.items], total=page.total)


@router.post("/v1/tickets", response_model=TicketPublic, status_code=201)
def open_ticket(who: AgentDep, body: TicketCreate, session: SessionDep, services: ServicesDep) -> TicketPublic:
    """An agent opens a ticket (e.g. for a call: `call_id`); it starts `new`, its first response made."""
    try:
        ticket = store.open_ticket(session, call_id=body.call_id, category=body.category, slots=body.slots,
                                   summary=body.summary, phone=body.phone, address=body.address,
                                   priority=body.priority, now=services.clock.now(), actor=who.name)
    except CallNotFound as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    except Refused as exc:
        raise _refusal(exc) from None
    return _shown(ticket, who)


@router.get("/v1/tickets/{ticket_id}", response_model=TicketPublic)
def get_ticket(who: AgentDep, ticket_id: RowId, session: SessionDep, services: ServicesDep) -> TicketPublic:
    try:
        return _shown(store.get_ticket(session, ticket_id=ticket_id, now=services.clock.now()), who)
    except Refused as exc:
        raise _refusal(exc) from None


@router.patch("/v1/tickets/{ticket_id}", response_model=TicketPublic)
def update_ticket(who: AgentDep, ticket_id: RowId, update: TicketUpdate, session: SessionDep,
                  services: ServicesDep) -> TicketPublic:
    """Any of `status`, `owner` (null unassigns; `me` is the caller), `priority`, with an optional `note`.
    409 for an illegal move (the answer lists the allowed ones) or a change someone made meanwhile."""
    changes = update.model_fields_set
    owner = update.owner if "owner" in changes else store.UNSET
    if owner == ME:
        owner = who.name
    elif isinstance(owner, str) and not accounts.is_active_account(session, name=owner):
        raise HTTPException(status_code=422, detail=f"no active account named {owner!r} to own the ticket")
    try:
        ticket = store.update_ticket(session, ticket_id=ticket_id, status=update.status, owner=owner,
                                     priority=update.priority, note=update.note, now=services.clock.now(),
                                     actor=who.name)
    except Refused as exc:
        raise _refusal(exc) from None
    return _shown(ticket, who)


@router.post("/v1/tickets/{ticket_id}/notes", response_model=TicketEventPublic, status_code=201)
def add_note(who: AgentDep, ticket_id: RowId, body: TicketNoteCreate, session: SessionDep,
             services: ServicesDep) -> TicketEventPublic:
    try:
        ticket = store.add_ticket_note(session, ticket_id=ticket_id, text=body.text, now=services.clock.now(),
                                       actor=who.name)
    except Refused as exc:
        raise _refusal(exc) from None
    return ticket.events[-1]


@router.get("/v1/tickets/{ticket_id}/events", response_model=list[TicketEventPublic])
def list_events(who: AgentDep, ticket_id: RowId, session: SessionDep) -> list[TicketEventPublic]:
    """What happened to the ticket, oldest first; each event names its actor (null: the hotline, in a call)."""
    try:
        return _shown(store.get_ticket(session, ticket_id=ticket_id), who).events
    except Refused as exc:
        raise _refusal(exc) from None


@router.get("/v1/dashboard", response_model=DashboardPublic)
def dashboard(who: AgentDep, session: SessionDep, services: ServicesDep) -> DashboardPublic:
    """Today (local day) at a glance: calls, the share the bot handled alone, the escalation queue,
    tickets by category and status, SLA breaches, calls and escalations per hour."""
    return reports.dashboard(session, now=services.clock.now())
