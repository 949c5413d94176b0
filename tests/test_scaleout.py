"""Several server processes, one Redis and one PostgreSQL: to every client they behave like one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import (
    Nodes,
    a_killed_node_goes_offline,
    a_write_refreshes_the_cached_list_on_another_node,
    chat_across,
    room_across,
)
from tests.servers import (
    ServerProcess,
    WsClient,
    conversation,
    send_rest,
    uid,
    wait_until,
    ws_client,
)
from tests.services import ThrowawayRedis


async def test_clients_on_two_processes_chat_and_see_presence_typing_and_receipts(
    cluster: Nodes,
) -> None:
    a, b = cluster(2)
    await chat_across(a, b)


async def test_three_processes_every_client_gets_every_message_once_in_order(
    cluster: Nodes,
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
    cluster: Nodes,
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
    cluster: Nodes,
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


async def test_presence_of_a_killed_process_expires_within_the_ttl(cluster: Nodes) -> None:
    a, b = cluster(2)
    await a_killed_node_goes_offline(a, b)


async def test_rate_limit_is_shared_by_all_processes(cluster: Nodes) -> None:
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
    cluster: Nodes,
) -> None:
    a, b = cluster(2)
    await a_write_refreshes_the_cached_list_on_another_node(a, b)


async def test_redis_restart_mid_conversation_loses_and_repeats_nothing(
    cluster: Nodes, tmp_path: Path
) -> None:
    redis = ThrowawayRedis(tmp_path / "redis")
    redis.start()
    try:
        a, b = cluster(2, REDIS_URL=redis.url)
        async with room_across(a, b) as room:
            await room.send_round("before")
            redis.kill()
            # Redis is down: both processes keep storing and serving their own sessions.
            await room.send_round("during")
            await room.send_round("during")
            redis.start()
            await room.send_round("after")
            await room.everyone_got_every_message_once()

            # Live traffic flows across processes again once Redis is back.
            async def delivered_live() -> bool:
                await send_rest(a, room.alice, room.conv, "live again")
                frame = await room.on_b.expect("message", timeout=2)
                return bool(frame["message"]["content"] == "live again")

            assert await wait_until(delivered_live, 15, "cross-process delivery")
    finally:
        redis.kill()
