"""A user with something in every store, and helpers to export and erase them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.email.support import eventually
from tests.servers import ServerProcess, conversation, uid

SECTIONS = (
    "profile",
    "conversations",
    "readPositions",
    "messages",
    "blocks",
    "notifications",
    "preferences",
    "emails",
)


@dataclass
class Person:
    user_id: str
    address: str
    friend: str
    conversation_id: str
    message_id: str
    notification_id: str


async def person_with_everything(server: ServerProcess) -> Person:
    """A user in the directory, in a conversation where they wrote and read, who blocked
    someone, set a preference and received a notification whose email went out."""
    user, friend, pest = uid("ann"), uid("bob"), uid("pest")
    address = f"{user}@example.com"
    async with server.client("platform", "service") as platform:
        response = await platform.put(
            f"/api/users/{user}", json={"email": address, "name": "Ann Erased", "timezone": "UTC"}
        )
        assert response.status_code == 200, response.text
    conv = await conversation(server, user, friend)
    async with server.client(user) as http:
        sent = await http.post(
            "/api/messages/send", json={"conversationId": conv, "content": "my secret pitch"}
        )
        assert sent.status_code == 201, sent.text
        assert (await http.post(f"/api/messages/{sent.json()['id']}/read")).status_code == 200
        assert (await http.post("/api/users/me/blocks", json={"userId": pest})).status_code == 204
        prefs = await http.put(
            "/api/notifications/preferences",
            json={"types": {"production_update": {"email": False}}},
        )
        assert prefs.status_code == 200, prefs.text
    async with server.client("platform", "service") as platform:
        notified = await platform.post(
            "/api/notifications/send",
            json={
                "userId": user,
                "type": "nda_request",
                "title": "NDA for Ann",
                "message": "Someone wants your NDA",
                "channels": ["in-app", "email"],
            },
        )
        assert notified.status_code == 202, notified.text
    [notification_id] = notified.json()["ids"]

    async def email_sent() -> bool:
        exported = await export(server, user)
        return any(e["status"] in ("sent", "delivered") for e in exported["emails"])

    await eventually(email_sent, 10.0, "the notification's email to be sent")
    return Person(user, address, friend, conv, sent.json()["id"], notification_id)


async def export(server: ServerProcess, user_id: str) -> dict[str, Any]:
    async with server.client("platform", "service") as platform:
        response = await platform.get(f"/api/users/{user_id}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


async def erase(server: ServerProcess, user_id: str) -> dict[str, Any]:
    async with server.client("platform", "service") as platform:
        response = await platform.delete(f"/api/users/{user_id}")
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def erased(server: ServerProcess, user_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The export once every section is empty."""

    async def probe() -> dict[str, Any] | None:
        found = await export(server, user_id)
        return found if not any(found[s] for s in SECTIONS) else None

    return await eventually(probe, timeout, f"{user_id}'s export to be empty")
