"""Free-form JSON is bounded at decode time, deep JSON anywhere is refused cleanly, and a
row stored before the bounds existed cannot break a list (issue 12, finding 1)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from tests.servers import ServerProcess, uid, ws_client


def nested(levels: int) -> Any:
    """A JSON object nested `levels` deep, counting the object itself: {"k": {"k": ... 1}}."""
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


def deep_array_text(levels: int) -> str:
    return "[" * levels + "]" * levels


async def test_conversation_metadata_deeper_than_the_limit_is_refused_naming_the_field(
    server: ServerProcess,
) -> None:
    async with server.client(uid()) as http:
        answer = await http.post(
            "/api/messages/conversations",
            json={"participantIds": [uid()], "metadata": nested(9)},
        )
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "validation_error" and "metadata" in error["message"]


async def test_conversation_metadata_at_the_depth_limit_is_accepted(server: ServerProcess) -> None:
    async with server.client(uid()) as http:
        answer = await http.post(
            "/api/messages/conversations",
            json={"participantIds": [uid()], "title": "deep", "metadata": nested(8)},
        )
    assert answer.status_code == 201
    assert answer.json()["metadata"] == nested(8)


async def test_conversation_metadata_larger_than_the_limit_is_refused(
    server: ServerProcess,
) -> None:
    async with server.client(uid()) as http:
        answer = await http.post(
            "/api/messages/conversations",
            json={"participantIds": [uid()], "metadata": {"blob": "x" * 17_000}},
        )
    assert answer.status_code == 422
    assert "metadata" in answer.json()["error"]["message"]


async def test_a_refused_conversation_leaves_the_list_working(server: ServerProcess) -> None:
    me = uid()
    async with server.client(me) as http:
        refused = await http.post(
            "/api/messages/conversations",
            content=b'{"participantIds": ["%s"], "metadata": {"m": %s}}'
            % (uid().encode(), deep_array_text(970).encode()),
            headers={"content-type": "application/json"},
        )
        listed = await http.get("/api/messages/conversations")
    assert refused.status_code == 422
    assert listed.status_code == 200 and listed.json()["items"] == []


async def test_notification_data_deeper_than_the_limit_is_refused_naming_the_field(
    server: ServerProcess,
) -> None:
    async with server.client("svc", role="service") as http:
        answer = await http.post(
            "/api/notifications/send",
            json={
                "userId": uid(),
                "type": "system",
                "title": "t",
                "message": "m",
                "data": nested(9),
            },
        )
    assert answer.status_code == 422
    assert "data" in answer.json()["error"]["message"]


async def test_email_template_data_deeper_than_the_limit_is_refused_naming_the_field(
    server: ServerProcess,
) -> None:
    async with server.client("svc", role="service") as http:
        answer = await http.post(
            "/api/email/send",
            json={"to": "a@example.com", "template": "welcome", "data": nested(9)},
        )
    assert answer.status_code == 422
    assert "data" in answer.json()["error"]["message"]


async def test_batch_email_template_data_deeper_than_the_limit_is_refused_naming_the_item(
    server: ServerProcess,
) -> None:
    ok = {"to": "a@example.com", "subject": "s", "text": "t"}
    bad = {"to": "b@example.com", "template": "welcome", "data": nested(9)}
    async with server.client("svc", role="service") as http:
        answer = await http.post("/api/email/batch", json={"emails": [ok, bad]})
    assert answer.status_code == 422
    assert "emails[1]" in answer.json()["error"]["message"]


async def test_json_body_nested_five_thousand_levels_gets_422(server: ServerProcess) -> None:
    async with server.client(uid()) as http:
        answer = await http.post(
            "/api/messages/conversations",
            # In a field the route ignores: the decoder still reads through it.
            content=b'{"ignored": %s, "participantIds": ["%s"]}'
            % (deep_array_text(5000).encode(), uid().encode()),
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "validation_error"


async def test_email_body_nested_five_thousand_levels_gets_422(server: ServerProcess) -> None:
    async with server.client("svc", role="service") as http:
        answer = await http.post(
            "/api/email/send",
            content=b'{"to": "a@example.com", "data": {"x": %s}}' % deep_array_text(5000).encode(),
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 422


async def test_frame_nested_five_thousand_levels_gets_error_frame_and_socket_stays(
    server: ServerProcess,
) -> None:
    async with ws_client(server, uid()) as client:
        # Before the tag: the decoder has to read past the nesting to find the frame's type.
        await client.send('{"x": ' + deep_array_text(5000) + ', "type": "ping"}')
        error = await client.recv()
        assert error["type"] == "error" and error["code"] == "invalid_json"
        await client.send({"type": "ping"})
        assert (await client.recv())["type"] == "pong"


async def test_conversation_with_poisoned_stored_metadata_is_listed_with_null_metadata(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server()
    me, other = uid(), uid()
    async with server.client(me) as http:
        created = await http.post(
            "/api/messages/conversations",
            json={"participantIds": [other], "title": "poisoned", "metadata": {"a": 1}},
        )
        assert created.status_code == 201
        conversation_id = created.json()["id"]
        # A row written before the bounds existed: nested far past any recursion limit.
        poison = '{"m": ' + deep_array_text(5000) + "}"
        with sqlite3.connect(server.data_dir / "pitchey.db") as db:
            db.execute(
                "UPDATE conversations SET metadata = ? WHERE id = ?", (poison, conversation_id)
            )
        listed = await http.get("/api/messages/conversations", params={"limit": 50})
    async with server.client(other) as http:
        theirs = await http.get("/api/messages/conversations")
    for answer in (listed, theirs):
        assert answer.status_code == 200, answer.text
        [item] = answer.json()["items"]
        assert item["id"] == conversation_id and item.get("metadata") is None
    assert server.log_tail(100_000).count("unreadable metadata") == 1
