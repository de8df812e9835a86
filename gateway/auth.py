"""Who may do what: REST routes declare a role with `AgentDep` or `AdminDep`; the call socket checks
its own token and the page's origin.

Agents and admins send `Authorization: Bearer TOKEN`. The admin's token works wherever an agent's
does. 401 means no or an unknown token, 403 a token whose role may not do this.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers, QueryParams

from gateway import accounts
from gateway.accounts import Principal, Role, tokens_match
from gateway.protocol import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, ProtocolError
from gateway.settings import Settings

__all__ = ["AdminDep", "AgentDep", "Principal", "Role", "call_refusal", "require_admin", "require_agent"]

log = logging.getLogger("hotline.auth")

_bearer = HTTPBearer(auto_error=False, description="an agent's or admin's token")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("this needs an agent's or admin's token: send Authorization: Bearer TOKEN")
    services = request.app.state.services
    try:
        with services.sessions() as session:
            principal = accounts.principal_for_token(session, token=credentials.credentials)
    except SQLAlchemyError:
        log.exception("checking a token failed: the store did not answer")
        raise HTTPException(status_code=503, detail="the store is not answering; try again shortly") from None
    if principal is None:
        raise _unauthorized("unknown or disabled token")
    return principal


def require_agent(request: Request, credentials: BearerDep) -> Principal:
    """An agent or an admin."""
    return _authenticate(request, credentials)


def require_admin(request: Request, credentials: BearerDep) -> Principal:
    principal = _authenticate(request, credentials)
    if principal.role is not Role.ADMIN:
        raise HTTPException(status_code=403, detail="only an admin may do this")
    return principal


AgentDep = Annotated[Principal, Depends(require_agent)]
AdminDep = Annotated[Principal, Depends(require_admin)]


# ---------------------------------------------------------------- the call socket


def _call_token(headers: Headers, query: QueryParams) -> str | None:
    if token := query.get("token"):
        return token
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def call_refusal(headers: Headers, query: QueryParams, settings: Settings) -> ProtocolError | None:
    """Why a caller may not open the call socket, or None when it may.

    Open by default (the embedded default listens on loopback). HOTLINE_CALL_TOKEN requires the
    token (`?token=` or `Authorization: Bearer`); HOTLINE_CALL_ORIGINS limits which web pages may
    open the socket (checked when the client sends an Origin header, as browsers always do).
    """
    origin = headers.get("origin")
    if origin is not None and settings.call_origins and origin.rstrip("/") not in settings.call_origins:
        return ProtocolError("forbidden_origin", "calls from this web page's origin are not allowed", CLOSE_FORBIDDEN)
    if settings.call_token is not None:
        given = _call_token(headers, query)
        if given is None:
            return ProtocolError("unauthorized", "this hotline needs a call token (?token= or Authorization: Bearer)",
                                 CLOSE_UNAUTHORIZED)
        if not tokens_match(given, settings.call_token.get_secret_value()):
            return ProtocolError("unauthorized", "the call token is not valid", CLOSE_UNAUTHORIZED)
    return None


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"']+")


class RedactCallTokens(logging.Filter):
    """The server's log names each socket's path with its query: `?token=` is written as `?token=***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _TOKEN_IN_QUERY.sub(r"\1***", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_call_tokens_in_server_logs() -> None:
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCallTokens) for f in logger.filters):
            logger.addFilter(RedactCallTokens())
