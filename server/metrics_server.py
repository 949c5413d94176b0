"""/metrics on a port of its own (METRICS_PORT): a second, small uvicorn server in the
same process and event loop, serving the same figures, reachable only where that port is.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from server.routes.health import metrics_text


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The main server owns SIGTERM/SIGINT; its lifespan stops this one.
        yield


@contextlib.asynccontextmanager
async def metrics_server(services: Any, host: str, port: int) -> AsyncIterator[None]:
    """Serve /metrics on host:port while the context is open."""
    app = Starlette(routes=[Route("/metrics", metrics_text, methods=["GET"])])
    app.state.services = services
    # Bound here, so a taken port fails the start with a clear error instead of a task's.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    config = uvicorn.Config(
        app, lifespan="off", access_log=False, log_config=None, proxy_headers=False
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="metrics-server")
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        sock.close()
