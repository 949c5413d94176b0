"""/api/webhooks: outgoing webhook endpoints (admin only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from delivery.webhooks_out.service import Webhooks
from schemas.webhooks import TestSent, WebhookIn, WebhookPatch
from server.auth import require_role
from server.http import body, caller, ensure_accepting, int_param, json, services

MAX_ATTEMPTS_PAGE = 500


async def _admin(request: Request) -> Webhooks:
    who = await caller(request)
    # Endpoints receive every email outcome, notification and message id: an operator's
    # choice, and the secret is shown to whoever creates or rotates it.
    require_role(who, "admin")
    hooks: Webhooks = services(request).webhooks_out
    return hooks


def _id(request: Request) -> str:
    value: str = request.path_params["webhook_id"]
    return value


async def create(request: Request) -> Response:
    hooks = await _admin(request)
    ensure_accepting(services(request))
    return json(await hooks.create(await body(request, WebhookIn)), status=201)


async def list_all(request: Request) -> Response:
    return json(await (await _admin(request)).list())


async def get_one(request: Request) -> Response:
    return json(await (await _admin(request)).get(_id(request)))


async def update(request: Request) -> Response:
    hooks = await _admin(request)
    return json(await hooks.update(_id(request), await body(request, WebhookPatch)))


async def delete(request: Request) -> Response:
    await (await _admin(request)).delete(_id(request))
    return Response(status_code=204)


async def rotate(request: Request) -> Response:
    return json(await (await _admin(request)).rotate(_id(request)))


async def deliveries(request: Request) -> Response:
    hooks = await _admin(request)
    limit = int_param(request, "limit", default=50, lo=1, hi=MAX_ATTEMPTS_PAGE)
    assert limit is not None
    return json(await hooks.deliveries(_id(request), limit))


async def test(request: Request) -> Response:
    hooks = await _admin(request)
    ensure_accepting(services(request))
    return json(TestSent(message_id=await hooks.test(_id(request))), status=202)


routes = [
    Route("/api/webhooks", create, methods=["POST"]),
    Route("/api/webhooks", list_all, methods=["GET"]),
    Route("/api/webhooks/{webhook_id}", get_one, methods=["GET"]),
    Route("/api/webhooks/{webhook_id}", update, methods=["PATCH"]),
    Route("/api/webhooks/{webhook_id}", delete, methods=["DELETE"]),
    Route("/api/webhooks/{webhook_id}/rotate-secret", rotate, methods=["POST"]),
    Route("/api/webhooks/{webhook_id}/deliveries", deliveries, methods=["GET"]),
    Route("/api/webhooks/{webhook_id}/test", test, methods=["POST"]),
]
