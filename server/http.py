"""Request helpers shared by every route: the caller, the body, query numbers, JSON answers."""

from __future__ import annotations

import asyncio
import re
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from base.errors import Invalid, PayloadTooLarge, Unavailable
from base.identity import Caller
from schemas.bounds import free_json_problem
from schemas.codec import encode
from schemas.settings import Settings
from server.auth import bearer
from server.errors import decode_error
from server.wiring import Services

T = TypeVar("T")


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def caller(request: Request) -> Caller:
    svc = services(request)
    who = svc.tokens.verify(bearer(request.headers.get("authorization")))
    written = svc.messaging.remember(who)
    if written is not None:
        # REST callers may act on the directory at once (a notification's email address):
        # wait for the shared write. Concurrent first calls share one transaction.
        try:
            await asyncio.wait_for(asyncio.shield(written), 5.0)
        except TimeoutError:
            raise Unavailable("storage unavailable") from None
        except Unavailable:
            raise Unavailable("storage unavailable") from None
    return who


async def read_body(request: Request, limit: int) -> bytes:
    """The body, counted while it streams in: past `limit` bytes reading stops with 413.

    `request.body()` would hold the whole body before anyone could look at its size;
    a chunked body has no Content-Length to check up front.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, limit: int) -> bytes:
    """A JSON body within `limit` bytes: present and free of NUL characters."""
    raw = await read_body(request, limit)
    if not raw:
        raise Invalid("a JSON body is required")
    reject_nul(raw)
    return raw


def decode_json(raw: bytes, kind: type[T], settings: Settings) -> T:
    """Decode and validate, including the bounds of free-form fields (422 when broken)."""
    try:
        data = msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError as exc:
        raise decode_error(exc) from None
    except RecursionError:
        # msgspec gives up on nesting past Python's recursion limit (thousands of levels).
        raise Invalid("the JSON body is nested too deeply") from None
    check_free_json(data, settings)
    return data


def check_free_json(data: object, settings: Settings) -> None:
    if isinstance(data, msgspec.Struct):
        problem = free_json_problem(data, settings.json_max_depth, settings.json_field_max_bytes)
        if problem is not None:
            raise Invalid(problem)


async def body(request: Request, kind: type[T]) -> T:
    settings = services(request).settings
    raw = await json_body(request, settings.max_body_bytes)
    return decode_json(raw, kind, settings)


# An escaped NUL: `\u0000` after an even number of backslashes (`\\u0000` is the text "\u0000").
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def reject_nul(raw: bytes) -> None:
    """PostgreSQL text cannot hold NUL; a JSON string with one is refused up front (422)."""
    if b"u0000" in raw and _NUL.search(raw):
        raise Invalid("strings must not contain NUL characters (\\u0000)")


def int_param(request: Request, name: str, *, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise Invalid(f"{name} must be between {lo} and {hi}")
    return value


def json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    payload = obj if isinstance(obj, bytes) else encode(obj)
    return Response(payload, status_code=status, media_type="application/json", headers=headers)


def ensure_accepting(svc: Services) -> None:
    if svc.draining:
        raise Unavailable("server is shutting down")
