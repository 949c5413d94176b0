"""The seed's 50 messages per minute per user, on REST and WebSocket alike."""

from __future__ import annotations

from collections.abc import Callable

from tests.servers import ServerProcess, conversation, uid, ws_client


async def test_rest_send_over_limit_is_429_with_retry_after_and_not_stored(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(MESSAGE_RATE_LIMIT_PER_MINUTE="5")
    alice = uid()
    conv = await conversation(server, alice, uid())
    async with server.client(alice) as http:
        codes = [
            (
                await http.post(
                    "/api/messages/send", json={"conversationId": conv, "content": f"m{i}"}
                )
            )
            for i in range(6)
        ]
        assert [r.status_code for r in codes] == [201] * 5 + [429]
        refused = codes[-1]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        history = (await http.get(f"/api/messages/{conv}")).json()["items"]
    assert [m["content"] for m in history] == [f"m{i}" for i in range(5)]


async def test_websocket_send_over_limit_gets_rate_limited_error(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(MESSAGE_RATE_LIMIT_PER_MINUTE="3")
    alice = uid()
    conv = await conversation(server, alice, uid())
    async with ws_client(server, alice) as client:
        for i in range(4):
            await client.send(
                {"type": "send", "conversationId": conv, "content": f"m{i}", "clientMsgId": f"c{i}"}
            )
        acks = [await client.expect("ack") for _ in range(3)]
        assert [a["clientMsgId"] for a in acks] == ["c0", "c1", "c2"]
        error = await client.expect("error")
        assert error["code"] == "rate_limited" and error["ref"] == "c3"
    async with server.client(alice) as http:
        assert len((await http.get(f"/api/messages/{conv}")).json()["items"]) == 3


async def test_limit_is_per_user(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(MESSAGE_RATE_LIMIT_PER_MINUTE="2")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    for user in (alice, bob):
        async with server.client(user) as http:
            for i in range(2):
                response = await http.post(
                    "/api/messages/send", json={"conversationId": conv, "content": str(i)}
                )
                assert response.status_code == 201
