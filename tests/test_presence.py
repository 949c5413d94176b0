"""Presence is coalesced: a crowd joining makes a few frames, not one per join per member."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from tests.servers import ServerProcess, WsClient, conversation, uid, ws_client

CROWD = 30


async def frames_until(
    client: WsClient, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Every presence frame the client gets until `done` holds for them (or the deadline)."""
    deadline = time.monotonic() + timeout
    got: list[dict[str, Any]] = []
    while not done(got) and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            frame = await client.recv(timeout=max(0.01, deadline - time.monotonic()))
            if frame["type"] == "presence":
                got.append(frame)
    return got


def joined(frames: list[dict[str, Any]]) -> set[str]:
    return {user for f in frames for user in f.get("joined", [])}


async def test_a_crowd_joining_is_announced_in_a_few_frames(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(PRESENCE_FLUSH_INTERVAL="0.5")
    observer, crowd = uid(), [uid() for _ in range(CROWD)]
    conv = await conversation(server, observer, *crowd, title="premiere")
    async with contextlib.AsyncExitStack() as stack:
        watching = await stack.enter_async_context(ws_client(server, observer))
        await watching.subscribe(conv)
        started = time.monotonic()
        clients = [await stack.enter_async_context(ws_client(server, u)) for u in crowd]
        await asyncio.gather(*(c.subscribe(conv) for c in clients))
        frames = await frames_until(watching, lambda got: joined(got) >= set(crowd))
        elapsed = time.monotonic() - started

    assert joined(frames) - {observer} == set(crowd)
    # One frame per flush interval at most: 30 joins one by one would have been 30 frames.
    assert len(frames) <= elapsed / 0.5 + 2, (len(frames), elapsed)
    assert frames[-1]["onlineCount"] == CROWD + 1


async def test_leaves_are_announced_with_the_count(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a:
        await a.subscribe(conv)
        async with ws_client(server, bob) as b:
            await b.subscribe(conv)
            await a.expect("presence", where=lambda f: bob in f.get("joined", []))
        left = await a.expect("presence", where=lambda f: bob in f.get("left", []))

    assert left["onlineCount"] == 1
    assert "joined" not in left


async def test_a_large_room_gets_the_online_count_only(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(PRESENCE_BROADCAST_MAX_MEMBERS="3", PRESENCE_FLUSH_INTERVAL="0.1")
    users = [uid() for _ in range(5)]
    conv = await conversation(server, *users, title="crew")
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(ws_client(server, users[0]))
        await first.subscribe(conv)
        for user in users[1:]:
            other = await stack.enter_async_context(ws_client(server, user))
            await other.subscribe(conv)
        counted = await first.expect("presence", where=lambda f: f["onlineCount"] == 5)

    assert "joined" not in counted and "left" not in counted


async def test_the_online_list_is_available_over_rest(server: ServerProcess) -> None:
    alice, bob, outsider = uid(), uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, bob) as b:
        await b.subscribe(conv)
        async with server.client(alice) as http:
            mine = await http.get(f"/api/messages/conversations/{conv}/presence")
        async with server.client(outsider) as http:
            theirs = await http.get(f"/api/messages/conversations/{conv}/presence")

    assert mine.status_code == 200
    assert mine.json() == {"conversationId": conv, "online": [bob], "onlineCount": 1}
    assert theirs.status_code == 404
