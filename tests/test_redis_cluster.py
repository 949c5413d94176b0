"""Two server processes on a Redis Cluster (three masters) behave like one, and survive a
master's restart as they survive a Redis restart."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from server.settings import SettingsError, load_settings
from tests.conftest import (
    PRESENCE_TTL,
    Nodes,
    a_killed_node_goes_offline,
    a_removed_member_is_unsubscribed_on_another_node,
    a_write_refreshes_the_cached_list_on_another_node,
    chat_across,
    node_group,
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
from tests.services import ThrowawayCluster, redis_prefix


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayCluster]:
    cluster = ThrowawayCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def nodes(redis_cluster: ThrowawayCluster, tmp_path: Path) -> Iterator[Nodes]:
    """`nodes(n, **env)`: n service processes on the module's cluster, one database."""
    with node_group(tmp_path, redis_cluster.url, redis_prefix()) as start:
        yield start


@contextlib.contextmanager
def own_cluster(
    workdir: Path, replicas: int = 0, created: bool = True
) -> Iterator[tuple[ThrowawayCluster, Nodes]]:
    """A cluster the test may break, and the starter of processes on it; `created=False`
    leaves creating the cluster to the test, after its processes are up."""
    cluster = ThrowawayCluster(workdir / "cluster", replicas=replicas)
    try:
        if created:
            cluster.create()
        with node_group(workdir, cluster.url, redis_prefix()) as start:
            yield cluster, start
    finally:
        cluster.destroy()


def shard_channels(cluster: ThrowawayCluster) -> list[list[str]]:
    """The sharded channels each node has subscribers for (none on a dead one)."""
    found = []
    for port in cluster.ports:
        client = redis.Redis(port=port)
        try:
            found.append([c.decode() for c in client.execute_command("PUBSUB SHARDCHANNELS")])
        except redis.ConnectionError:
            found.append([])
        finally:
            client.close()
    return found


async def arrives(client: WsClient, content: str, timeout: float = 1.0) -> bool:
    """Whether a message with this content reaches the client within the timeout."""
    with contextlib.suppress(TimeoutError):
        await client.expect("message", timeout, where=lambda f: f["message"]["content"] == content)
        return True
    return False


async def redis_check(server: ServerProcess, state: str) -> bool:
    """Whether /readyz reports Redis in this state ("ok" or "error")."""
    async with server.client(uid()) as http:
        body = (await http.get("/readyz")).json()
    return bool(body["checks"]["redis"].startswith(state))


def test_a_redis_cluster_url_or_flag_selects_cluster_mode() -> None:
    by_url = load_settings({"REDIS_URL": "redis+cluster://10.0.0.1:7000"})
    assert by_url.redis_cluster_mode and by_url.redis_node_url == "redis://10.0.0.1:7000"
    tls = load_settings({"REDIS_URL": "rediss+cluster://u:p@h:7000"})
    assert tls.redis_node_url == "rediss://u:p@h:7000"
    by_flag = load_settings({"REDIS_URL": "redis://h:7000", "REDIS_CLUSTER": "true"})
    assert by_flag.redis_cluster_mode and by_flag.redis_node_url == "redis://h:7000"
    assert not load_settings({"REDIS_URL": "redis://h:6379/0"}).redis_cluster_mode


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_CLUSTER": "true"}, "REDIS_URL"),
        ({"REDIS_URL": "redis+cluster://h:7000/3"}, "REDIS_URL"),
        ({"REDIS_URL": "redis+cluster://h:7000", "REDIS_PREFIX": "{app}:"}, "REDIS_PREFIX"),
        ({"REDIS_CLUSTER": "maybe", "REDIS_URL": "redis://h:7000"}, "REDIS_CLUSTER"),
    ],
)
def test_a_bad_cluster_setting_is_refused_naming_the_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


async def test_two_processes_chat_with_presence_and_typing_through_the_cluster(
    nodes: Nodes,
) -> None:
    a, b = nodes(2)
    await chat_across(a, b)


async def test_conversation_channels_spread_over_the_masters(
    nodes: Nodes, redis_cluster: ThrowawayCluster
) -> None:
    (a,) = nodes(1)
    alice, bob = uid(), uid()
    conversations = [await conversation(a, alice, bob, title=f"t{i}") for i in range(12)]
    async with ws_client(a, alice) as client:
        for conv in conversations:
            await client.subscribe(conv)
        per_master = shard_channels(redis_cluster)
    ours = [[c for c in channels if "{c:" in c] for channels in per_master]
    assert sum(map(len, ours)) == len(conversations)
    # 12 random slots on three masters: all on one would be a 1-in-59,000 accident.
    assert sum(1 for channels in ours if channels) >= 2, per_master


async def test_a_member_removed_on_one_process_is_unsubscribed_on_the_other(
    nodes: Nodes,
) -> None:
    a, b = nodes(2)
    await a_removed_member_is_unsubscribed_on_another_node(a, b, within=2.0)


