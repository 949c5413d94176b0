"""Edits and deletions: each takes the next seq, reaches subscribers live and on replay,
and history shows the current state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.servers import ServerProcess, conversation, uid, ws_client


async def send(http: httpx.AsyncClient, conv: str, content: str) -> dict[str, Any]:
    response = await http.post(
        "/api/messages/send", json={"conversationId": conv, "content": content}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def history(http: httpx.AsyncClient, conv: str) -> list[dict[str, Any]]:
    response = await http.get(f"/api/messages/{conv}")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_sender_edits_a_message_and_history_shows_the_new_content(
    server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        sent = await send(http, conv, "draft")
        response = await http.patch(f"/api/messages/{sent['id']}", json={"content": "final"})
        assert response.status_code == 200, response.text
        edited = response.json()
        assert (edited["content"], edited["seq"]) == ("final", sent["seq"])
        assert edited["editedAt"]
    async with server.client(bob) as http:
        [shown] = await history(http, conv)
    assert shown["content"] == "final" and shown["editedAt"] == edited["editedAt"]


async def test_an_edit_reaches_subscribers_as_message_updated_with_its_own_seq(
    server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, bob) as b:
        await b.subscribe(conv)
        async with server.client(alice) as http:
            sent = await send(http, conv, "typo")
            await http.patch(f"/api/messages/{sent['id']}", json={"content": "fixed"})
        updated = await b.expect("message_updated")
    assert updated["conversationId"] == conv and updated["seq"] == sent["seq"] + 1
    assert updated["message"]["id"] == sent["id"] and updated["message"]["content"] == "fixed"


async def test_a_deleted_message_shows_as_deleted_with_its_content_gone(
    server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        sent = await send(http, conv, "secret terms")
        response = await http.delete(f"/api/messages/{sent['id']}")
        assert response.status_code == 204
    async with server.client(bob) as http:
        [shown] = await history(http, conv)
    assert (shown["id"], shown["deleted"], shown["content"]) == (sent["id"], True, "")


async def test_a_deletion_reaches_subscribers_as_message_deleted(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, bob) as b:
        await b.subscribe(conv)
        async with server.client(alice) as http:
            sent = await send(http, conv, "oops")
            await http.delete(f"/api/messages/{sent['id']}")
        deleted = await b.expect("message_deleted")
    assert deleted == {
        "type": "message_deleted",
        "conversationId": conv,
        "seq": sent["seq"] + 1,
        "messageId": sent["id"],
        "senderId": alice,
    }


async def test_an_admin_token_may_delete_any_message(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        sent = await send(http, conv, "reported")
    async with server.client(uid("admin"), role="admin") as http:
        response = await http.delete(f"/api/messages/{sent['id']}")
    assert response.status_code == 204


async def test_replay_with_since_covers_an_edit_a_deletion_and_a_member_change_in_order(
    server: ServerProcess,
) -> None:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(server, alice, bob, title="deal room")
    async with server.client(alice) as http:
        first = await send(http, conv, "one")
        second = await send(http, conv, "two")
        await http.patch(f"/api/messages/{first['id']}", json={"content": "one, edited"})
        await http.delete(f"/api/messages/{second['id']}")
        added = await http.post(
            f"/api/messages/conversations/{conv}/participants", json={"userIds": [carol]}
        )
        assert added.status_code == 200, added.text
        await send(http, conv, "three")
    async with ws_client(server, bob) as b:
        subscribed = await b.subscribe(conv, since=first["seq"])
        assert (subscribed["recovered"], subscribed["replayed"], subscribed["seq"]) == (
            True,
            5,
            6,
        )
        frames = [await b.recv() for _ in range(5)]
    assert [(f["type"], f.get("seq", f.get("message", {}).get("seq"))) for f in frames] == [
        ("message", 2),
        ("message_updated", 3),
        ("message_deleted", 4),
        ("member", 5),
        ("message", 6),
    ]
    # A replay shows messages as they are now: the deleted one's content is gone.
    assert frames[0]["message"]["content"] == "" and frames[0]["message"]["deleted"] is True
    assert frames[1]["message"]["content"] == "one, edited"
    assert frames[3] == {
        "type": "member",
        "conversationId": conv,
        "seq": 5,
        "userId": carol,
        "action": "added",
        "by": alice,
    }


async def test_unread_count_counts_messages_not_edits_or_deleted_messages(
    server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        kept = await send(http, conv, "kept")
        gone = await send(http, conv, "gone")
        await http.patch(f"/api/messages/{kept['id']}", json={"content": "kept, edited"})
        await http.delete(f"/api/messages/{gone['id']}")
    async with server.client(bob) as http:
        [listed] = (await http.get("/api/messages/conversations")).json()["items"]
    assert listed["unreadCount"] == 1


async def test_last_message_in_the_list_reflects_an_edit(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        sent = await send(http, conv, "before")
        await http.get("/api/messages/conversations")  # cached now
        await http.patch(f"/api/messages/{sent['id']}", json={"content": "after"})
        [listed] = (await http.get("/api/messages/conversations")).json()["items"]
    assert listed["lastMessage"]["content"] == "after"


async def test_an_edit_after_the_edit_window_answers_409(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(MESSAGE_EDIT_WINDOW="0.001")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        sent = await send(http, conv, "too late")
        response = await http.patch(f"/api/messages/{sent['id']}", json={"content": "x"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "edit_window_closed"
