"""`pitchey-comms serve | token | migrate | vapid` (also `python -m server`)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys

from server import logs
from server.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pitchey-comms", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP and WebSocket server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)

    token = commands.add_parser("token", help="print a bearer token signed with JWT_SECRET")
    token.add_argument("user_id")
    token.add_argument("--role", choices=["user", "service", "admin"], default="user")
    token.add_argument("--email")
    token.add_argument("--name")
    token.add_argument("--ttl", type=float, default=24 * 3600, help="seconds (default one day)")

    commands.add_parser("migrate", help="apply database migrations and exit")
    commands.add_parser("vapid", help="print a new VAPID key pair for web push")

    args = parser.parse_args(argv)
    if args.command == "vapid":
        # Needs no settings: it is how an operator makes the first ones.
        from delivery.push.vapid import generate

        public, private = generate()
        print(f"VAPID_PUBLIC_KEY={public}\nVAPID_PRIVATE_KEY={private}")
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"pitchey-comms: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)

    if args.command == "token":
        from server.auth import create_token

        print(
            create_token(
                settings.jwt_secret,
                args.user_id,
                role=args.role,
                email=args.email,
                name=args.name,
                ttl=args.ttl,
            )
        )
        return 0
    if args.command == "migrate":
        return asyncio.run(_migrate(settings.database_url))
    return _serve(args.host, args.port, args.workers)


async def _migrate(url: str) -> int:
    from storage.db import open_database
    from storage.migrations import migrate

    db = open_database(url)
    await db.connect()
    try:
        applied = await migrate(db)
    finally:
        await db.close()
    print(f"applied migrations: {applied or 'none (up to date)'}")
    return 0


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve(host: str, port: int, workers: int) -> int:
    import uvicorn

    # uvicorn drains on SIGTERM/SIGINT, then raises the signal again with the handler that was
    # there before it started: with this one, a clean drain exits 0 instead of dying by -15,
    # so supervisors do not report a graceful stop as a crash.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    settings = load_settings()
    if workers > 1 and not settings.redis_url:
        print(
            "pitchey-comms: --workers > 1 needs REDIS_URL: without Redis, processes cannot "
            "see each other's sessions, presence or limits",
            file=sys.stderr,
        )
        return 2
    if workers > 1 and settings.metrics_port:
        # Each process has its own figures and one port can hold one server.
        print("pitchey-comms: METRICS_PORT needs --workers 1", file=sys.stderr)
        return 2
    if settings.metrics_port == port:
        print("pitchey-comms: METRICS_PORT must differ from --port", file=sys.stderr)
        return 2
    if workers > 1 and settings.is_sqlite:
        logging.getLogger("pitchey").warning(
            "several workers share one SQLite file; PostgreSQL is recommended for several nodes"
        )
    ws_protocol = _ws_protocol(settings.ws_fast_path)
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        # The Gateway's __call__ returns the handler's coroutine instead of awaiting it;
        # uvicorn would otherwise take a non-coroutine __call__ for ASGI 2.
        interface="asgi3",
        # No client address is used (no access log, no IP rules), and the proxy-headers
        # wrapper would keep one more coroutine frame alive per connection.
        proxy_headers=False,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        # uvicorn's httptools protocol with the request head bounded in size and time.
        http="server.http_protocol:BoundedHttpToolsProtocol",
        ws=ws_protocol,
        # Off: a compressed connection could not share the fan-out's prebuilt frame.
        ws_per_message_deflate=False,
        ws_max_size=settings.ws_max_frame_bytes,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        # Room for connection bursts (reconnect storms) before the kernel refuses them.
        backlog=4096,
        log_level=settings.log_level,
        # Our handler and formatter (server/logs.py), installed again in each worker.
        log_config=None,
        # Access lines would print WebSocket URLs, and with them `?token=` bearer tokens.
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def _ws_protocol(fast_path: bool) -> str:
    """Our subclass of uvicorn's websockets-sansio protocol (server/transport.py) when it fits.

    It relies on uvicorn internals: on a uvicorn without them the service still runs, on
    uvicorn's own protocol (sessions drain through plain ASGI), and says so once.
    """
    import uvicorn

    from server.transport import fast_path_incompatibility

    log = logging.getLogger("pitchey.transport")
    if not fast_path:
        log.info("WebSocket fast path off (WS_FAST_PATH=false): uvicorn's own protocol serves")
        return _plain_ws_protocol()
    reason = fast_path_incompatibility()
    if reason is None:
        return "server.transport:DirectWebSocketProtocol"
    log.warning(
        "WebSocket fast path off: uvicorn %s is not a version server/transport.py supports (%s);"
        " serving with uvicorn's own protocol, fan-out is slower",
        uvicorn.__version__,
        reason,
    )
    return _plain_ws_protocol()


def _plain_ws_protocol() -> str:
    # websockets-sansio is the protocol ours extends, so behaviour stays closest to it;
    # a uvicorn without it (before 0.35) picks its own default.
    from server.transport import BASE_MODULE

    try:
        importlib.import_module(BASE_MODULE)
    except ImportError:
        return "auto"
    return "websockets-sansio"