async def test_rate_limit_and_list_cache_are_shared_by_both_processes(nodes: Nodes) -> None:
    a, b = nodes(2, MESSAGE_RATE_LIMIT_PER_MINUTE="4")
    alice, conv = await a_write_refreshes_the_cached_list_on_another_node(a, b)
    statuses = []
    for server in (b, a, b, a, b):
        async with server.client(alice) as http:
            response = await http.post(
                "/api/messages/send", json={"conversationId": conv, "content": "x"}
            )
            statuses.append(response.status_code)
    assert statuses == [201, 201, 201, 429, 429], statuses


async def test_presence_of_a_killed_process_expires_within_the_ttl_and_a_sweep(
    nodes: Nodes,
) -> None:
    a, b = nodes(2)
    await a_killed_node_goes_offline(a, b)


async def _accepted(server: ServerProcess, user: str) -> bool:
    try:
        async with connect(f"{server.ws_url}?token={server.token(user)}"):
            return True
    except InvalidStatus as refused:
        assert refused.response.status_code == 429
        return False


async def test_the_connection_limit_counts_sockets_on_both_processes(nodes: Nodes) -> None:
    a, b = nodes(2, WS_MAX_CONNECTIONS_PER_USER="3")
    alice = uid()
    async with ws_client(a, alice), ws_client(b, alice), ws_client(a, alice):
        # At once, though neither may have swept since the other started.
        assert not await _accepted(b, alice)
        assert not await _accepted(a, alice)


async def test_sockets_of_a_killed_process_stop_counting(nodes: Nodes) -> None:
    a, b = nodes(2, WS_MAX_CONNECTIONS_PER_USER="2")
    alice = uid()
    async with ws_client(b, alice, close_timeout=0.1), ws_client(b, alice, close_timeout=0.1):
        assert not await _accepted(a, alice)
        b.kill()

        async def slot_free() -> bool:
            return await _accepted(a, alice)

        assert await wait_until(slot_free, 3 * PRESENCE_TTL, "the killed node's sockets lapsing")


async def test_a_ticket_issued_on_one_process_opens_a_socket_on_the_other(
    nodes: Nodes,
) -> None:
    a, b = nodes(2)
    alice = uid()
    async with a.client(alice) as http:
        response = await http.post("/api/realtime/ticket")
        assert response.status_code == 201, response.text
    async with connect(f"{b.ws_url}?ticket={response.json()['ticket']}") as conn:
        await conn.send('{"type": "ping"}')
        assert "pong" in str(await asyncio.wait_for(conn.recv(), 5))


async def test_a_conversation_follows_its_slot_to_another_master(
    nodes: Nodes, redis_cluster: ThrowawayCluster
) -> None:
    a, b = nodes(2)
    alice, bob = uid(), uid()
    conv = await conversation(a, alice, bob)
    channel = f"{a.env['REDIS_PREFIX']}{{c:{conv}}}"
    async with ws_client(a, alice) as on_a, ws_client(b, bob) as on_b:
        await on_a.subscribe(conv)
        await on_b.subscribe(conv)
        await send_rest(a, alice, conv, "before the move")
        assert (await on_b.messages(1))[0]["seq"] == 1
        source = redis_cluster.owner_of(channel)
        target = (source + 1) % ThrowawayCluster.MASTERS
        redis_cluster.move_slot(key_slot(channel.encode()), target)
        moved_at = time.monotonic()

        async def followed() -> bool:
            return channel in shard_channels(redis_cluster)[target]

        assert await wait_until(followed, 5, "subscription on the new master")
        await send_rest(a, alice, conv, "after the move")
        received = await on_b.messages(1)
        assert [(m["content"], m["seq"]) for m in received] == [("after the move", 2)]
        assert time.monotonic() - moved_at < 5
        # Presence moved with the slot (same hash tag): both still online.
        async with a.client(alice) as http:
            body = (await http.get(f"/api/messages/conversations/{conv}/presence")).json()
        assert sorted(body["online"]) == sorted([alice, bob])


async def test_processes_started_before_the_cluster_join_it_when_it_comes_up(
    tmp_path: Path,
) -> None:
    with own_cluster(tmp_path, created=False) as (cluster, start):
        a, b = start(2)
        alice, bob = uid(), uid()
        conv = await conversation(a, alice, bob)
        async with ws_client(a, alice) as on_a, ws_client(b, bob) as on_b:
            # No cluster yet: each process serves its own sessions.
            await on_a.subscribe(conv)
            await on_b.subscribe(conv)
            await send_rest(a, alice, conv, "alone")
            assert (await on_a.messages(1))[0]["content"] == "alone"
            cluster.create()

            async def delivered_across() -> bool:
                await send_rest(a, alice, conv, "together")
                return await arrives(on_b, "together")

            assert await wait_until(delivered_across, 15, "delivery once the cluster is up")
            # The message stored before the cluster existed reached bob too (resync).
            contents = [f["message"]["content"] for f in on_b.seen if f["type"] == "message"]
            assert contents[0] == "alone"


