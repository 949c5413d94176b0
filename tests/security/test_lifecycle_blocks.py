"""Blocks: a blocked user cannot open or write in a direct conversation with the blocker."""

from __future__ import annotations

from tests.servers import ServerProcess, conversation, uid, ws_client


async def block(server: ServerProcess, user: str, other: str) -> None:
    async with server.client(user) as http:
        response = await http.post("/api/users/me/blocks", json={"userId": other})
    assert response.status_code == 204, response.text


async def test_blocks_are_listed_and_can_be_lifted(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    await block(server, alice, bob)
    async with server.client(alice) as http:
        assert (await http.get("/api/users/me/blocks")).json() == {"items": [bob]}
        assert (await http.delete(f"/api/users/me/blocks/{bob}")).status_code == 204
        assert (await http.get("/api/users/me/blocks")).json() == {"items": []}


async def test_a_blocked_user_cannot_open_a_direct_conversation_with_the_blocker(
    server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    await block(server, alice, bob)
    async with server.client(bob) as http:
        response = await http.post("/api/messages/conversations", json={"participantIds": [alice]})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "blocked"


async def test_a_blocked_user_cannot_send_into_an_existing_direct_conversation_over_rest(
    server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    await block(server, alice, bob)
    async with server.client(bob) as http:
        response = await http.post(
            "/api/messages/send", json={"conversationId": conv, "content": "hello?"}
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "blocked"
    async with server.client(alice) as http:
        assert (await http.get(f"/api/messages/{conv}")).json()["items"] == []


async def test_a_blocked_user_gets_a_blocked_error_frame_over_websocket(
    server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    await block(server, alice, bob)
    async with ws_client(server, bob) as b:
        await b.send(
            {"type": "send", "conversationId": conv, "content": "hi", "clientMsgId": "b-1"}
        )
        error = await b.recv()
    assert (error["type"], error["code"], error["ref"]) == ("error", "blocked", "b-1")


async def test_the_blocker_can_still_write_to_the_blocked_user(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    await block(server, alice, bob)
    async with server.client(alice) as http:
        response = await http.post(
            "/api/messages/send", json={"conversationId": conv, "content": "final word"}
        )
    assert response.status_code == 201
