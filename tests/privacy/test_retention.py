"""MESSAGE_RETENTION_DAYS: older messages are erased by a background sweep, on SQLite and
PostgreSQL. The retention here is two seconds (a fraction of a day), swept every 0.2 s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.email.support import eventually
from tests.servers import ServerProcess, conversation, uid, ws_client

RETENTION_SECONDS = 2.0
RETENTION = {
    "MESSAGE_RETENTION_DAYS": str(RETENTION_SECONDS / 86_400),
    "MESSAGE_RETENTION_SWEEP_INTERVAL": "0.2",
}
MakeServer = Callable[..., ServerProcess]
pytestmark = pytest.mark.parametrize("db", ["sqlite", "postgres"])


async def send(http: httpx.AsyncClient, conv: str, content: str) -> dict[str, Any]:
    response = await http.post(
        "/api/messages/send", json={"conversationId": conv, "content": content}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def swept(http: httpx.AsyncClient, conv: str, message_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        items = (await http.get(f"/api/messages/{conv}")).json()["items"]
        found = next(m for m in items if m["id"] == message_id)
        return found if found.get("deleted") else None

    return await eventually(probe, RETENTION_SECONDS + 5, f"{message_id} to be swept")


async def test_a_message_older_than_the_retention_is_erased(
    make_server: MakeServer, db: str
) -> None:
    server = make_server(backend=db, **RETENTION)
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        old = await send(http, conv, "expires soon")
        shown = await swept(http, conv, old["id"])
        fresh = await send(http, conv, "just sent")
        items = (await http.get(f"/api/messages/{conv}")).json()["items"]

    assert (shown["content"], shown["deleted"]) == ("", True)
    assert [(m["id"], m.get("deleted")) for m in items][-1] == (fresh["id"], None)


async def test_the_sweep_sends_no_event_per_erased_message(
    make_server: MakeServer, db: str
) -> None:
    server = make_server(backend=db, **RETENTION)
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, bob) as b, server.client(alice) as http:
        await b.subscribe(conv)
        old = await send(http, conv, "expires soon")
        await b.expect("message")
        await swept(http, conv, old["id"])
        after = await send(http, conv, "after the sweep")
        frame = await b.recv()

    assert frame["type"] == "message" and frame["message"]["id"] == after["id"]


async def test_a_subscribe_from_before_the_swept_messages_is_not_recovered(
    make_server: MakeServer, db: str
) -> None:
    server = make_server(backend=db, **RETENTION)
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        old = await send(http, conv, "expires soon")
        await swept(http, conv, old["id"])
        latest = await send(http, conv, "kept")
    async with ws_client(server, bob) as b:
        stale = await b.subscribe(conv, since=0)
    async with ws_client(server, bob) as b:
        current = await b.subscribe(conv, since=old["seq"])
        replayed = await b.expect("message")

    assert (stale["recovered"], stale["replayed"]) == (False, 0)
    assert (current["recovered"], current["replayed"]) == (True, 1)
    assert replayed["message"]["id"] == latest["id"]
