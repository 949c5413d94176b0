"""/api/users/{id}/export and DELETE /api/users/{id}: what is stored about a user, and its erasure.

Platform tokens only (service or admin): the platform answers its users' requests and
calls these on their behalf.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from base.clock import iso
from base.errors import Invalid, Unavailable
from base.identity import Caller
from schemas.users import ErasureAccepted
from server.auth import SUB_PATTERN, require_role
from server.http import caller, ensure_accepting, json, services
from storage.db import DatabaseUnavailable

PLATFORM_ROLES = ("service", "admin")


async def _subject(request: Request) -> tuple[Caller, str]:
    """The platform caller and the user the request is about."""
    who = await caller(request)
    require_role(who, *PLATFORM_ROLES)
    user_id: str = request.path_params["user_id"]
    if SUB_PATTERN.fullmatch(user_id) is None:
        raise Invalid("user id must be 1-128 characters of letters, digits and _ - . @ :")
    return who, user_id


async def export(request: Request) -> Response:
    _, user_id = await _subject(request)
    pieces = services(request).privacy.export(user_id)
    # The first piece before the answer starts: storage that is down is a 503, not a
    # stream that breaks off after a 200.
    try:
        first = await anext(pieces)
    except DatabaseUnavailable as exc:
        await pieces.aclose()
        raise Unavailable("storage unavailable") from exc

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for piece in pieces:
            yield piece

    return StreamingResponse(
        rest(),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="export.json"'},
    )


async def erase(request: Request) -> Response:
    who, user_id = await _subject(request)
    svc = services(request)
    ensure_accepting(svc)
    try:
        requested_at = await svc.privacy.request_erasure(user_id, who.user_id)
    except DatabaseUnavailable as exc:
        raise Unavailable("storage unavailable, erasure not recorded") from exc
    return json(
        ErasureAccepted(user_id=user_id, status="pending", requested_at=iso(requested_at)),
        status=202,
    )


routes = [
    Route("/api/users/{user_id}/export", export, methods=["GET"]),
    Route("/api/users/{user_id}", erase, methods=["DELETE"]),
]
