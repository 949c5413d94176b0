"""uvicorn's httptools protocol, with the request head bounded in size and in time.

uvicorn's httptools protocol accepts headers of any size (an 8 MiB header was answered
200) and waits forever for a request that stops halfway through its first line. Past
HTTP_MAX_HEADER_BYTES of request line and headers this protocol answers 431 and closes;
a head that has not fully arrived HTTP_HEADER_TIMEOUT seconds after the connection
opened (or after the next request's first byte) gets the connection closed.

uvicorn builds the protocol from a class path, so the limits come from the settings,
read once per process.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.settings import load_settings


@functools.cache
def _limits() -> tuple[int, float]:
    settings = load_settings()
    return settings.http_max_header_bytes, settings.http_header_timeout


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing; `send_400_response` answers 431."""


_ANSWER_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"connection: close\r\n"
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_head, self._head_timeout = _limits()
        # Bytes of the current request's head: received while it is incomplete, then
        # measured exactly (line and headers) when it completes.
        self._head_bytes = 0
        self._awaiting_head = True
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._awaiting_head and not self._refused:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head:
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_head = True
        self._head_bytes = 0
        if self._head_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._disarm()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self._max_head:
            self._refused = True
            raise HeadTooLarge
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._refused:
            self._answer_431()
        else:
            super().send_400_response(msg)

    def _refuse(self) -> None:
        self._refused = True
        self._answer_431()

    def _answer_431(self) -> None:
        body = (
            b'{"error":{"code":"headers_too_large","message":"request line and headers '
            b"exceed " + str(self._max_head).encode() + b' bytes"}}'
        )
        length = b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
        self.transport.write(_ANSWER_431 + length + body)
        self.transport.close()
        self._disarm()

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._awaiting_head and not self.transport.is_closing():
            self.transport.close()
