"""The agents' socket `/v1/agent?token=…`: the live queue, taking a call, speaking in it, giving it back.

Messages are JSON text. The console sends `accept`, `say`, `hand_back` and `hang_up`; the desk sends
`hello`, `queue`, `accepted`, the caller's `partial` and `final`, what was `spoken`, `assist`,
`released` and `error` (see gateway/live.py and the README).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy.exc import SQLAlchemyError

from gateway import accounts, events
from gateway.live import DeskError, LiveDesk
from gateway.protocol import CLOSE_TRY_AGAIN, CLOSE_UNAUTHORIZED
from gateway.services import Services

log = logging.getLogger("hotline.agents")
router = APIRouter()

MAX_SAY_CHARS = 500
SEND_TIMEOUT_S = 10.0


@router.websocket("/v1/agent")
async def agent_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    await websocket.accept()
    agent = await _who(websocket, services)
    if agent is None:
        return
    desk: LiveDesk = services.desk
    lock = asyncio.Lock()

    async def send(event: dict[str, Any]) -> None:
        async with lock:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await websocket.send_text(json.dumps(event, ensure_ascii=False))

    seat = await desk.sit(agent, send)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if (text := message.get("text")) is not None:
                await _handle(desk, agent, text, send)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await desk.stand(seat)


async def _who(websocket: WebSocket, services: Services) -> str | None:
    token = websocket.query_params.get("token") or ""
    try:
        principal = await asyncio.to_thread(_principal, services, token)
    except SQLAlchemyError:
        await _close(websocket, "store_unavailable", "the store is not answering; try again shortly", CLOSE_TRY_AGAIN)
        return None
    if principal is None:
        await _close(websocket, "unauthorized", "an agent's or admin's token is needed (?token=)", CLOSE_UNAUTHORIZED)
        return None
    return principal.name


def _principal(services: Services, token: str) -> accounts.Principal | None:
    if not token:
        return None
    with services.sessions() as session:
        return accounts.principal_for_token(session, token=token)


async def _close(websocket: WebSocket, code: str, message: str, close_code: int) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_text(events.Error(code=code, message=message).to_json())
        await websocket.close(code=close_code, reason=code)


async def _handle(desk: LiveDesk, agent: str, text: str, send: Any) -> None:
    try:
        message = json.loads(text)
        kind = message.get("type")
        if kind == "accept":
            await send((await desk.accept(agent, int(message["escalation_id"]))).as_dict())
        elif kind == "say":
            await desk.say(agent, str(message["call_id"]), _words(message.get("text")))
        elif kind == "hand_back":
            await desk.hand_back(agent, str(message["call_id"]))
        elif kind == "hang_up":
            await desk.hang_up(agent, str(message["call_id"]))
        else:
            raise DeskError("bad_message", f"unknown message type {kind!r}; expected accept, say, hand_back "
                            "or hang_up")
    except DeskError as exc:
        await send(events.Error(code=exc.code, message=exc.message).as_dict())
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        await send(events.Error(code="bad_message",
                                message=f"not a desk message: {text[:80]!r}; see the README's agent socket table").as_dict())


def _words(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise DeskError("bad_message", "say needs a non-empty text")
    if len(text) > MAX_SAY_CHARS:
        raise DeskError("bad_message", f"say takes at most {MAX_SAY_CHARS} characters")
    return text.strip()
