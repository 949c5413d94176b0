"""Blocks in group conversations: the blocker receives nothing the blocked user wrote.

Live, on replay and over REST; each filtered event with a seq reaches the blocker as a
`skipped` frame, so their seqs stay gap-free and a gap still means loss.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.security.test_lifecycle_blocks import block
from tests.servers import ServerProcess, WsClient, conversation, send_rest, uid, ws_client


async def timeline(ws: WsClient, count: int) -> list[tuple[str, int, str]]:
    """The next `count` frames that carry a seq: (type, seq, content or '')."""
    found: list[tuple[str, int, str]] = []
    while len(found) < count:
        frame = await ws.recv()
        if frame["type"] == "message":
            message = frame["message"]
            found.append(("message", message["seq"], message["content"]))
        elif frame["type"] in ("skipped", "message_updated", "message_deleted", "member"):
            found.append((frame["type"], frame["seq"], ""))
    return found


async def group(
    server: ServerProcess, blocked_on: ServerProcess | None = None
) -> tuple[str, str, str, str]:
    """alice, bob and carol in a titled conversation on `server`; alice blocks bob (through
    `blocked_on`, another node of the same service, if given)."""
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    conv = await conversation(server, alice, bob, carol, title="Night Train")
    await block(blocked_on or server, alice, bob)
    return alice, bob, carol, conv


async def a_blocked_users_message_reaches_the_blocker_as_skipped(
    blocker_on: ServerProcess, others_on: ServerProcess
) -> None:
    """alice (blocker, on `blocker_on`) gets bob's message as a `skipped` frame; carol (on
    `others_on`, where bob writes) gets it as it was."""
    alice, bob, carol, conv = await group(blocker_on, blocked_on=others_on)
    async with ws_client(blocker_on, alice) as a, ws_client(others_on, carol) as c:
        await a.subscribe(conv)
        await c.subscribe(conv)
        await send_rest(others_on, bob, conv, "from bob")
        await send_rest(others_on, carol, conv, "from carol")
        assert await timeline(a, 2) == [("skipped", 1, ""), ("message", 2, "from carol")]
        assert await timeline(c, 2) == [("message", 1, "from bob"), ("message", 2, "from carol")]
    assert not [f for f in a.seen if "from bob" in str(f)]


async def a_block_mid_session(session_on: ServerProcess, acted_on: ServerProcess) -> None:
    """alice, subscribed on `session_on`, blocks and unblocks bob through `acted_on`: her open
    session filters bob from the block on and lets him through again from the unblock."""
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    conv = await conversation(session_on, alice, bob, carol, title="Pitch room")
    async with ws_client(session_on, alice) as a:
        await a.subscribe(conv)
        await send_rest(acted_on, bob, conv, "before")
        assert await timeline(a, 1) == [("message", 1, "before")]
        # Made through another node, the notice still reaches the session before the message.
        await block(acted_on, alice, bob)
        await send_rest(acted_on, bob, conv, "after the block")
        await send_rest(session_on, carol, conv, "carol")
        assert await timeline(a, 2) == [("skipped", 2, ""), ("message", 3, "carol")]
        async with acted_on.client(alice) as http:
            assert (await http.delete(f"/api/users/me/blocks/{bob}")).status_code == 204
        await send_rest(acted_on, bob, conv, "after the unblock")
        assert await timeline(a, 1) == [("message", 4, "after the unblock")]


async def test_the_blocker_gets_a_skipped_frame_in_place_of_a_blocked_users_message(
    server: ServerProcess,
) -> None:
    await a_blocked_users_message_reaches_the_blocker_as_skipped(server, server)


async def test_edits_and_deletions_of_a_blocked_users_messages_are_skipped_too(
    server: ServerProcess,
) -> None:
    alice, bob, carol, conv = await group(server)
    mine = await send_rest(server, bob, conv, "draft")
    async with ws_client(server, alice) as a:
        await a.subscribe(conv)
        async with server.client(bob) as http:
            edited = await http.patch(f"/api/messages/{mine['id']}", json={"content": "final"})
            assert edited.status_code == 200, edited.text
            assert (await http.delete(f"/api/messages/{mine['id']}")).status_code == 204
        await send_rest(server, carol, conv, "after")
        assert await timeline(a, 3) == [
            ("skipped", 2, ""),
            ("skipped", 3, ""),
            ("message", 4, "after"),
        ]
    assert not [f for f in a.seen if mine["id"] in str(f) or "final" in str(f)]


async def test_the_blocked_users_typing_is_not_relayed_to_the_blocker(
    server: ServerProcess,
) -> None:
    alice, bob, carol, conv = await group(server)
    async with ws_client(server, alice) as a, ws_client(server, bob) as b:
        await a.subscribe(conv)
        await b.subscribe(conv)
        await b.send({"type": "typing", "conversationId": conv, "isTyping": True})
        await send_rest(server, carol, conv, "after")
        await timeline(a, 1)
    assert not [f for f in a.seen if f["type"] == "typing"]


async def test_a_replay_skips_the_blocked_users_messages_without_a_gap(
    server: ServerProcess,
) -> None:
    alice, bob, carol, conv = await group(server)
    await send_rest(server, carol, conv, "one")
    await send_rest(server, bob, conv, "two")
    await send_rest(server, carol, conv, "three")
    async with ws_client(server, alice) as a:
        subscribed = await a.subscribe(conv, since=0)
        assert (subscribed["recovered"], subscribed["replayed"], subscribed["seq"]) == (True, 3, 3)
        assert await timeline(a, 3) == [
            ("message", 1, "one"),
            ("skipped", 2, ""),
            ("message", 3, "three"),
        ]


async def test_history_leaves_out_the_blocked_users_messages_until_unblocked(
    server: ServerProcess,
) -> None:
    alice, bob, carol, conv = await group(server)
    for sender, text in ((carol, "one"), (bob, "two"), (carol, "three")):
        await send_rest(server, sender, conv, text)
    async with server.client(alice) as http:
        page = (await http.get(f"/api/messages/{conv}")).json()
        assert [(m["seq"], m["content"]) for m in page["items"]] == [(1, "one"), (3, "three")]
        forward = (await http.get(f"/api/messages/{conv}", params={"after": 0, "limit": 1})).json()
        assert [m["seq"] for m in forward["items"]] == [1]
        rest = await http.get(f"/api/messages/{conv}", params={"after": forward["nextCursor"]})
        assert [m["seq"] for m in rest.json()["items"]] == [3]
        assert (await http.delete(f"/api/users/me/blocks/{bob}")).status_code == 204
        again = (await http.get(f"/api/messages/{conv}")).json()
        assert [m["content"] for m in again["items"]] == ["one", "two", "three"]
    async with server.client(carol) as http:
        theirs = (await http.get(f"/api/messages/{conv}")).json()
        assert [m["content"] for m in theirs["items"]] == ["one", "two", "three"]


async def test_the_conversation_list_shows_neither_a_last_message_nor_unread_from_the_blocked(
    server: ServerProcess,
) -> None:
    alice, bob, carol, conv = await group(server)
    await send_rest(server, carol, conv, "from carol")
    await send_rest(server, bob, conv, "from bob")
    await send_rest(server, bob, conv, "bob again")
    async with server.client(alice) as http:
        [item] = (await http.get("/api/messages/conversations")).json()["items"]
    assert item["lastMessage"]["content"] == "from carol"
    assert item["unreadCount"] == 1
    async with server.client(carol) as http:
        [theirs] = (await http.get("/api/messages/conversations")).json()["items"]
    assert (theirs["lastMessage"]["content"], theirs["unreadCount"]) == ("bob again", 2)


async def test_a_block_made_while_subscribed_applies_to_the_open_session_at_once(
    server: ServerProcess,
) -> None:
    await a_block_mid_session(server, server)


async def test_a_user_cannot_block_more_than_the_limit_even_all_at_once(
    make_server: Callable[..., ServerProcess], backend: str
) -> None:
    server = make_server(backend=backend, BLOCKS_MAX_PER_USER="3")
    alice = uid("alice")
    others = [uid("x") for _ in range(12)]
    async with server.client(alice) as http:
        answers = await asyncio.gather(
            *(http.post("/api/users/me/blocks", json={"userId": other}) for other in others)
        )
        assert sorted(r.status_code for r in answers) == [204] * 3 + [409] * 9
        refused = next(r for r in answers if r.status_code == 409)
        assert refused.json()["error"]["code"] == "too_many_blocks"
        blocked = (await http.get("/api/users/me/blocks")).json()["items"]
        assert len(blocked) == 3
        # Blocking someone already blocked is no new block; unblocking makes room.
        assert (
            await http.post("/api/users/me/blocks", json={"userId": blocked[0]})
        ).status_code == 204
        assert (await http.delete(f"/api/users/me/blocks/{blocked[0]}")).status_code == 204
        unblocked_to = next(other for other in others if other not in blocked)
        response = await http.post("/api/users/me/blocks", json={"userId": unblocked_to})
        assert response.status_code == 204, response.text
