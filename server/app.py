"""The Starlette application: routes, error handlers and the lifespan."""

from __future__ import annotations

import contextlib
import logging
import mimetypes
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from base.errors import ServiceError
from schemas.settings import Settings
from server import logs
from server.errors import database_unavailable, http_error, service_error, unexpected_error
from server.middleware import Admission, RequestId
from server.routes import (
    attachments,
    docs,
    email,
    health,
    messages,
    notifications,
    pages,
    push,
    realtime,
    users,
    webhooks,
)
from server.routing import IndexedStarlette
from server.settings import load_settings, warn_about
from server.wiring import lifespan_for
from server.ws import websocket_endpoint
from storage.db import DatabaseUnavailable

STATIC_DIR = Path(__file__).parent / "static"
# Python maps .ts to Qt's translation files; the client's declarations are TypeScript.
mimetypes.add_type("application/typescript", ".ts")


class Gateway:
    """The process's ASGI app: `/ws` goes straight to the WebSocket endpoint, the rest to Starlette.

    A connection's handler lives as long as the connection; every middleware and routing
    layer around it keeps a coroutine frame alive for that long. At 10,000 connections
    those frames are kilobytes each, so the WebSocket path skips them. `__call__` is not
    a coroutine function for the same reason: it returns the handler's coroutine.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state = app.state

    @property
    def routes(self) -> list[BaseRoute]:
        return self.app.routes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            scope["app"] = self.app
            return websocket_endpoint(WebSocket(scope, receive=receive, send=send))
        return self.app(scope, receive, send)


def cors(settings: Settings) -> Middleware:
    """CORS for the REST API from ALLOWED_ORIGINS: the web app usually lives on another origin.

    Bearer tokens only, so no credentials: a page on an allowed origin must hold a token to
    do anything, and cookies never ride along. An origin not listed gets no CORS headers.
    """
    origins = list(settings.allowed_origins)
    return Middleware(
        CORSMiddleware,
        allow_origins=["*"] if "*" in origins else origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
        expose_headers=["Retry-After", "X-Request-Id"],
        allow_credentials=False,
        max_age=600,
    )


def create_app(settings: Settings | None = None) -> Gateway:
    settings = settings or load_settings()
    # In a uvicorn worker process nothing configured logging yet: do it once per process.
    if not logging.getLogger().handlers:
        logs.configure(settings.log_level, settings.log_format)
    logs.install()
    warn_about(settings)
    if settings.sentry_dsn:
        from server import sentry

        sentry.init(settings.sentry_dsn, settings.environment)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with lifespan_for(settings) as services, contextlib.AsyncExitStack() as extra:
            app.state.services = services
            if settings.metrics_port:
                from server.metrics_server import metrics_server

                await extra.enter_async_context(
                    metrics_server(services, settings.metrics_host, settings.metrics_port)
                )
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
        *realtime.routes,
        *webhooks.routes,
        *push.routes,
        *users.routes,
        # Reached only when the app runs without the Gateway (the Gateway answers /ws itself).
        WebSocketRoute("/ws", websocket_endpoint),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Gateway(
        IndexedStarlette(
            routes=routes,
            middleware=[
                Middleware(RequestId),
                cors(settings),
                # Inside CORS, so a browser can read the 503 (and 400) and its Retry-After.
                Middleware(Admission, limit=settings.http_max_concurrency),
            ],
            lifespan=lifespan,
            exception_handlers={
                ServiceError: service_error,
                DatabaseUnavailable: database_unavailable,
                HTTPException: http_error,
                Exception: unexpected_error,
            },
        )
    )
