"""The Starlette application: routes, error handlers and the lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles

from rooms.errors import ServiceError
from schemas.settings import Settings
from server import logs
from server.errors import http_error, service_error, unexpected_error
from server.lifespan import lifespan_for
from server.middleware import RejectNul, RequestId
from server.routes import attachments, docs, email, health, messages, notifications, pages
from server.settings import load_settings
from server.ws import websocket_endpoint

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    # In a uvicorn worker process nothing configured logging yet: do it once per process.
    if not logging.getLogger().handlers:
        logs.configure(settings.log_level, settings.log_format)
    logs.install()
    if settings.sentry_dsn:
        from server import sentry

        sentry.init(settings.sentry_dsn, settings.environment)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with lifespan_for(settings) as services:
            app.state.services = services
            yield

    routes: list[BaseRoute] = [
        *health.routes,
        *docs.routes,
        *pages.routes,
        # Before the messages routes: `/api/messages/{conversation_id}` would take "attachments".
        *attachments.routes,
        *messages.routes,
        *email.routes,
        *notifications.routes,
        WebSocketRoute("/ws", websocket_endpoint),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestId), Middleware(RejectNul)],
        lifespan=lifespan,
        exception_handlers={
            ServiceError: service_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
    )
