"""Fixtures that start real servers, and the scenarios the multi-process tests share.

Every test uses fresh user ids, so one server serves a whole module. The
`server` fixture runs each module twice: on SQLite and on PostgreSQL (a fresh
database per module, dropped after).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chromium import Browser, chromium_path
from tests.servers import ServerProcess, WsClient, conversation, send_rest, uid, ws_client
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


# ---- several processes, one service --------------------------------------------------

# Small, so that presence and the live-node view follow a dead process within a test's
# patience.
PRESENCE_TTL = 2.0

# `nodes(n, **env)`: n more processes of one group (see node_group).
Nodes = Callable[..., list[ServerProcess]]


@contextlib.contextmanager
def node_group(workdir: Path, redis_url: str, prefix: str) -> Iterator[Nodes]:
    """Processes that are one service to their clients: one database, Redis prefix and secret.

    On exit all are stopped and the database is dropped; the prefix's keys are the caller's.
    """
    database = create_pg_database()
    secret = uuid.uuid4().hex
    started: list[ServerProcess] = []

    def start(count: int, **env: str) -> list[ServerProcess]:
        procs = [
            ServerProcess(
                workdir / f"node{len(started) + i}",
                {
                    **TEST_ENV,
                    "DATABASE_URL": database,
                    "REDIS_URL": redis_url,
                    "REDIS_PREFIX": prefix,
                    "PRESENCE_TTL": str(PRESENCE_TTL),
                    **env,
                },
                secret=secret,
            )
            for i in range(count)
        ]
        started.extend(procs)
        # Started side by side: each start is mostly interpreter and import time.
        with ThreadPoolExecutor(len(procs)) as pool:
            list(pool.map(lambda p: p.start(), procs))
        return procs

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()
        drop_pg_database(database)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Nodes]:
    """`cluster(n, **env)` starts n more processes of one group on the shared Redis."""
    shared_redis = require_redis()
    prefix = redis_prefix()
    with node_group(tmp_path, shared_redis, prefix) as start:
        yield start
    delete_prefix(shared_redis, prefix)


# The same behaviours hold for a group on one Redis (test_scaleout) and on a Redis Cluster
# (test_redis_cluster): each scenario below serves both.


async def chat_across(a: ServerProcess, b: ServerProcess) -> None:
    """alice on a and bob on b: presence, a message, typing and a receipt cross, each once."""
    alice, bob = uid(), uid()
    conv = await conversation(a, alice, bob)
    async with ws_client(a, alice) as on_a:
        first = await on_a.subscribe(conv)
        assert first["online"] == [alice]
        async with ws_client(b, bob) as on_b:
            joined = await on_b.subscribe(conv)
            assert sorted(joined["online"]) == sorted([alice, bob])
            presence = await on_a.expect("presence", where=lambda f: bob in f.get("joined", []))
            assert presence["onlineCount"] == 2

            await on_a.send({"type": "send", "conversationId": conv, "content": "hi from A"})
            ack = await on_a.expect("ack")
            got = (await on_b.messages(1))[0]
            assert (got["content"], got["seq"], got["id"]) == ("hi from A", 1, ack["messageId"])
            mine = (await on_a.messages(1))[0]
            assert mine["id"] == ack["messageId"]

            await on_b.send({"type": "typing", "conversationId": conv, "isTyping": True})
            typing = await on_a.expect("typing", where=lambda f: f["userId"] == bob)
            assert typing["isTyping"] is True

            await on_b.send({"type": "read", "conversationId": conv, "messageId": ack["messageId"]})
            receipt = await on_a.expect("read", where=lambda f: f["userId"] == bob)
            assert receipt["seq"] == 1
        offline = await on_a.expect("presence", where=lambda f: bob in f.get("left", []))
        assert offline["onlineCount"] == 1
        # Each presence change arrived once, not once per path.
        bob_presence = [
            ("joined" if bob in f.get("joined", []) else "left")
            for f in on_a.seen
            if f["type"] == "presence" and bob in f.get("joined", []) + f.get("left", [])
        ]
        assert bob_presence == ["joined", "left"]


async def a_killed_node_goes_offline(a: ServerProcess, b: ServerProcess) -> None:
    """b is killed while alice on a watches bob on b: bob leaves within the TTL and a sweep."""
    alice, bob = uid(), uid()
    conv = await conversation(a, alice, bob)
    async with ws_client(a, alice) as on_a:
        await on_a.subscribe(conv)
        async with ws_client(b, bob, close_timeout=0.1) as on_b:
            await on_b.subscribe(conv)
            await on_a.expect("presence", where=lambda f: bob in f.get("joined", []))
            killed_at = time.monotonic()
            b.kill()
            gone = await on_a.expect(
                "presence", timeout=3 * PRESENCE_TTL, where=lambda f: bob in f.get("left", [])
            )
            elapsed = time.monotonic() - killed_at
    assert gone["onlineCount"] == 1
    # The node key lapses after the TTL; a sweep runs every TTL/3. On a Redis Cluster the
    # sweep alone decides: a script cannot see other slots' heartbeat keys.
    assert elapsed < PRESENCE_TTL + PRESENCE_TTL / 3 + 1.0, elapsed
    async with ws_client(a, alice) as again:
        assert (await again.subscribe(conv))["online"] == [alice]


async def a_write_refreshes_the_cached_list_on_another_node(
    a: ServerProcess, b: ServerProcess
) -> tuple[str, str]:
    """bob's conversation list, cached on b, shows alice's message sent on a: (alice, conv)."""
    alice, bob = uid(), uid()
    conv = await conversation(a, alice, bob)
    async with b.client(bob) as http:
        before = (await http.get("/api/messages/conversations")).json()["items"]
        assert [(c["id"], c["lastMessage"]) for c in before] == [(conv, None)]
        await send_rest(a, alice, conv, "fresh")
        # b's cached list is dropped by a version bump: one key per member, spread over
        # several masters on a Redis Cluster.
        after = (await http.get("/api/messages/conversations")).json()["items"]
        assert after[0]["lastMessage"]["content"] == "fresh"
        assert after[0]["unreadCount"] == 1
    return alice, conv


async def a_removed_member_is_unsubscribed_on_another_node(
    a: ServerProcess, b: ServerProcess, within: float
) -> None:
    """carol, on b, is removed through a: unsubscribed within `within` seconds, and b no longer
    takes her for a member."""
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(a, alice, bob, carol, title="deal")
    async with ws_client(b, carol) as c:
        await c.subscribe(conv)
        await send_rest(a, alice, conv, "hello all")
        assert (await c.messages(1))[0]["content"] == "hello all"
        started = time.monotonic()
        async with a.client(alice) as http:
            response = await http.delete(f"/api/messages/conversations/{conv}/participants/{carol}")
            assert response.status_code == 204
        unsubscribed = await c.expect("unsubscribed", timeout=within)
        assert unsubscribed["reason"] == "removed" and time.monotonic() - started < within
        await send_rest(a, alice, conv, "carol is gone")
        # Node b forgot carol's membership too (the node-wide channel reached it).
        await c.send({"type": "send", "conversationId": conv, "content": "let me in"})
        error = await c.expect("error")
        assert error["code"] == "not_found"
        assert not [f for f in c.seen if f["type"] == "message" and f["message"]["seq"] > 1]


@dataclass
class Room:
    """alice on node a, bob and carol on node b, all subscribed to one conversation."""

    a: ServerProcess
    b: ServerProcess
    alice: str
    bob: str
    carol: str
    conv: str
    clients: list[WsClient]
    sent: int = 0

    @property
    def on_b(self) -> WsClient:
        return self.clients[1]

    async def send_round(self, label: str) -> None:
        """Four messages over REST, the senders and nodes taking turns."""
        a, b = self.a, self.b
        for server, user in ((a, self.alice), (b, self.bob), (a, self.alice), (b, self.carol)):
            await send_rest(server, user, self.conv, f"{label} {self.sent}")
            self.sent += 1

    async def everyone_got_every_message_once(self) -> None:
        """Every message sent so far, in order, and nothing more, on every client."""
        for client in self.clients:
            received = await client.messages(self.sent, timeout=20)
            assert [m["seq"] for m in received] == list(range(1, self.sent + 1))
            with pytest.raises(TimeoutError):
                await client.expect("message", timeout=0.3)


@contextlib.asynccontextmanager
async def room_across(a: ServerProcess, b: ServerProcess) -> AsyncIterator[Room]:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(a, alice, bob, carol)
    async with (
        ws_client(a, alice) as on_a,
        ws_client(b, bob) as on_b,
        ws_client(b, carol) as also_b,
    ):
        clients = [on_a, on_b, also_b]
        for client in clients:
            await client.subscribe(conv)
        yield Room(a, b, alice, bob, carol, conv, clients)
