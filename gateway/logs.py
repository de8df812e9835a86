"""Log lines that say which call they belong to and never carry a phone or ID number in the clear."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from types import TracebackType

from dialogue.safety import mask_pii

# Set for the tasks of one call; asyncio tasks and `to_thread` workers started from them inherit it.
current_call: ContextVar[str] = ContextVar("hotline_call_id", default="-")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [call %(call_id)s]: %(message)s"

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class MaskingFormatter(logging.Formatter):
    """Tags each line with the call it belongs to and masks numbers in its message and traceback."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "call_id"):
            record.call_id = current_call.get()
        record.message = mask_pii(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: _ExcInfo) -> str:
        return mask_pii(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return mask_pii(super().formatStack(stack_info))


def configure_logging(level: str) -> None:
    """Everything to stderr through the masking formatter, uvicorn's loggers included (serve uvicorn
    with `log_config=None`, or it installs its own handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter(LOG_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
