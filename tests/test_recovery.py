"""Recovery with `since`: every missed message once, in order, with no gap, even mid-stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.servers import ServerProcess, conversation, uid, ws_client


async def test_subscribe_since_replays_missed_messages_then_live(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        for i in range(5):
            await http.post("/api/messages/send", json={"conversationId": conv, "content": f"m{i}"})
    async with ws_client(server, bob) as b:
        subscribed = await b.subscribe(conv, since=2)
        assert (
            subscribed["seq"] == 5
            and subscribed["recovered"] is True
            and subscribed["replayed"] == 3
        )
        replay = await b.messages(3)
        assert [m["seq"] for m in replay] == [3, 4, 5]
        async with server.client(alice) as http:
            await http.post("/api/messages/send", json={"conversationId": conv, "content": "live"})
        assert (await b.messages(1))[0]["seq"] == 6


async def test_replay_races_live_messages_without_gap_or_duplicate(server: ServerProcess) -> None:
    """Messages keep arriving while many clients resubscribe with `since`."""
    alice = uid()
    readers = [uid() for _ in range(8)]
    conv = await conversation(server, alice, *readers)
    total = 120

    async def sender() -> None:
        async with ws_client(server, alice) as a:
            for i in range(total):
                await a.send({"type": "send", "conversationId": conv, "content": f"m{i}"})
                await a.expect("ack")

    async def reader(user: str, delay_acks: int) -> list[int]:
        seqs: list[int] = []
        async with ws_client(server, user) as r:
            await r.subscribe(conv)
            # Read a few live messages, drop the connection, then come back with `since`.
            seqs += [m["seq"] for m in await r.messages(delay_acks)]
        async with ws_client(server, user) as r:
            await r.subscribe(conv, since=seqs[-1])
            while not seqs or seqs[-1] < total:
                seqs += [m["seq"] for m in await r.messages(1)]
        return seqs

    sending = asyncio.create_task(sender())
    results = await asyncio.gather(*(reader(u, 3 + 7 * i) for i, u in enumerate(readers)))
    await sending
    for seqs in results:
        assert seqs == list(range(seqs[0], total + 1)), seqs


async def test_replay_larger_than_limit_is_not_sent_partially(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(WS_MAX_REPLAY="3")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        for i in range(5):
            await http.post("/api/messages/send", json={"conversationId": conv, "content": f"m{i}"})
    async with ws_client(server, bob) as b:
        subscribed = await b.subscribe(conv, since=1)
        assert subscribed["recovered"] is False and subscribed["seq"] == 5
        assert subscribed["replayed"] == 0
        await b.send({"type": "ping"})
        await b.expect("pong")
        assert not [f for f in b.seen if f["type"] == "message"]


async def test_since_at_or_past_latest_replays_nothing(server: ServerProcess) -> None:
    alice = uid()
    conv = await conversation(server, alice, uid())
    async with server.client(alice) as http:
        await http.post("/api/messages/send", json={"conversationId": conv, "content": "x"})
    async with ws_client(server, alice) as a:
        subscribed = await a.subscribe(conv, since=99)
        assert subscribed["replayed"] == 0 and subscribed["recovered"] is True
