"""A client too slow to read is disconnected with 1013; the others keep receiving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from tests.conftest import BOTH_TRANSPORTS
from tests.servers import RawWebSocket, ServerProcess, conversation, uid, ws_client

# Also on uvicorn's own protocol: the fallback for an incompatible uvicorn (WS_FAST_PATH).
pytestmark = BOTH_TRANSPORTS


async def test_slow_client_is_closed_with_1013_and_others_keep_receiving(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(WS_SEND_QUEUE_MAX_FRAMES="50", WS_SEND_QUEUE_MAX_BYTES="200000")
    alice, fast_user, slow_user = uid(), uid(), uid()
    conv = await conversation(server, alice, fast_user, slow_user)
    total = 1500
    content = "y" * 9_000  # 1500 x 9 KB is far more than the server's socket buffer can hold
    slow = RawWebSocket(server, slow_user)
    slow.send_json({"type": "subscribe", "conversationId": conv})
    async with ws_client(server, fast_user) as fast, ws_client(server, alice) as sender:
        await fast.subscribe(conv)
        received = 0

        async def read_all() -> None:
            nonlocal received
            while received < total:
                await fast.expect("message", timeout=20)
                received += 1

        reading = asyncio.create_task(read_all())
        for i in range(total):
            await sender.send({"type": "send", "conversationId": conv, "content": f"{i}{content}"})
            await sender.expect("ack")
        await asyncio.wait_for(reading, 60)
        assert received == total
    # Now the slow client reads what reached it: some messages, then the close frame.
    frames = await asyncio.to_thread(slow.frames)
    slow.close()
    opcode, payload = frames[-1]
    assert opcode == 0x8
    assert int.from_bytes(payload[:2], "big") == 1013
    assert b"slow consumer" in payload[2:]
    delivered = [json.loads(p) for op, p in frames if op == 0x1]
    seqs = [f["message"]["seq"] for f in delivered if f["type"] == "message"]
    # It was cut off, not buffered without bound, and what it got has no gap.
    assert len(seqs) < total
    assert seqs == list(range(1, len(seqs) + 1))
    # When it comes back, the gap is too large for its queue: `subscribed` says so
    # (recovered false) instead of replaying part of it, and REST pages fill the gap.
    async with ws_client(server, slow_user) as again:
        subscribed = await again.subscribe(conv, since=seqs[-1])
        assert subscribed["seq"] == total and subscribed["recovered"] is False
    async with server.client(slow_user) as http:
        after = seqs[-1]
        while after < total:
            page = (
                await http.get(f"/api/messages/{conv}", params={"after": after, "limit": 100})
            ).json()
            seqs += [m["seq"] for m in page["items"]]
            after = seqs[-1]
    assert seqs == list(range(1, total + 1))
