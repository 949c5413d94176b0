"""The REST messaging API: conversations, history, sending, read positions, errors."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import pytest

from tests.servers import ServerProcess, conversation, uid, ws_client


async def send(http: httpx.AsyncClient, conv: str, content: str, **extra: str) -> httpx.Response:
    return await http.post(
        "/api/messages/send", json={"conversationId": conv, "content": content, **extra}
    )


async def test_create_conversation_includes_caller(server: ServerProcess) -> None:
    alice, bob, carol = uid(), uid(), uid()
    async with server.client(alice) as http:
        response = await http.post(
            "/api/messages/conversations",
            json={
                "participantIds": [bob, carol],
                "title": "Pitch deck",
                "metadata": {"pitchId": "p1"},
            },
        )
    assert response.status_code == 201
    body = response.json()
    assert sorted(body["participantIds"]) == sorted([alice, bob, carol])
    assert body["title"] == "Pitch deck" and body["metadata"] == {"pitchId": "p1"}
    assert body["lastMessage"] is None and body["unreadCount"] == 0


async def test_direct_conversation_is_returned_not_duplicated(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    async with server.client(alice) as http:
        first = await http.post("/api/messages/conversations", json={"participantIds": [bob]})
    async with server.client(bob) as http:
        again = await http.post("/api/messages/conversations", json={"participantIds": [alice]})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


async def test_conversation_list_orders_by_activity_with_last_message_and_unread(
    server: ServerProcess,
) -> None:
    alice, bob, carol = uid(), uid(), uid()
    older = await conversation(server, alice, bob)
    newer = await conversation(server, alice, carol)
    async with server.client(bob) as http:
        await send(http, older, "one")
        await send(http, older, "two")
    async with server.client(alice) as http:
        listing = (await http.get("/api/messages/conversations")).json()
    assert [c["id"] for c in listing["items"]] == [older, newer]
    assert listing["items"][0]["lastMessage"]["content"] == "two"
    assert listing["items"][0]["unreadCount"] == 2
    assert listing["nextCursor"] is None


async def test_conversation_list_is_cursor_paginated(server: ServerProcess) -> None:
    alice = uid()
    made = [await conversation(server, alice, uid()) for _ in range(5)]
    seen: list[str] = []
    cursor = None
    async with server.client(alice) as http:
        for _ in range(5):
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/api/messages/conversations", params=params)).json()
            seen += [c["id"] for c in page["items"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
    assert sorted(seen) == sorted(made) and len(seen) == 5


async def test_cached_conversation_list_is_invalidated_by_every_write(
    server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as a_http, server.client(bob) as b_http:
        assert (await a_http.get("/api/messages/conversations")).json()["items"][0][
            "lastMessage"
        ] is None
        message = (await send(b_http, conv, "fresh")).json()
        listing = (await a_http.get("/api/messages/conversations")).json()["items"][0]
        assert listing["lastMessage"]["content"] == "fresh" and listing["unreadCount"] == 1
        await a_http.post(f"/api/messages/{message['id']}/read")
        assert (await a_http.get("/api/messages/conversations")).json()["items"][0][
            "unreadCount"
        ] == 0
        third = uid()
        await b_http.post("/api/messages/conversations", json={"participantIds": [alice, third]})
        assert len((await a_http.get("/api/messages/conversations")).json()["items"]) == 2


async def test_history_pages_backwards_and_forwards_in_seq_order(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        for i in range(7):
            await send(http, conv, f"m{i}")
        latest = (await http.get(f"/api/messages/{conv}", params={"limit": 3})).json()
        assert [m["seq"] for m in latest["items"]] == [5, 6, 7]
        older = (
            await http.get(
                f"/api/messages/{conv}", params={"limit": 3, "before": latest["nextCursor"]}
            )
        ).json()
        assert [m["seq"] for m in older["items"]] == [2, 3, 4]
        forward = (await http.get(f"/api/messages/{conv}", params={"after": 2, "limit": 4})).json()
        assert [m["seq"] for m in forward["items"]] == [3, 4, 5, 6]
        rest = (
            await http.get(f"/api/messages/{conv}", params={"after": forward["nextCursor"]})
        ).json()
        assert [m["seq"] for m in rest["items"]] == [7] and rest["nextCursor"] is None


@pytest.mark.parametrize(
    "params", [{"limit": "101"}, {"limit": "0"}, {"before": "x"}, {"after": "-1"}]
)
async def test_history_refuses_bad_paging_with_422(
    server: ServerProcess, params: dict[str, str]
) -> None:
    alice = uid()
    conv = await conversation(server, alice, uid())
    async with server.client(alice) as http:
        response = await http.get(f"/api/messages/{conv}", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_same_client_msg_id_returns_first_message(server: ServerProcess) -> None:
    alice = uid()
    conv = await conversation(server, alice, uid())
    async with server.client(alice) as http:
        first = await send(http, conv, "once", clientMsgId="abc")
        again = await send(http, conv, "once", clientMsgId="abc")
        history = (await http.get(f"/api/messages/{conv}")).json()["items"]
    assert first.json() == again.json()
    assert len(history) == 1


async def test_read_marks_earlier_messages_and_never_moves_back(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(bob) as b_http, server.client(alice) as a_http:
        sent = [(await send(b_http, conv, f"m{i}")).json() for i in range(3)]
        receipt = await a_http.post(f"/api/messages/{sent[1]['id']}/read")
        assert receipt.status_code == 200 and receipt.json()["seq"] == 2
        assert (await a_http.get("/api/messages/conversations")).json()["items"][0][
            "unreadCount"
        ] == 1
        await a_http.post(f"/api/messages/{sent[0]['id']}/read")
        assert (await a_http.get("/api/messages/conversations")).json()["items"][0][
            "unreadCount"
        ] == 1


async def test_read_over_rest_sends_receipt_live(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as a_http:
        message = (await send(a_http, conv, "hello")).json()
    async with ws_client(server, alice) as a:
        await a.subscribe(conv)
        async with server.client(bob) as b_http:
            await b_http.post(f"/api/messages/{message['id']}/read")
        receipt = await a.expect("read")
        assert receipt["userId"] == bob and receipt["seq"] == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[]", 422, "validation_error"),
        (b'{"conversationId": 5, "content": "x"}', 422, "validation_error"),
        (b'{"conversationId": "c"}', 422, "validation_error"),
        (b'{"conversationId": "c", "content": ""}', 422, "validation_error"),
        (b"", 422, "validation_error"),
    ],
)
async def test_bad_send_bodies_get_clear_4xx(
    server: ServerProcess, body: bytes, status: int, code: str
) -> None:
    async with server.client(uid()) as http:
        response = await http.post(
            "/api/messages/send", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_oversized_content_is_refused(server: ServerProcess) -> None:
    alice = uid()
    conv = await conversation(server, alice, uid())
    async with server.client(alice) as http:
        response = await send(http, conv, "x" * 10_001)
    assert response.status_code == 422


async def test_unknown_route_and_method_use_the_error_shape(server: ServerProcess) -> None:
    async with server.client(uid()) as http:
        missing = await http.get("/api/nothing-here")
        wrong = await http.delete("/api/messages/send")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


async def test_unknown_message_read_is_404(server: ServerProcess) -> None:
    async with server.client(uid()) as http:
        response = await http.post("/api/messages/no-such-message/read")
    assert response.status_code == 404


async def test_healthz(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 200


async def test_nul_characters_are_refused_not_stored(server: ServerProcess) -> None:
    alice = uid()
    conv = await conversation(server, alice, uid())
    async with server.client(alice) as http:
        in_body = await http.post(
            "/api/messages/conversations", json={"participantIds": ["bob\u0000"], "title": "x"}
        )
        in_path = await http.get(f"/api/messages/{conv}%00")
        in_query = await http.get(f"/api/messages/{conv}", params={"before": "1\u0000"})
        literal = await send(http, conv, "the text \\u0000 is fine")
    assert in_body.status_code == 422 and in_body.json()["error"]["code"] == "validation_error"
    assert in_path.status_code == 400 and in_query.status_code == 400
    assert literal.status_code == 201 and literal.json()["content"] == "the text \\u0000 is fine"


async def test_message_ids_are_version_7_uuids_that_carry_their_creation_time(
    server: ServerProcess,
) -> None:
    # Time-ordered ids keep the primary-key index's writes on its last pages (one page
    # per batch, not one per message); 74 random bits keep them unguessable.
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        sent = [(await send(http, conv, f"m{i}")).json() for i in range(5)]
    ids = [uuid.UUID(m["id"]) for m in sent]
    assert {i.version for i in ids} == {7} and {i.variant for i in ids} == {uuid.RFC_4122}
    for message, value in zip(sent, ids, strict=True):
        created = datetime.fromisoformat(message["createdAt"].replace("Z", "+00:00"))
        assert value.int >> 80 == round(created.timestamp() * 1000)
