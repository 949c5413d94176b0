"""Fixtures that start real servers.

Every test uses fresh user ids, so one server serves a whole module. The
`server` fixture runs each module twice: on SQLite and on PostgreSQL (a fresh
database per module, dropped after).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.chromium import Browser, chromium_path
from tests.servers import ServerProcess
from tests.services import (
    create_pg_database,
    delete_prefix,
    drop_pg_database,
    redis_prefix,
    require_redis,
)

# Limits low enough for tests to reach, high enough not to trip by accident.
TEST_ENV = {
    "ENVIRONMENT": "test",
    "WS_IDLE_TIMEOUT": "0",
    "TYPING_TTL": "0.5",
    # Tests share users across many sends; the limit itself is tested with its own servers.
    "MESSAGE_RATE_LIMIT_PER_MINUTE": "100000",
}

# "postgres+redis" (PITCHEY_TEST_BACKENDS=sqlite,postgres,postgres+redis) also runs the
# suite on the Redis broker, cache, limiter and presence; test_scaleout covers them anyway.
BACKENDS = tuple(os.environ.get("PITCHEY_TEST_BACKENDS", "sqlite,postgres").split(","))

# How WebSockets are served: "fast" is our protocol (server/transport.py, sessions write
# prebuilt frames to the socket); "asgi" is uvicorn's own (WS_FAST_PATH=false, sessions
# drain through a writer task over plain ASGI, as on an incompatible uvicorn). Every
# server is "fast" unless its module also runs on "asgi", with one of the marks below.
TRANSPORT_ENV: dict[str, dict[str, str]] = {"fast": {}, "asgi": {"WS_FAST_PATH": "false"}}
# `pytestmark = BOTH_TRANSPORTS`: every test of the module (make_server) on both.
BOTH_TRANSPORTS = pytest.mark.parametrize(
    "transport", list(TRANSPORT_ENV), indirect=True, scope="module"
)
# `pytestmark = EVERY_BACKEND_AND_ASGI`: the module's shared `server` on every backend, and
# once more on uvicorn's protocol with the first backend (storage does not change transport).
EVERY_BACKEND_AND_ASGI = pytest.mark.parametrize(
    ("backend", "transport"),
    [*((name, "fast") for name in BACKENDS), (BACKENDS[0], "asgi")],
    indirect=True,
    scope="module",
)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def transport(request: pytest.FixtureRequest) -> str:
    # Only the marks above pass a parameter: other modules keep their test ids.
    name: str = getattr(request, "param", "fast")
    return name


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, transport: str
) -> Iterator[ServerProcess]:
    env = {**TEST_ENV, **TRANSPORT_ENV[transport]}
    database = create_pg_database() if backend.startswith("postgres") else None
    if database is not None:
        env["DATABASE_URL"] = database
    if backend.endswith("+redis"):
        env["REDIS_URL"] = require_redis()
        env["REDIS_PREFIX"] = redis_prefix()
    proc = ServerProcess(tmp_path_factory.mktemp(f"server-{backend}-{transport}"), env)
    try:
        proc.start()
        _check_transport(proc, transport)
        yield proc
    finally:
        proc.stop()
        if database is not None:
            drop_pg_database(database)
        if "REDIS_URL" in env:
            delete_prefix(env["REDIS_URL"], env["REDIS_PREFIX"])


@pytest.fixture
def make_server(tmp_path: Path, transport: str) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with custom settings (on the module's transport); all are stopped after.

    `backend="postgres"` gives the server a fresh PostgreSQL database (dropped after the
    test) unless DATABASE_URL is passed; servers given the same DATABASE_URL share it.
    """
    started: list[ServerProcess] = []
    databases: list[str] = []

    def make(data_dir: Path | None = None, backend: str = "sqlite", **env: str) -> ServerProcess:
        settings = {**TEST_ENV, **TRANSPORT_ENV[transport], **env}
        if backend == "postgres" and "DATABASE_URL" not in settings:
            databases.append(create_pg_database())
            settings["DATABASE_URL"] = databases[-1]
        proc = ServerProcess(data_dir or tmp_path / f"s{len(started)}", settings)
        started.append(proc)
        proc.start()
        _check_transport(proc, transport)
        return proc

    yield make
    for proc in started:
        proc.stop()
    for database in databases:
        drop_pg_database(database)


def _check_transport(proc: ServerProcess, transport: str) -> None:
    """An "asgi" run that silently ran on the fast path would test nothing."""
    off = "WebSocket fast path off" in proc.log_tail(100_000)
    assert off == (transport == "asgi"), proc.log_tail()


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's package). Missing: a failure in CI, a skip elsewhere."""
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    instance = Browser(executable)
    yield instance
    instance.close()
