"""Who may edit, delete and remove: the sender, the creator, an admin; nobody else."""

from __future__ import annotations

from tests.servers import ServerProcess, conversation, send_rest, uid, ws_client


async def test_another_member_cannot_edit_or_delete_a_message(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    message = await send_rest(server, alice, conv, "mine")
    async with server.client(bob) as http:
        edit = await http.patch(f"/api/messages/{message['id']}", json={"content": "yours"})
        delete = await http.delete(f"/api/messages/{message['id']}")
        items = (await http.get(f"/api/messages/{conv}")).json()["items"]
    assert (edit.status_code, delete.status_code) == (403, 403)
    assert items[0]["content"] == "mine"


async def test_an_outsider_cannot_tell_a_message_exists(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    message = await send_rest(server, alice, conv, "private")
    async with server.client(uid()) as http:
        edit = await http.patch(f"/api/messages/{message['id']}", json={"content": "x"})
        delete = await http.delete(f"/api/messages/{message['id']}")
    assert (edit.status_code, delete.status_code) == (404, 404)
    assert edit.json()["error"]["code"] == "not_found"


async def test_a_member_who_is_not_the_creator_cannot_remove_others(
    server: ServerProcess,
) -> None:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(server, alice, bob, carol, title="round")
    async with server.client(bob) as http:
        response = await http.delete(f"/api/messages/conversations/{conv}/participants/{carol}")
    assert response.status_code == 403
    async with server.client(carol) as http:
        assert (await http.get(f"/api/messages/{conv}")).status_code == 200


async def test_an_outsider_cannot_add_members(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob, title="round")
    mallory = uid()
    async with server.client(mallory) as http:
        response = await http.post(
            f"/api/messages/conversations/{conv}/participants", json={"userIds": [mallory]}
        )
    assert response.status_code == 404


async def test_a_removed_member_cannot_send_over_websocket(server: ServerProcess) -> None:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(server, alice, bob, carol, title="round")
    async with ws_client(server, carol) as c:
        await c.subscribe(conv)
        async with server.client(alice) as http:
            await http.delete(f"/api/messages/conversations/{conv}/participants/{carol}")
        await c.expect("unsubscribed")
        await c.send({"type": "send", "conversationId": conv, "content": "sneaky"})
        error = await c.recv()
    assert (error["type"], error["code"], error["ref"]) == ("error", "not_found", conv)
