"""The call protocol's messages: the client's start message and the server's close codes."""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from asr.base import UnsupportedDialect
from asr.dialects import route_dialect
from core.audio import SUPPORTED_RATES, AudioFormat, Codec

CLOSE_NORMAL = 1000
CLOSE_TRY_AGAIN = 1013  # not ready yet, or at capacity
CLOSE_BAD_START = 4400
CLOSE_UNAUTHORIZED = 4401  # HOTLINE_CALL_TOKEN is set and the call brought no valid token
CLOSE_FORBIDDEN = 4403  # the web page's origin is not in HOTLINE_CALL_ORIGINS
CLOSE_START_TIMEOUT = 4408
CLOSE_UNSUPPORTED_FORMAT = 4415
MAX_FRAME_BYTES = 64_000
MAX_CALLER_ID_CHARS = 32
# A calling number as a switch passes it on: digits with an optional leading +, 3 to 20 of them.
_CALLER_ID = re.compile(r"\+?[0-9]{3,20}")
_CALLER_ID_SEPARATORS = str.maketrans("", "", " -()")


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, close_code: int = CLOSE_BAD_START) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


class StartMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["start"]
    codec: str
    sample_rate: int
    dialect: str = "auto"
    caller_id: str | None = None

    def audio_format(self) -> AudioFormat:
        try:
            codec = Codec(self.codec)
        except ValueError:
            supported = ", ".join(c.value for c in Codec)
            raise ProtocolError(
                "unsupported_codec", f"codec {self.codec!r} is not supported; use one of {supported}",
                CLOSE_UNSUPPORTED_FORMAT,
            ) from None
        if self.sample_rate not in SUPPORTED_RATES:
            raise ProtocolError(
                "unsupported_rate",
                f"sample_rate {self.sample_rate} is not supported; use one of {', '.join(map(str, SUPPORTED_RATES))}",
                CLOSE_UNSUPPORTED_FORMAT,
            )
        return AudioFormat(codec, self.sample_rate)

    def check_caller_id(self) -> None:
        """Normalises the calling number ('+86 138-0013-8000' -> '+8613800138000') or refuses it."""
        raw = self.caller_id
        if raw is None or not raw.strip():
            self.caller_id = None
            return
        if len(raw) > MAX_CALLER_ID_CHARS:
            raise ProtocolError("bad_caller_id", f"caller_id is {len(raw)} characters long; at most "
                                f"{MAX_CALLER_ID_CHARS} are allowed")
        number = raw.translate(_CALLER_ID_SEPARATORS)
        if not _CALLER_ID.fullmatch(number):
            raise ProtocolError("bad_caller_id", "caller_id must be a phone number: 3 to 20 digits, optionally "
                                "with a leading + (spaces, dashes and brackets are ignored)")
        self.caller_id = number

    def check_dialect(self) -> None:
        try:
            route_dialect(self.dialect)
        except UnsupportedDialect as exc:
            raise ProtocolError("unsupported_dialect", str(exc), CLOSE_UNSUPPORTED_FORMAT) from None


def parse_start(raw: str | bytes | None) -> StartMessage:
    if not isinstance(raw, str):
        raise ProtocolError("bad_start", "the first message must be a JSON text message of type 'start'")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad_start", f"the first message is not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or data.get("type") != "start":
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise ProtocolError("bad_start", f"the first message must have type 'start', got {kind!r}")
    try:
        return StartMessage.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ProtocolError("bad_start", f"invalid start message: {problems}") from None
