"""/api/push: the VAPID public key, a user's browser subscriptions, the service worker."""

from __future__ import annotations

import functools
import json as jsonlib
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from delivery.push import PushService
from schemas.push import SubscriptionIn
from server.http import body, caller, ensure_accepting, json, services

WORKER = Path(__file__).resolve().parent.parent / "static" / "pitchey-push-sw.js"


def _push(request: Request) -> PushService:
    push: PushService = services(request).push.service
    return push


async def public_key(request: Request) -> Response:
    await caller(request)
    return json(_push(request).public_key())


async def subscribe(request: Request) -> Response:
    who = await caller(request)
    ensure_accepting(services(request))
    created, new = await _push(request).subscribe(who.user_id, await body(request, SubscriptionIn))
    return json(created, status=201 if new else 200)


async def list_mine(request: Request) -> Response:
    who = await caller(request)
    return json(await _push(request).list(who.user_id))


async def delete(request: Request) -> Response:
    who = await caller(request)
    await _push(request).delete(who.user_id, request.path_params["subscription_id"])
    return Response(status_code=204)


@functools.cache
def _worker_source(app_url: str) -> str:
    return WORKER.read_text().replace('"__APP_URL__"', jsonlib.dumps(app_url))


async def service_worker(request: Request) -> Response:
    """The service worker, with APP_URL written in: a click opens APP_URL + the push's path.

    `Service-Worker-Allowed: /` lets a page register it for its whole origin when the
    web app serves this path (a proxy of /api) on its own origin.
    """
    app_url = services(request).settings.app_url.rstrip("/")
    return Response(
        _worker_source(app_url),
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


routes = [
    Route("/api/push/public-key", public_key, methods=["GET"]),
    Route("/api/push/subscriptions", subscribe, methods=["POST"]),
    Route("/api/push/subscriptions", list_mine, methods=["GET"]),
    Route("/api/push/subscriptions/{subscription_id}", delete, methods=["DELETE"]),
    Route("/api/push/sw.js", service_worker, methods=["GET"]),
]
