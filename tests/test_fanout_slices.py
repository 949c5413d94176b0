"""A fan-out to a room larger than WS_FANOUT_SLICE goes out in slices, the event loop running
between them; every session still gets every event once, in the room's order, blocks kept.

A slice of 2 makes a room of 7 sessions a fan-out of four slices: what holds here holds for
the default's 128 in rooms of thousands.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from tests.security.test_lifecycle_blocks import block
from tests.servers import ServerProcess, WsClient, conversation, uid, ws_client

SLICE = "2"
MEMBERS = 7
SENDS = 25


async def _seqs(ws: WsClient, count: int) -> list[tuple[str, int]]:
    """(type, seq) of the next `count` timeline frames: messages and skipped ones."""
    found: list[tuple[str, int]] = []
    while len(found) < count:
        frame = await ws.recv(timeout=10.0)
        if frame["type"] == "message":
            found.append(("message", frame["message"]["seq"]))
        elif frame["type"] == "skipped":
            found.append(("skipped", frame["seq"]))
        elif frame["type"] == "error":
            raise AssertionError(frame)
    return found


async def test_every_session_gets_every_message_once_in_order(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(WS_FANOUT_SLICE=SLICE)
    users = [uid("m") for _ in range(MEMBERS)]
    conv = await conversation(server, *users, title="slices")
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(ws_client(server, u)) for u in users]
        for client in clients:
            await client.subscribe(conv)
        sender = clients[0]
        # Sent back to back without waiting: each publish's slices interleave with the
        # next frames arriving, which is where an order could be lost.
        for n in range(SENDS):
            await sender.send(
                {"type": "send", "conversationId": conv, "content": f"m{n}", "clientMsgId": f"c{n}"}
            )
        got = await asyncio.gather(*(_seqs(c, SENDS) for c in clients))
    expected = [("message", seq) for seq in range(1, SENDS + 1)]
    assert all(seqs == expected for seqs in got), got


async def test_a_blocker_in_a_later_slice_gets_skipped_frames(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(WS_FANOUT_SLICE=SLICE)
    users = [uid("m") for _ in range(MEMBERS)]
    author, blocker = users[0], users[-1]
    conv = await conversation(server, *users, title="slices")
    await block(server, blocker, author)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(ws_client(server, u)) for u in users]
        # Subscribed last, the blocker is in the last slice of each fan-out.
        for client in clients:
            await client.subscribe(conv)
        for n in range(3):
            await clients[0].send(
                {"type": "send", "conversationId": conv, "content": f"m{n}", "clientMsgId": f"c{n}"}
            )
        got = await asyncio.gather(*(_seqs(c, 3) for c in clients))
    assert got[-1] == [("skipped", 1), ("skipped", 2), ("skipped", 3)]
    assert all(seqs == [("message", 1), ("message", 2), ("message", 3)] for seqs in got[:-1])
    assert not [f for f in clients[-1].seen if f.get("message", {}).get("content") == "m0"]
