"""Log lines tagged with the SIP message being handled: `call_id=... method=...`.

The dispatcher enters a context for each message it handles (a `ContextVar`, so it
follows the message into its database thread and its NOTIFY fan-out and nowhere else);
`SipContextFilter` copies it onto every log record (as `call_id`, `method` and `sip`, for
any formatter to use), and the two formatters print it: `PlainFormatter` at the end of
the line, `JsonFormatter` as fields (LOG_FORMAT=plain|json, see README).
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SipContext:
    call_id: str
    method: str
    received: float  # time.time() when the message arrived


current: ContextVar[SipContext | None] = ContextVar("sip_context", default=None)


def enter(call_id: str, method: str, received: float) -> Token:
    return current.set(SipContext(_safe(call_id), _safe(method), received))


def leave(token: Token) -> None:
    current.reset(token)


def _safe(value: str) -> str:
    """A header value fit for a log line: printable, no spaces, bounded."""
    value = value[:128]
    if value.isprintable() and " " not in value:  # isprintable() is False for other spaces
        return value  # the usual case, without rebuilding the string
    return "".join(c if c.isprintable() and not c.isspace() else "?" for c in value)


class SipContextFilter(logging.Filter):
    """Adds `call_id`, `method` and `sip` (" call_id=... method=..." or "") to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current.get()
        if context is None:
            record.call_id = record.method = None
            record.sip = ""
        else:
            record.call_id, record.method = context.call_id, context.method
            record.sip = f" call_id={context.call_id} method={context.method}"
        return True


class PlainFormatter(logging.Formatter):
    """The configured format, then the SIP context (before any traceback)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record) + getattr(record, "sip", "")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, call_id, method, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "call_id", None) is not None:
            line["call_id"] = record.call_id
            line["method"] = record.method
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
