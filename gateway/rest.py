"""REST: health, escalations, call records and accounts (tickets and the dashboard: `gateway.ticket_routes`;
the knowledge base: `gateway.kb_routes`). Routes stay thin.

Every route states who may call it: `AgentDep` (an agent or an admin) or `AdminDep`; only the
probes (/healthz, /readyz, /metrics) are open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from gateway import accounts, db
from gateway.accounts import AccountCreate, AccountCreated, AccountPublic
from gateway.auth import AdminDep, AgentDep
from gateway.live import DeskError
from gateway.metrics import CONTENT_TYPE_LATEST
from gateway.services import Services
from ticketing import store
from ticketing.errors import InvalidInputError, NotFoundError
from ticketing.schemas import CallRecordPublic, CallSummaryPublic, EscalationPublic

router = APIRouter()

MAX_ID = 2_147_483_647  # ids and offsets beyond a 32-bit integer are not ids: 422, not a database overflow
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
CALL_ID_PATTERN = r"^[0-9A-Za-z-]{1,36}$"  # call ids are UUIDs; anything else is refused before the store


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _not_found(exc: NotFoundError) -> HTTPException:
    return HTTPException(status_code=404, detail=str(exc))


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> JSONResponse:
    store_ok = db.ping(services.engine)
    models = {part: asdict(state) for part, state in services.model_states.items()}
    body = {"ready": services.ready and store_ok, "models": models, "store": store_ok,
            "error": services.load_error, "active_calls": services.active_calls}
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics, open to scrapers: counts, states and durations, no personal data."""
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/escalations", response_model=list[EscalationPublic])
def list_escalations(who: AgentDep, session: SessionDep, status: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[EscalationPublic]:
    try:
        return store.list_escalations(session, status=status, limit=limit)
    except InvalidInputError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


_DESK_STATUS = {"unknown_escalation": 404, "taken": 409, "not_waiting": 409, "not_yours": 409, "not_open": 409}


async def _on_desk(services: Services, escalation_id: int, act: Callable[[], Awaitable[Any]]) -> EscalationPublic:
    try:
        await act()
    except DeskError as exc:
        raise HTTPException(status_code=_DESK_STATUS.get(exc.code, 409), detail=exc.message) from None
    return await asyncio.to_thread(_escalation, services, escalation_id)


def _escalation(services: Services, escalation_id: int) -> EscalationPublic:
    with services.sessions() as session:
        return store.get_escalation(session, escalation_id=escalation_id)


def _call_of(services: Services, escalation_id: int) -> str:
    with services.sessions() as session:
        try:
            call_id = store.get_escalation(session, escalation_id=escalation_id).call_id
        except NotFoundError as exc:
            raise _not_found(exc) from None
    if call_id is None:
        raise HTTPException(status_code=409, detail=f"escalation {escalation_id} belongs to no call")
    return call_id


@router.post("/v1/escalations/{escalation_id}/accept", response_model=EscalationPublic)
async def accept_escalation(who: AgentDep, escalation_id: RowId, services: ServicesDep) -> EscalationPublic:
    """Take a waiting call (one agent only; 409 names who has it). The console does this over /v1/agent,
    where the call's words then arrive."""
    return await _on_desk(services, escalation_id, lambda: services.desk.accept(who.name, escalation_id))


@router.post("/v1/escalations/{escalation_id}/hand-back", response_model=EscalationPublic)
async def hand_back_escalation(who: AgentDep, escalation_id: RowId, services: ServicesDep) -> EscalationPublic:
    """The bot takes the call again (only the agent holding it may)."""
    call_id = await asyncio.to_thread(_call_of, services, escalation_id)
    return await _on_desk(services, escalation_id, lambda: services.desk.hand_back(who.name, call_id))


@router.post("/v1/escalations/{escalation_id}/close", response_model=EscalationPublic)
async def close_escalation(who: AgentDep, escalation_id: RowId, services: ServicesDep) -> EscalationPublic:
    """Done with it: a waiting call goes back to the bot; a held one is closed by its agent."""
    return await _on_desk(services, escalation_id, lambda: services.desk.close(who.name, escalation_id))


@router.get("/v1/calls", response_model=list[CallSummaryPublic])
def list_calls(who: AgentDep, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
               offset: Offset = 0) -> list[CallSummaryPublic]:
    return store.list_calls(session, limit=limit, offset=offset)


@router.get("/v1/calls/{call_id}", response_model=CallRecordPublic)
def get_call(who: AgentDep, call_id: Annotated[str, Path(pattern=CALL_ID_PATTERN)],
             session: SessionDep) -> CallRecordPublic:
    try:
        return store.get_call(session, call_id=call_id)
    except NotFoundError as exc:
        raise _not_found(exc) from None



# ---------------------------------------------------------------- accounts


@router.get("/v1/me")
def who_am_i(who: AgentDep) -> dict[str, str]:
    """The account a token belongs to (the console checks a token with it)."""
    return {"name": who.name, "role": who.role.value}



@router.post("/v1/accounts", response_model=AccountCreated, status_code=201)
def create_account(who: AdminDep, body: AccountCreate, session: SessionDep, services: ServicesDep) -> AccountCreated:
    """A new agent (or admin) account; its token is in this answer and nowhere else."""
    try:
        return accounts.create_account(session, name=body.name, role=body.role, now=services.clock.now(),
                                       created_by=who.name)
    except accounts.AccountExists as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


@router.get("/v1/accounts", response_model=list[AccountPublic])
def list_accounts(who: AdminDep, session: SessionDep) -> list[AccountPublic]:
    return accounts.list_accounts(session)


@router.delete("/v1/accounts/{name}", response_model=AccountPublic)
def disable_account(who: AdminDep, name: str, session: SessionDep) -> AccountPublic:
    """The account's token stops working at once; the account stays, named in the records it made."""
    if name == accounts.ADMIN_NAME:
        raise HTTPException(status_code=409, detail="the admin account cannot be disabled; rotate its token instead")
    try:
        return accounts.disable_account(session, name=name)
    except accounts.AccountNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
