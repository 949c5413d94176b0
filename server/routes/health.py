"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from base.errors import NotFound
from delivery import metrics as delivery_metrics
from server.auth import bearer, require_role, verify_token
from server.http import json, services
from storage.email import EmailStore
from storage.notifications import NotificationStore
from storage.push import PushStore


async def healthz(request: Request) -> Response:
    return json({"status": "ok"})


async def readyz(request: Request) -> Response:
    svc = services(request)
    timeout = svc.settings.readiness_timeout
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(svc.db.fetchrow("SELECT 1"), timeout)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    # Reads can work while writes cannot (a full disk): ready means messages can be stored.
    try:
        failure = await asyncio.wait_for(svc.messaging.writer.can_commit(), timeout)
    except TimeoutError:
        failure = "timeout"
    checks["writer"] = "ok" if failure is None else f"error: {failure}"
    ping = getattr(svc.broker, "ping", None)
    if ping is not None:
        try:
            await ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values()) and not svc.draining
    return json(
        {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
    )


async def metrics(request: Request) -> Response:
    """/metrics on the main port: open in development; in production an admin token is
    required; with METRICS_PORT set it is served there only (404 here)."""
    settings = services(request).settings
    if settings.metrics_port:
        raise NotFound("not found")
    if not settings.development:
        who = verify_token(settings.jwt_secret, bearer(request.headers.get("authorization")))
        require_role(who, "admin")
    return await metrics_text(request)


async def metrics_text(request: Request) -> Response:
    """Prometheus text format; each process reports its own figures (scrape every node).

    Queue depths are read from the database at scrape time: the queues are shared by every
    node, so any node's figure is the service's.
    """
    svc = services(request)
    queues: dict[str, EmailStore | NotificationStore | PushStore] = {
        "email": svc.email.store,
        "notification_email": svc.notifications.store,
        "push": svc.push.store,
    }
    now = time.time() * 1000
    for name, store in queues.items():
        try:
            depth, oldest = await store.queue_stats()
        except Exception:
            continue  # the database is away: /readyz says so; keep the last figures
        delivery_metrics.queue_depth.labels(name).set(depth)
        age = (now - oldest) / 1000 if oldest is not None else 0.0
        delivery_metrics.queue_oldest_seconds.labels(name).set(max(0.0, age))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
