"""Members added and removed: each change takes a seq, is announced as a `member` event,
and ends (or starts) what the member sees at once."""

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


async def add(
    http: httpx.AsyncClient, conv: str, *users: str, share_history: bool | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"userIds": list(users)}
    if share_history is not None:
        body["shareHistory"] = share_history
    return await http.post(f"/api/messages/conversations/{conv}/participants", json=body)


async def test_an_added_member_sees_only_messages_after_joining_by_default(
    server: ServerProcess,
) -> None:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(server, alice, bob, title="round")
    async with server.client(alice) as http:
        await send(http, conv, "before carol")
        response = await add(http, conv, carol)
        assert response.status_code == 200, response.text
        assert carol in response.json()["participantIds"]
        await send(http, conv, "after carol")
    async with server.client(carol) as http:
        items = (await http.get(f"/api/messages/{conv}")).json()["items"]
        [listed] = (await http.get("/api/messages/conversations")).json()["items"]
    assert [m["content"] for m in items] == ["after carol"]
    assert listed["unreadCount"] == 1


async def test_an_added_member_with_shared_history_sees_everything(server: ServerProcess) -> None:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(server, alice, bob, title="round")
    async with server.client(alice) as http:
        await send(http, conv, "before carol")
        assert (await add(http, conv, carol, share_history=True)).status_code == 200
    async with server.client(carol) as http:
        items = (await http.get(f"/api/messages/{conv}")).json()["items"]
    assert [m["content"] for m in items] == ["before carol"]


async def test_a_direct_conversation_cannot_gain_members(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        response = await add(http, conv, uid())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "direct_conversation"


async def test_subscribers_get_a_member_event_when_someone_is_added(
    server: ServerProcess,
) -> None:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(server, alice, bob, title="round")
    async with ws_client(server, bob) as b:
        await b.subscribe(conv)
        async with server.client(alice) as http:
            await add(http, conv, carol)
        event = await b.expect("member")
    assert (event["userId"], event["action"], event["by"], event["seq"]) == (
        carol,
        "added",
        alice,
        1,
    )


async def test_a_removed_member_is_unsubscribed_and_receives_nothing_more(
    server: ServerProcess,
) -> None:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(server, alice, bob, carol, title="round")
    async with ws_client(server, carol) as c, ws_client(server, bob) as b:
        await c.subscribe(conv)
        await b.subscribe(conv)
        async with server.client(alice) as http:
            response = await http.delete(f"/api/messages/conversations/{conv}/participants/{carol}")
            assert response.status_code == 204
            unsubscribed = await c.expect("unsubscribed")
            assert unsubscribed == {
                "type": "unsubscribed",
                "conversationId": conv,
                "reason": "removed",
            }
            await send(http, conv, "without carol")
        assert (await b.messages(1))[0]["content"] == "without carol"
        event = next(f for f in b.seen if f["type"] == "member")
        assert (event["userId"], event["action"]) == (carol, "removed")
        await c.send({"type": "ping"})
        # Nothing of the conversation came before the pong.
        assert (await c.recv())["type"] == "pong"


async def test_a_removed_member_gets_404_on_history_and_sends_and_loses_the_conversation(
    server: ServerProcess,
) -> None:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(server, alice, bob, carol, title="round")
    async with server.client(carol) as http:
        assert (await http.get(f"/api/messages/{conv}")).status_code == 200
        assert len((await http.get("/api/messages/conversations")).json()["items"]) == 1
    async with server.client(alice) as http:
        await http.delete(f"/api/messages/conversations/{conv}/participants/{carol}")
    async with server.client(carol) as http:
        assert (await http.get(f"/api/messages/{conv}")).status_code == 404
        sent = await http.post(
            "/api/messages/send", json={"conversationId": conv, "content": "still here?"}
        )
        assert sent.status_code == 404
        assert (await http.get("/api/messages/conversations")).json()["items"] == []


async def test_a_member_who_leaves_is_announced_as_left(server: ServerProcess) -> None:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(server, alice, bob, carol, title="round")
    async with ws_client(server, alice) as a:
        await a.subscribe(conv)
        async with server.client(carol) as http:
            response = await http.delete(f"/api/messages/conversations/{conv}/participants/{carol}")
        assert response.status_code == 204
        event = await a.expect("member")
    assert (event["userId"], event["action"], event["by"]) == (carol, "left", carol)


async def test_additions_beyond_the_participant_limit_are_refused(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(CONVERSATION_MAX_PARTICIPANTS="3")
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(server, alice, bob, carol, title="full")
    async with server.client(alice) as http:
        response = await add(http, conv, uid())
    assert response.status_code == 422
