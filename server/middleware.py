"""ASGI middleware: request ids; admission (a bound on requests in flight, no NUL characters)."""

from __future__ import annotations

import random
import re
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.codec import encode
from schemas.messages import Error, ErrorBody
from server import logs

# A caller's id is reused only when it is short and plain, so it cannot forge log lines.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        # An id tells requests apart in logs; it guards nothing, so the pseudo-random
        # generator serves (uuid4 reads the OS's random source on every request).
        rid = given if _ACCEPTABLE.match(given) else f"{random.getrandbits(64):016x}"
        token = logs.request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.request_id.reset(token)


def _has_nul(scope: Scope) -> bool:
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    # unquote only what has escapes: most requests have none.
    return (
        b"\x00" in raw
        or (b"%" in raw and b"\x00" in unquote_to_bytes(raw))
        or b"\x00" in query
        or (b"%" in query and b"\x00" in unquote_to_bytes(query))
    )


async def _answer(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [(b"content-type", b"application/json"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_NUL_REFUSED = encode(
    Error(error=ErrorBody(code="bad_request", message="NUL characters are not allowed"))
)
_TOO_MANY = encode(
    Error(error=ErrorBody(code="unavailable", message="too many requests in flight"))
)


class Admission:
    """Two refusals before routing, in one layer (each layer is one more coroutine frame
    that every request enters and every await inside it resumes through).

    At most `limit` HTTP requests in flight in this process; past it 503 and Retry-After.
    uvicorn's `limit_concurrency` counts open connections, WebSockets included, so at
    10,000 chat connections it would refuse every request; this counts HTTP requests only
    (the Gateway hands `/ws` to its endpoint before any middleware).

    A NUL in a path or query string is refused with 400 (a WebSocket: closed with 1008).
    PostgreSQL text cannot hold NUL, and no identifier of ours contains one; refusing it
    here keeps it from reaching storage as a 500. (Bodies: see server.http.reject_nul.)
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and _has_nul(scope):
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await _answer(send, 503, _TOO_MANY, (b"retry-after", b"1"))
            return
        self.in_flight += 1
        try:
            if _has_nul(scope):
                await _answer(send, 400, _NUL_REFUSED)
                return
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
