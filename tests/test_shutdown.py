"""SIGTERM under load: clients are told to go away (1001) and no acknowledged message is lost."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from tests.servers import ServerProcess, conversation, uid, ws_client


async def test_sigterm_under_load_closes_with_1001_and_loses_nothing(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "data")
    senders = [uid() for _ in range(4)]
    conv = await conversation(server, *senders)
    acked: dict[str, int] = {}
    sent: list[str] = []
    close_codes: list[int] = []

    async def flood(user: str) -> None:
        async with ws_client(server, user) as client:
            try:
                for i in range(10_000):
                    client_id = f"{user}-{i}"
                    sent.append(client_id)
                    await client.send(
                        {
                            "type": "send",
                            "conversationId": conv,
                            "content": str(i),
                            "clientMsgId": client_id,
                        }
                    )
                    frame = await client.expect("ack", timeout=10)
                    acked[frame["clientMsgId"]] = frame["seq"]
            except ConnectionClosed as closed:
                close_codes.append(closed.rcvd.code if closed.rcvd else 1006)

    tasks = [asyncio.create_task(flood(u)) for u in senders]
    deadline = asyncio.get_running_loop().time() + 20
    while len(acked) < 200 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    # A clean drain is a clean exit: status 0, not death by the signal.
    assert server.proc.wait(30) == 0
    assert "Application shutdown complete" in server.log_tail(1_000_000)
    assert close_codes and set(close_codes) == {1001}, close_codes

    server.start()
    async with server.client(senders[0]) as http:
        stored: dict[str, int] = {}
        after = 0
        while True:
            page = (
                await http.get(f"/api/messages/{conv}", params={"after": after, "limit": 100})
            ).json()
            for message in page["items"]:
                stored[message["clientMsgId"]] = message["seq"]
            if not page["items"]:
                break
            after = page["items"][-1]["seq"]
    # Every acknowledged message is stored with the seq its ack promised.
    assert {k: stored.get(k) for k in acked} == acked
    # seq stayed gap-free through the shutdown.
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))
    # A client resending an unacknowledged message (same clientMsgId) gets no duplicate.
    unacked = [c for c in sent if c not in acked]
    if unacked:
        user = unacked[0].rsplit("-", 1)[0]
        async with server.client(user) as http:
            again = await http.post(
                "/api/messages/send",
                json={"conversationId": conv, "content": "x", "clientMsgId": unacked[0]},
            )
        assert again.status_code == 201
        if unacked[0] in stored:
            assert again.json()["seq"] == stored[unacked[0]]
