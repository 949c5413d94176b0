"""/api/notifications: the inbox, preferences, platform sends and workflows; /api/users/{id}.

The user directory route lives here because notifications are what it exists for.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from base.errors import Invalid
from base.identity import Caller
from delivery.notifications import Notifications, Outgoing
from delivery.notifications import workflows as flows
from delivery.notifications.preferences import valid_timezone
from schemas.notifications import (
    InvestmentEvent,
    MarketplaceAlert,
    NdaDecision,
    NdaRequest,
    PreferencesUpdate,
    ProductionUpdate,
    SendNotification,
    UserProfile,
    UserUpdate,
)
from server.auth import require_role
from server.http import body, caller, ensure_accepting, int_param, json, services

MAX_PAGE = 100
PLATFORM_ROLES = ("service", "admin")


def _notifications(request: Request) -> Notifications:
    found: Notifications = services(request).notifications
    return found


async def _platform(request: Request) -> Caller:
    who = await caller(request)
    require_role(who, *PLATFORM_ROLES)
    ensure_accepting(services(request))
    return who


async def _accept(request: Request, items: list[Outgoing]) -> Response:
    accepted = await _notifications(request).service.notify(items)
    return json(accepted, status=202)


async def _names(request: Request, *user_ids: str) -> dict[str, str]:
    found = await _notifications(request).directory.get_many(user_ids)
    return {user_id: row.name for user_id, row in found.items() if row.name}


# ---- the caller's inbox ---------------------------------------------------------


async def list_notifications(request: Request) -> Response:
    who = await caller(request)
    limit = int_param(request, "limit", default=50, lo=1, hi=MAX_PAGE)
    assert limit is not None
    unread = request.query_params.get("unread", "").lower()
    if unread not in ("", "true", "false", "1", "0"):
        raise Invalid("unread must be true or false")
    page = await _notifications(request).service.page(
        who.user_id, unread in ("true", "1"), request.query_params.get("cursor") or None, limit
    )
    return json(page)


async def read(request: Request) -> Response:
    who = await caller(request)
    count = await _notifications(request).service.read(
        who.user_id, request.path_params["notification_id"]
    )
    return json(count)


async def read_all(request: Request) -> Response:
    who = await caller(request)
    return json(await _notifications(request).service.read_all(who.user_id))


async def get_preferences(request: Request) -> Response:
    who = await caller(request)
    prefs = await _notifications(request).preferences.get(who.user_id)
    return json(prefs.view())


async def put_preferences(request: Request) -> Response:
    who = await caller(request)
    change = await body(request, PreferencesUpdate)
    return json(await _notifications(request).preferences.update(who.user_id, change))


# ---- the platform -----------------------------------------------------------------


async def send(request: Request) -> Response:
    await _platform(request)
    data = await body(request, SendNotification)
    if not data.user_id and not data.user_ids:
        raise Invalid("userId or userIds is required - at `$.userId`")
    return await _accept(request, flows.send(data))


async def nda_request(request: Request) -> Response:
    await _platform(request)
    data = await body(request, NdaRequest)
    names = await _names(request, data.requester_id)
    return await _accept(request, flows.nda_request(data, names, _app_url(request)))


async def nda_approved(request: Request) -> Response:
    return await _nda_decision(request, approved=True)


async def nda_rejected(request: Request) -> Response:
    return await _nda_decision(request, approved=False)


async def _nda_decision(request: Request, approved: bool) -> Response:
    await _platform(request)
    data = await body(request, NdaDecision)
    names = await _names(request, data.owner_id)
    return await _accept(request, flows.nda_decision(data, approved, names, _app_url(request)))


async def investment(request: Request) -> Response:
    await _platform(request)
    data = await body(request, InvestmentEvent)
    names = await _names(request, data.investor_id, data.creator_id)
    return await _accept(request, flows.investment(data, names, _app_url(request)))


async def production(request: Request) -> Response:
    await _platform(request)
    data = await body(request, ProductionUpdate)
    return await _accept(request, flows.production(data, _app_url(request)))


async def marketplace(request: Request) -> Response:
    await _platform(request)
    data = await body(request, MarketplaceAlert)
    return await _accept(request, flows.marketplace(data, _app_url(request)))


def _app_url(request: Request) -> str:
    return _notifications(request).app_url


# ---- the user directory -----------------------------------------------------------


async def put_user(request: Request) -> Response:
    await _platform(request)
    data = await body(request, UserUpdate)
    user_id = request.path_params["user_id"]
    if not 0 < len(user_id) <= 128:
        raise Invalid("user id must be 1 to 128 characters")
    fields: dict[str, Any] = {
        name: value
        for name in ("email", "name", "timezone", "locale")
        if (value := getattr(data, name)) is not msgspec.UNSET
    }
    if isinstance(fields.get("timezone"), str):
        valid_timezone(fields["timezone"])
    notifications = _notifications(request)
    row = await notifications.directory.update(user_id, fields)
    # The timezone feeds quiet hours and digest windows.
    await notifications.preferences.invalidate(user_id)
    return json(
        UserProfile(
            id=row.id, email=row.email, name=row.name, timezone=row.timezone, locale=row.locale
        )
    )


routes = [
    Route("/api/notifications", list_notifications, methods=["GET"]),
    Route("/api/notifications/read-all", read_all, methods=["POST"]),
    Route("/api/notifications/send", send, methods=["POST"]),
    Route("/api/notifications/preferences", get_preferences, methods=["GET"]),
    Route("/api/notifications/preferences", put_preferences, methods=["PUT"]),
    Route("/api/notifications/nda/request", nda_request, methods=["POST"]),
    Route("/api/notifications/nda/approved", nda_approved, methods=["POST"]),
    Route("/api/notifications/nda/rejected", nda_rejected, methods=["POST"]),
    Route("/api/notifications/investment", investment, methods=["POST"]),
    Route("/api/notifications/production", production, methods=["POST"]),
    Route("/api/notifications/marketplace", marketplace, methods=["POST"]),
    Route("/api/notifications/{notification_id}/read", read, methods=["POST"]),
    Route("/api/users/{user_id}", put_user, methods=["PUT"]),
]
