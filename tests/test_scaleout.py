"""Several server processes, one Redis and one PostgreSQL: to every client they behave like one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_ENV
from tests.servers import ServerProcess, WsClient, conversation, uid, ws_client
from tests.services import (
    ThrowawayRedis,
    create_pg_database,
    delete_prefix,
    drop_pg_database,
    redis_prefix,
    require_redis,
)

# Small, so that a dead process's presence expires within a test's patience.
PRESENCE_TTL = 2.0

Cluster = Callable[..., list[ServerProcess]]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """`cluster(n, **env)` starts n more processes on one database, Redis prefix and secret."""
    shared_redis = require_redis()
    database = create_pg_database()
    prefix = redis_prefix()
    secret = uuid.uuid4().hex
    started: list[ServerProcess] = []

    def start(count: int, redis_url: str = shared_redis, **env: str) -> list[ServerProcess]:
        procs = []
        for _ in range(count):
            proc = ServerProcess(
                tmp_path / f"node{len(started)}",
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
            started.append(proc)
            procs.append(proc)
        # Started side by side: each start is mostly interpreter and import time.
        with ThreadPoolExecutor(len(procs)) as pool:
            list(pool.map(lambda p: p.start(), procs))
        return procs

    yield start
    for proc in started:
        proc.stop()
    drop_pg_database(database)
    delete_prefix(shared_redis, prefix)


async def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


async def send_rest(server: ServerProcess, user: str, conv: str, content: str) -> dict[str, Any]:
    async with server.client(user) as http:
        response = await http.post(
            "/api/messages/send", json={"conversationId": conv, "content": content}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


async def test_clients_on_two_processes_chat_and_see_presence_typing_and_receipts(
    cluster: Cluster,
) -> None:
    a, b = cluster(2)
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


async def test_three_processes_every_client_gets_every_message_once_in_order(
    cluster: Cluster,
) -> None:
    servers = cluster(3)
    users = [uid() for _ in servers]
    conv = await conversation(servers[0], *users)
    per_user = 15
    async with (
        ws_client(servers[0], users[0]) as c0,
        ws_client(servers[1], users[1]) as c1,
        ws_client(servers[2], users[2]) as c2,
    ):
        clients = [c0, c1, c2]
        for client in clients:
            await client.subscribe(conv)

        async def chat(client: WsClient, user: str) -> None:
            for i in range(per_user):
                await client.send(
                    {"type": "send", "conversationId": conv, "content": f"{user} {i}"}
                )

        await asyncio.gather(*(chat(c, u) for c, u in zip(clients, users, strict=True)))
        total = per_user * len(users)
        for client in clients:
            received = await client.messages(total, timeout=20)
            assert [m["seq"] for m in received] == list(range(1, total + 1))
            assert len({m["id"] for m in received}) == total
            # Nothing more arrives: no message is delivered twice.
            with pytest.raises(TimeoutError):
                await client.expect("message", timeout=0.3)


async def test_seq_stays_gap_free_with_concurrent_writers_on_two_processes(
    cluster: Cluster,
) -> None:
    a, b = cluster(2)
    alice, bob = uid(), uid()
    conv = await conversation(a, alice, bob)
    per_process = 60

    async def writer(server: ServerProcess, user: str) -> None:
        async with server.client(user) as http:

            async def one(i: int) -> None:
                response = await http.post(
                    "/api/messages/send", json={"conversationId": conv, "content": f"{i}"}
                )
                assert response.status_code == 201, response.text

            await asyncio.gather(*(one(i) for i in range(per_process)))

    await asyncio.gather(writer(a, alice), writer(b, bob))
    seqs: list[int] = []
    async with b.client(bob) as http:
        after = 0
        while True:
            page = (
                await http.get(f"/api/messages/{conv}", params={"after": after, "limit": 100})
            ).json()
            seqs += [m["seq"] for m in page["items"]]
            if not page["nextCursor"]:
                break
            after = int(page["nextCursor"])
    assert seqs == list(range(1, 2 * per_process + 1))


async def test_client_recovers_with_since_after_reconnecting_to_another_process(
    cluster: Cluster,
) -> None:
    a, b = cluster(2)
    alice, bob = uid(), uid()
    conv = await conversation(a, alice, bob)
    async with ws_client(a, bob) as first:
        await first.subscribe(conv)
        await send_rest(a, alice, conv, "one")
        last_seq = (await first.messages(1))[0]["seq"]
    for text in ("two", "three"):
        await send_rest(a, alice, conv, text)
    async with ws_client(b, bob) as second:
        subscribed = await second.subscribe(conv, since=last_seq)
        assert (subscribed["recovered"], subscribed["replayed"]) == (True, 2)
        replayed = await second.messages(2)
        assert [m["content"] for m in replayed] == ["two", "three"]
        await send_rest(a, alice, conv, "four")
        live = await second.messages(1)
        assert [(m["content"], m["seq"]) for m in live] == [("four", 4)]


async def test_presence_of_a_killed_process_expires_within_the_ttl(cluster: Cluster) -> None:
    a, b = cluster(2)
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
    # The node key lapses after the TTL; a sweep runs every TTL/3.
    assert elapsed < PRESENCE_TTL + PRESENCE_TTL / 3 + 1.0, elapsed
    async with ws_client(a, alice) as again:
        assert (await again.subscribe(conv))["online"] == [alice]


async def test_rate_limit_is_shared_by_all_processes(cluster: Cluster) -> None:
    a, b = cluster(2, MESSAGE_RATE_LIMIT_PER_MINUTE="6")
    alice = uid()
    conv = await conversation(a, alice, uid())
    statuses: list[int] = []
    for server in (a, b, a, b, a, b, a, b, a, b):
        async with server.client(alice) as http:
            response = await http.post(
                "/api/messages/send", json={"conversationId": conv, "content": "x"}
            )
            statuses.append(response.status_code)
    assert statuses.count(201) == 6, statuses
    assert statuses.count(429) == 4, statuses


async def test_a_write_on_one_process_invalidates_the_cached_list_on_another(
    cluster: Cluster,
) -> None:
    a, b = cluster(2)
    alice, bob = uid(), uid()
    conv = await conversation(a, alice, bob)
    async with b.client(bob) as http:
        before = (await http.get("/api/messages/conversations")).json()["items"]
        assert [(c["id"], c["lastMessage"]) for c in before] == [(conv, None)]
        await send_rest(a, alice, conv, "fresh")
        after = (await http.get("/api/messages/conversations")).json()["items"]
        assert after[0]["lastMessage"]["content"] == "fresh"
        assert after[0]["unreadCount"] == 1


async def test_redis_restart_mid_conversation_loses_and_repeats_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    redis = ThrowawayRedis(tmp_path / "redis")
    redis.start()
    try:
        a, b = cluster(2, redis_url=redis.url)
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
            sent = 0

            async def send_round(label: str) -> None:
                nonlocal sent
                for server, user in ((a, alice), (b, bob), (a, alice), (b, carol)):
                    await send_rest(server, user, conv, f"{label} {sent}")
                    sent += 1

            await send_round("before")
            redis.kill()
            # Redis is down: both processes keep storing and serving their own sessions.
            await send_round("during")
            await send_round("during")
            redis.start()
            await send_round("after")

            for client in clients:
                received = await client.messages(sent, timeout=20)
                assert [m["seq"] for m in received] == list(range(1, sent + 1))
                with pytest.raises(TimeoutError):
                    await client.expect("message", timeout=0.3)

            # Live traffic flows across processes again once Redis is back.
            async def delivered_live() -> bool:
                await send_rest(a, alice, conv, "live again")
                frame = await on_b.expect("message", timeout=2)
                return bool(frame["message"]["content"] == "live again")

            assert await wait_until(delivered_live, 15, "cross-process delivery")
    finally:
        redis.kill()
