"""Unread-message emails when edits and deletions take seqs between messages."""

from __future__ import annotations

import asyncio

from tests.notifications.conftest import UNREAD_DELAY, emails_to, person, wait_for_emails
from tests.servers import ServerProcess, conversation
from tests.standins.sendgrid import SendGridStandin


async def test_a_message_after_an_edit_is_still_emailed_as_unread(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    alice, bob = await person(server, "alice"), await person(server, "bob")
    chat = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        first = (
            await http.post("/api/messages/send", json={"conversationId": chat, "content": "one"})
        ).json()
    async with server.client(bob) as http:
        assert (await http.post(f"/api/messages/{first['id']}/read")).status_code == 200
    async with server.client(alice) as http:
        await http.patch(f"/api/messages/{first['id']}", json={"content": "one, edited"})
        await http.post("/api/messages/send", json={"conversationId": chat, "content": "two"})
    [email] = await wait_for_emails(standin, f"{bob}@example.com", timeout=UNREAD_DELAY * 8)
    assert "1 unread message" in repr(email)


async def test_a_deleted_message_alone_sends_no_unread_email(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    alice, bob = await person(server, "alice"), await person(server, "bob")
    chat = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        sent = (
            await http.post("/api/messages/send", json={"conversationId": chat, "content": "oops"})
        ).json()
        await http.delete(f"/api/messages/{sent['id']}")
    await asyncio.sleep(UNREAD_DELAY * 4)
    assert emails_to(standin, f"{bob}@example.com") == []
