"""Accepted means stored: history, read positions and seq survive a restart and kill -9."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.servers import ServerProcess, conversation, uid, ws_client


async def test_history_read_positions_and_seq_survive_restart(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "data")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        sent = [
            (
                await http.post(
                    "/api/messages/send", json={"conversationId": conv, "content": f"m{i}"}
                )
            ).json()
            for i in range(3)
        ]
    async with server.client(bob) as http:
        await http.post(f"/api/messages/{sent[1]['id']}/read")
    server.stop()
    server.start()
    async with server.client(bob) as http:
        history = (await http.get(f"/api/messages/{conv}")).json()["items"]
        listing = (await http.get("/api/messages/conversations")).json()["items"]
        after = (
            await http.post("/api/messages/send", json={"conversationId": conv, "content": "next"})
        ).json()
    assert [m["content"] for m in history] == ["m0", "m1", "m2"]
    assert listing[0]["unreadCount"] == 1
    assert after["seq"] == 4


async def test_acknowledged_messages_survive_kill_9(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "data")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    acked: list[int] = []
    async with ws_client(server, alice) as a:
        for i in range(50):
            await a.send(
                {"type": "send", "conversationId": conv, "content": f"m{i}", "clientMsgId": f"c{i}"}
            )
        for _ in range(50):
            acked.append((await a.expect("ack"))["seq"])
        server.kill()
    server.start()
    async with server.client(bob) as http:
        history = (await http.get(f"/api/messages/{conv}", params={"limit": 100})).json()["items"]
    assert sorted(acked) == [m["seq"] for m in history] == list(range(1, 51))
