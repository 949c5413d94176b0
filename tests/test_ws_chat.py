"""Live chat over real WebSocket connections."""

from __future__ import annotations

import asyncio

from tests.conftest import EVERY_BACKEND_AND_ASGI
from tests.servers import ServerProcess, conversation, uid, ws_client

# Also on uvicorn's own protocol: the fallback for an incompatible uvicorn (WS_FAST_PATH).
pytestmark = EVERY_BACKEND_AND_ASGI


async def test_two_clients_chat_live_and_sender_gets_ack(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a, ws_client(server, bob) as b:
        await a.subscribe(conv)
        await b.subscribe(conv)
        await a.send(
            {"type": "send", "conversationId": conv, "content": "hi bob", "clientMsgId": "m1"}
        )
        ack = await a.expect("ack")
        assert ack["clientMsgId"] == "m1" and ack["seq"] == 1
        got = (await b.messages(1))[0]
        assert got == {
            "id": ack["messageId"],
            "conversationId": conv,
            "seq": 1,
            "senderId": alice,
            "content": "hi bob",
            "createdAt": got["createdAt"],
            "clientMsgId": "m1",
            "attachments": None,
        }
        await b.send({"type": "send", "conversationId": conv, "content": "hi alice"})
        reply = await a.messages(2)
        assert [m["content"] for m in reply] == ["hi bob", "hi alice"]
        assert [m["seq"] for m in reply] == [1, 2]


async def test_message_sent_over_rest_reaches_websocket_subscribers(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, bob) as b:
        await b.subscribe(conv)
        async with server.client(alice) as http:
            response = await http.post(
                "/api/messages/send", json={"conversationId": conv, "content": "over rest"}
            )
        assert response.status_code == 201
        got = (await b.messages(1))[0]
        assert got == response.json()


async def test_subscribed_reports_who_is_online_and_presence_changes(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a:
        first = await a.subscribe(conv)
        assert first["online"] == [alice] and first["seq"] == 0
        async with ws_client(server, bob) as b:
            second = await b.subscribe(conv)
            assert sorted(second["online"]) == sorted([alice, bob])
            online = await a.expect("presence", where=lambda f: bob in f.get("joined", []))
            assert online["onlineCount"] == 2
        offline = await a.expect("presence", where=lambda f: bob in f.get("left", []))
        assert offline["conversationId"] == conv
        assert offline["onlineCount"] == 1


async def test_typing_reaches_others_and_expires_by_itself(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a, ws_client(server, bob) as b:
        await a.subscribe(conv)
        await b.subscribe(conv)
        await a.send({"type": "typing", "conversationId": conv, "isTyping": True})
        typing = await b.expect("typing", where=lambda f: f["userId"] == alice)
        assert typing["isTyping"] is True
        # TYPING_TTL is 0.5 s in tests: no refresh, so the indicator ends without a word from alice.
        stopped = await b.expect("typing", timeout=3, where=lambda f: f["userId"] == alice)
        assert stopped["isTyping"] is False


async def test_read_receipt_reaches_other_participants_live(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a, ws_client(server, bob) as b:
        await a.subscribe(conv)
        await b.subscribe(conv)
        await a.send({"type": "send", "conversationId": conv, "content": "read me"})
        message = (await b.messages(1))[0]
        await b.send({"type": "read", "conversationId": conv, "messageId": message["id"]})
        receipt = await a.expect("read")
        assert receipt == {
            "type": "read",
            "conversationId": conv,
            "userId": bob,
            "messageId": message["id"],
            "seq": 1,
        }


async def test_ping_gets_pong(server: ServerProcess) -> None:
    async with ws_client(server, uid()) as a:
        await a.send({"type": "ping"})
        assert (await a.recv())["type"] == "pong"


async def test_unsubscribe_stops_delivery(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a, ws_client(server, bob) as b:
        await a.subscribe(conv)
        await b.subscribe(conv)
        await b.send({"type": "unsubscribe", "conversationId": conv})
        await b.expect("unsubscribed")
        await a.send({"type": "send", "conversationId": conv, "content": "after"})
        await a.expect("ack")
        await b.send({"type": "ping"})
        # Frames arrive in order: the pong comes with no message before it.
        assert (await b.expect("pong"))["type"] == "pong"
        assert not [f for f in b.seen if f["type"] == "message"]


async def test_many_messages_from_one_client_arrive_in_order(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a, ws_client(server, bob) as b:
        await a.subscribe(conv)
        await b.subscribe(conv)
        for i in range(30):
            await a.send({"type": "send", "conversationId": conv, "content": f"m{i}"})
        got = await b.messages(30)
        assert [m["content"] for m in got] == [f"m{i}" for i in range(30)]
        assert [m["seq"] for m in got] == list(range(1, 31))


async def test_concurrent_senders_get_unique_gap_free_seqs(server: ServerProcess) -> None:
    users = [uid() for _ in range(5)]
    conv = await conversation(server, *users)

    async def burst(user: str) -> list[int]:
        async with server.client(user) as http:
            replies = await asyncio.gather(
                *(
                    http.post(
                        "/api/messages/send",
                        json={"conversationId": conv, "content": f"{user} {i}"},
                    )
                    for i in range(8)
                )
            )
        return [r.json()["seq"] for r in replies]

    seqs = [s for batch in await asyncio.gather(*(burst(u) for u in users)) for s in batch]
    assert sorted(seqs) == list(range(1, 41))