async def test_a_master_restart_mid_conversation_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    with own_cluster(tmp_path) as (cluster, start):
        await _restart_scenario(cluster, start)


async def test_restarting_the_registry_master_takes_no_live_process_for_dead(
    tmp_path: Path,
) -> None:
    with own_cluster(tmp_path) as (cluster, start):
        a, b = start(2)
        alice, bob = uid(), uid()
        prefix = a.env["REDIS_PREFIX"]
        registry = cluster.owner_of(f"{prefix}{{nodes}}")
        # A conversation served by another master: this test is about the registry alone
        # (a room whose own master restarts is the restart test's).
        conv = await conversation(a, alice, bob, title="0")
        for attempt in range(1, 20):
            if cluster.owner_of(f"{prefix}{{c:{conv}}}") != registry:
                break
            conv = await conversation(a, alice, bob, title=str(attempt))
        async with ws_client(a, alice) as on_a, ws_client(b, bob) as on_b:
            await on_a.subscribe(conv)
            await on_b.subscribe(conv)
            await on_a.expect("presence", where=lambda f: bob in f.get("joined", []))
            cluster.kill(registry)
            cluster.start(registry)
            cluster.wait_ok()
            # Heartbeats and the node set came back empty together: no sweep finds b's
            # heartbeat missing while b is listed, so bob never "leaves".
            with pytest.raises(TimeoutError):
                await on_a.expect(
                    "presence",
                    timeout=PRESENCE_TTL + PRESENCE_TTL / 3 + 1.0,
                    where=lambda f: bob in f.get("left", []),
                )

            async def both_online() -> bool:
                async with a.client(alice) as http:
                    url = f"/api/messages/conversations/{conv}/presence"
                    body = (await http.get(url)).json()
                return sorted(body["online"]) == sorted([alice, bob])

            assert await wait_until(both_online, 5, "presence registered again")


async def test_a_master_failover_to_its_replica_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    with own_cluster(tmp_path, replicas=1) as (cluster, start):
        await _failover_scenario(cluster, start)


async def _failover_scenario(cluster: ThrowawayCluster, start: Nodes) -> None:
    a, b = start(2)
    alice, bob = uid(), uid()
    conv = await conversation(a, alice, bob)
    channel = f"{a.env['REDIS_PREFIX']}{{c:{conv}}}"
    owner = cluster.owner_of(channel)
    async with ws_client(a, alice) as on_a, ws_client(b, bob) as on_b:
        for client in (on_a, on_b):
            await client.subscribe(conv)
        sent = 0
        for text in ("before", "during"):
            if text == "during":
                cluster.kill(owner)
                killed_at = time.monotonic()
            for server, user in ((a, alice), (b, bob)):
                await send_rest(server, user, conv, f"{text} {sent}")
                sent += 1

        async def promoted() -> bool:
            return cluster.owner_of(channel) != owner  # its replica took the slots

        assert await wait_until(promoted, 10, "the replica's promotion")

        async def delivered_live() -> bool:
            await send_rest(a, alice, conv, "on the new master")
            return await arrives(on_b, "on the new master")

        # Every message, in order, once; then live delivery through the promoted replica.
        received = await on_b.messages(sent, timeout=20)
        assert [m["seq"] for m in received] == list(range(1, sent + 1))
        assert await wait_until(delivered_live, 15, "delivery after the failover")
        assert channel in shard_channels(cluster)[cluster.owner_of(channel)]
        assert time.monotonic() - killed_at < 15


async def _restart_scenario(cluster: ThrowawayCluster, start: Nodes) -> None:
    a, b = start(2)
    async with room_across(a, b) as room:
        owner = cluster.owner_of(f"{a.env['REDIS_PREFIX']}{{c:{room.conv}}}")
        await room.send_round("before")
        cluster.kill(owner)
        # The conversation's master is down: both processes keep storing and serving.
        await room.send_round("during")
        await room.send_round("during")
        assert await wait_until(lambda: redis_check(b, "error"), 5, "/readyz reporting redis")
        cluster.start(owner)
        restarted_at = time.monotonic()
        cluster.wait_ok()
        await room.send_round("after")
        await room.everyone_got_every_message_once()

        async def delivered_live() -> bool:
            await send_rest(a, room.alice, room.conv, "live again")
            return await arrives(room.on_b, "live again")

        assert await wait_until(delivered_live, 15, "cross-process delivery")

        # The master came back empty; the presence it held is written again.
        async def everyone_online() -> Any:
            async with a.client(room.alice) as http:
                url = f"/api/messages/conversations/{room.conv}/presence"
                body = (await http.get(url)).json()
            return sorted(body["online"]) == sorted([room.alice, room.bob, room.carol])

        assert await wait_until(everyone_online, 10, "presence restored")
        assert await wait_until(lambda: redis_check(b, "ok"), 5, "/readyz ready again")
        # Bounded recovery: the cluster's own rejoin (about 2 s) and a reconnect backoff.
        assert time.monotonic() - restarted_at < 15
