"""Logging: structured JSON lines with the request or connection id, and no secrets.

Every line carries `request_id` (REST, also returned as `X-Request-Id`) or
`connection_id` (WebSocket) from a context variable, so one request's or one
connection's lines can be found together. Bearer tokens are redacted wherever
they appear (uvicorn logs WebSocket paths with their `?token=`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from typing import Any

_TOKEN = re.compile(r"(token=)[^&\s\"']+")

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
connection_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "connection_id", default=None
)


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1[redacted]", text) if "token=" in text else text


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class QuietConnections(logging.Filter):
    """Drops uvicorn's lines per WebSocket connection: '"WebSocket /ws" [accepted]',
    'connection open' and 'connection closed'.

    These are access lines under another logger's name: 10,000 clients connecting wrote
    20,000 of them, 8% of the server's CPU in the storm (py-spy, `benchmarks run idle`).
    HTTP access lines are off for the same reason (and for the tokens in URLs);
    LOG_LEVEL=debug keeps them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not isinstance(record.msg, str):
            return True
        return not (record.msg.startswith('%s - "WebSocket ') or record.msg in _PER_CONNECTION)


_PER_CONNECTION = frozenset({"connection open", "connection closed"})


class AddContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.connection_id = connection_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "connection_id"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = getattr(record, "request_id", None) or getattr(record, "connection_id", None)
        return f"{line} [{context}]" if context is not None else line


def configure(level: str = "info", fmt: str = "json") -> None:
    """Route every logger (ours and uvicorn's) through one handler with our formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactTokens())
    handler.addFilter(AddContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    handshakes = logging.getLogger("uvicorn.error")
    handshakes.filters[:] = [f for f in handshakes.filters if not isinstance(f, QuietConnections)]
    if level.lower() != "debug":
        handshakes.addFilter(QuietConnections())


def install() -> None:
    """Redaction for loggers configured by someone else (uvicorn run without our CLI)."""
    for name in ("uvicorn.error", "uvicorn.access", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
