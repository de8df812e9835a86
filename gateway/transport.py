"""How a call's bytes travel: the call logic (gateway/calls.py) speaks to a `CallTransport`, so a
SIP/RTP bridge can carry calls as the WebSocket does today."""

from __future__ import annotations

from typing import Protocol

from fastapi import WebSocket, WebSocketDisconnect


class LineGone(ConnectionError):
    """The far end has hung up or the connection broke."""


class CallTransport(Protocol):
    async def receive(self) -> bytes | str:
        """The next message from the caller's side: audio (bytes) or a control message (text).
        Raises LineGone when the line is gone."""
        ...

    async def send_text(self, text: str) -> None:
        """An event to the caller's client; raises LineGone."""
        ...

    async def send_audio(self, frame: bytes) -> None:
        """Reply audio in the call's codec and rate; raises LineGone."""
        ...

    async def close(self, code: int, reason: str = "") -> None: ...


class WebSocketTransport:
    """The call socket /v1/calls: JSON text events, binary audio frames."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def receive(self) -> bytes | str:
        try:
            message = await self._ws.receive()
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise LineGone(str(exc)) from None
        if message["type"] == "websocket.disconnect":
            raise LineGone("the caller's client closed the socket")
        if message.get("bytes") is not None:
            return bytes(message["bytes"])
        return str(message.get("text") or "")

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise LineGone(str(exc)) from None

    async def send_audio(self, frame: bytes) -> None:
        try:
            await self._ws.send_bytes(frame)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise LineGone(str(exc)) from None

    async def close(self, code: int, reason: str = "") -> None:
        await self._ws.close(code=code, reason=reason)
