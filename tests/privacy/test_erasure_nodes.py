"""Erasure across restarts and nodes: accepted means stored, and every session is closed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from storage.db import open_database
from tests.conftest import TEST_ENV
from tests.email.support import eventually
from tests.privacy.support import SECTIONS, erase, export
from tests.servers import ServerProcess, WsClient, conversation, uid, ws_client
from tests.services import (
    create_pg_database,
    delete_prefix,
    drop_pg_database,
    redis_prefix,
    require_redis,
)

MakeServer = Callable[..., ServerProcess]


async def ann_with_a_message(server: ServerProcess) -> tuple[str, str]:
    ann, bob = uid("ann"), uid("bob")
    async with server.client("platform", "service") as platform:
        assert (
            await platform.put(f"/api/users/{ann}", json={"email": f"{ann}@example.com"})
        ).status_code == 200
    conv = await conversation(server, ann, bob)
    async with server.client(ann) as http:
        sent = await http.post("/api/messages/send", json={"conversationId": conv, "content": "x"})
        assert sent.status_code == 201, sent.text
    return ann, conv


async def erasure_row(database_url: str, user_id: str) -> tuple[str, str | None] | None:
    db = open_database(database_url)
    await db.connect()
    try:
        row = await db.fetchrow(
            "SELECT status, address FROM user_erasures WHERE user_id = ?", user_id
        )
    finally:
        await db.close()
    return (row[0], row[1]) if row else None


def database_url(server: ServerProcess) -> str:
    return server.env.get("DATABASE_URL") or f"sqlite:///{server.data_dir}/pitchey.db"


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_an_erasure_is_stored_before_the_202(make_server: MakeServer, db: str) -> None:
    server = make_server(backend=db)
    ann, _ = await ann_with_a_message(server)

    await erase(server, ann)
    server.kill()

    row = await erasure_row(database_url(server), ann)
    assert row is not None and row[0] in ("pending", "done")


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_an_erasure_a_dead_process_left_pending_is_finished_after_a_restart(
    make_server: MakeServer, tmp_path: Path, db: str
) -> None:
    first = make_server(data_dir=tmp_path / "node", backend=db)
    ann, _ = await ann_with_a_message(first)
    first.kill()
    # What a process killed mid-erasure leaves: the request, claimed under a lease that lapsed.
    url = database_url(first)
    store = open_database(url)
    await store.connect()
    try:
        await store.execute(
            "INSERT INTO user_erasures (user_id, status, address, requested_by, requested_at, "
            "claimed_by, claimed_until, attempts) VALUES (?, 'pending', ?, 'platform', ?, "
            "'dead-process', ?, 1)",
            ann,
            f"{ann}@example.com",
            int(time.time() * 1000),
            int(time.time() * 1000) - 1,
        )
    finally:
        await store.close()

    second = make_server(data_dir=tmp_path / "node", backend=db, DATABASE_URL=url)

    async def done() -> bool:
        found = await export(second, ann)
        return not any(found[s] for s in SECTIONS)

    await eventually(done, 10.0, "the erasure to finish after the restart")
    assert await erasure_row(url, ann) == ("done", None)


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Two processes on one PostgreSQL database, one Redis prefix and one secret."""
    redis_url = require_redis()
    database = create_pg_database()
    prefix = redis_prefix()
    secret = uuid.uuid4().hex
    env = {**TEST_ENV, "DATABASE_URL": database, "REDIS_URL": redis_url, "REDIS_PREFIX": prefix}
    nodes = [ServerProcess(tmp_path / f"node{i}", env, secret=secret) for i in range(2)]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        drop_pg_database(database)
        delete_prefix(redis_url, prefix)


async def closed_with(ws: WsClient, timeout: float = 5.0) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await ws.recv(deadline - time.monotonic())
        except ConnectionClosed as exc:
            assert exc.rcvd is not None
            return exc.rcvd.code, exc.rcvd.reason
    raise AssertionError("the session stayed open")


async def test_an_erasure_on_one_node_closes_the_users_sessions_on_the_other(
    two_nodes: list[ServerProcess],
) -> None:
    here, there = two_nodes
    ann, conv = await ann_with_a_message(here)
    async with ws_client(there, ann) as remote, ws_client(here, ann) as local:
        await remote.subscribe(conv)
        await local.subscribe(conv)
        await erase(here, ann)
        assert await closed_with(remote) == (1008, "account erased")
        assert await closed_with(local) == (1008, "account erased")


async def test_an_export_past_its_time_limit_ends_early_and_says_so(
    make_server: MakeServer,
) -> None:
    server = make_server(USER_EXPORT_TIMEOUT="0.000001")
    ann, _ = await ann_with_a_message(server)

    found = await export(server, ann)

    assert found["userId"] == ann and found["complete"] is False
    assert "emails" not in found
