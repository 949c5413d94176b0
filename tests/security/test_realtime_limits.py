"""Real-time abuse: one user cannot hold unbounded sockets, rooms or typing traffic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import PRESENCE_TTL, Nodes
from tests.servers import ServerProcess, WsClient, conversation, uid, wait_until, ws_client


async def _refusal(server: ServerProcess, user: str) -> tuple[int, dict[str, object]]:
    """The HTTP status and body of a refused handshake (fails if it was accepted)."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{server.ws_url}?token={server.token(user)}"):
            pass
    response = refused.value.response
    return response.status_code, json.loads(response.body or b"{}")


async def _accepted(server: ServerProcess, user: str) -> bool:
    try:
        async with connect(f"{server.ws_url}?token={server.token(user)}"):
            return True
    except InvalidStatus:
        return False


async def test_twenty_first_socket_of_one_user_is_refused_with_429(server: ServerProcess) -> None:
    alice = uid()
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(20):
            await stack.enter_async_context(ws_client(server, alice))
        status, body = await _refusal(server, alice)
    assert status == 429
    assert body["error"]["code"] == "too_many_connections"  # type: ignore[index]


async def test_another_user_connects_while_one_user_is_at_the_limit(
    server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(20):
            await stack.enter_async_context(ws_client(server, alice))
        async with ws_client(server, bob) as other:
            await other.send({"type": "ping"})
            await other.expect("pong")


async def test_a_closed_socket_frees_its_slot(server: ServerProcess) -> None:
    alice = uid()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(ws_client(server, alice)) for _ in range(20)]
        await clients[0].close()

        async def slot_free() -> bool:
            return await _accepted(server, alice)

        await wait_until(slot_free, 5.0, "a slot freed by a closed socket")


async def test_connection_limit_counts_sockets_on_every_node(cluster: Nodes) -> None:
    a, b = cluster(2, WS_MAX_CONNECTIONS_PER_USER="3")
    alice = uid()
    async with ws_client(a, alice), ws_client(b, alice), ws_client(a, alice):
        assert (await _refusal(b, alice))[0] == 429
        assert (await _refusal(a, alice))[0] == 429


async def test_sockets_of_a_killed_node_stop_counting_within_the_presence_ttl(
    cluster: Nodes,
) -> None:
    a, b = cluster(2, WS_MAX_CONNECTIONS_PER_USER="2")
    alice = uid()
    async with ws_client(b, alice, close_timeout=0.1), ws_client(b, alice, close_timeout=0.1):
        assert (await _refusal(a, alice))[0] == 429
        b.kill()

        async def slot_free() -> bool:
            return await _accepted(a, alice)

        await wait_until(slot_free, 3 * PRESENCE_TTL, "the killed node's sockets lapsing")


async def test_subscription_past_the_limit_gets_an_error_frame_and_the_socket_stays_open(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(WS_MAX_SUBSCRIPTIONS="3")
    alice = uid()
    convs = [await conversation(server, alice, uid()) for _ in range(4)]
    async with ws_client(server, alice) as client:
        for conv in convs[:3]:
            await client.subscribe(conv)
        await client.send({"type": "subscribe", "conversationId": convs[3]})
        error = await client.expect("error")
        assert error["code"] == "too_many_subscriptions" and error["ref"] == convs[3]
        await client.send({"type": "ping"})
        await client.expect("pong")


async def test_unsubscribing_frees_a_subscription_slot(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(WS_MAX_SUBSCRIPTIONS="1")
    alice = uid()
    first, second = [await conversation(server, alice, uid()) for _ in range(2)]
    async with ws_client(server, alice) as client:
        await client.subscribe(first)
        await client.send({"type": "unsubscribe", "conversationId": first})
        await client.expect("unsubscribed")
        assert (await client.subscribe(second))["conversationId"] == second


async def _typing_seen(watcher: WsClient, typist: str) -> list[dict[str, object]]:
    """Typing frames of `typist` until the indicator lapses (TYPING_TTL in tests: 0.5 s)."""
    seen = []
    while True:
        frame = await watcher.expect("typing", timeout=5.0, where=lambda f: f["userId"] == typist)
        if not frame["isTyping"]:
            return seen
        seen.append(frame)


async def test_a_burst_of_fifty_typing_frames_reaches_the_other_participant_once(
    server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as typist, ws_client(server, bob) as watcher:
        await watcher.subscribe(conv)
        started = time.monotonic()
        for _ in range(50):
            await typist.send({"type": "typing", "conversationId": conv, "isTyping": True})
        # Dropped frames get no answer: the next frame alice sees is her pong.
        await typist.send({"type": "ping"})
        await typist.expect("pong")
        burst = time.monotonic() - started
        relayed = await _typing_seen(watcher, alice)
    # One per second: the burst may straddle a second's end, never more.
    assert 1 <= len(relayed) <= 1 + int(burst), (len(relayed), burst)


async def test_typing_is_relayed_again_after_the_interval(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as typist, ws_client(server, bob) as watcher:
        await watcher.subscribe(conv)
        frame = {"type": "typing", "conversationId": conv, "isTyping": True}
        await typist.send(frame)
        await watcher.expect("typing", where=lambda f: f["userId"] == alice and f["isTyping"])
        await asyncio.sleep(1.05)
        await typist.send(frame)
        await watcher.expect("typing", where=lambda f: f["userId"] == alice and f["isTyping"])
