"""Unread-message emails, digests across a restart, and the per-user rate limit's fold."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.notifications.conftest import (
    UNREAD_DELAY,
    emails_to,
    person,
    subject,
    wait_for_emails,
    wait_status,
)
from tests.servers import ServerProcess, conversation
from tests.standins.sendgrid import SendGridStandin

DAY_MS = 86_400_000


async def _say(server: ServerProcess, sender: str, conversation_id: str, text: str) -> str:
    async with server.client(sender) as http:
        response = await http.post(
            "/api/messages/send", json={"conversationId": conversation_id, "content": text}
        )
        assert response.status_code == 201, response.text
        message_id: str = response.json()["id"]
        return message_id


async def test_unread_messages_are_emailed_once(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    alice, bob = await person(server, "alice"), await person(server, "bob")
    chat = await conversation(server, alice, bob)
    await _say(server, alice, chat, "Did you read the treatment?")
    await _say(server, alice, chat, "Call me back")
    [email] = await wait_for_emails(standin, f"{bob}@example.com", timeout=UNREAD_DELAY * 8)
    assert subject(email) == f"New messages from {alice.title()}"
    assert "2 unread messages" in repr(email)
    # Later scans find nothing new: still one email, and none to the sender.
    await asyncio.sleep(UNREAD_DELAY * 3)
    assert len(emails_to(standin, f"{bob}@example.com")) == 1
    assert emails_to(standin, f"{alice}@example.com") == []


async def test_unread_messages_are_quoted_where_the_recipient_has_written(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    erin, frank = await person(server, "erin"), await person(server, "frank")
    chat = await conversation(server, erin, frank, title="Night Owl financing")
    await _say(server, frank, chat, "Happy to talk numbers")
    async with server.client(erin) as http:
        await http.post(f"/api/messages/{await _say(server, erin, chat, 'Sent the deck')}/read")
    [email] = await wait_for_emails(standin, f"{frank}@example.com", timeout=UNREAD_DELAY * 8)
    assert "Sent the deck" in repr(email) and "Night Owl financing" in repr(email)
    assert subject(email) == f"New messages from {erin.title()}"


async def test_a_message_read_in_time_is_not_emailed(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    carol, dave = await person(server, "carol"), await person(server, "dave")
    chat = await conversation(server, carol, dave)
    message_id = await _say(server, carol, chat, "Quick question")
    async with server.client(dave) as http:
        assert (await http.post(f"/api/messages/{message_id}/read")).status_code == 200
    await asyncio.sleep(UNREAD_DELAY * 4)
    assert emails_to(standin, f"{dave}@example.com") == []


def _backdate(db: Path, user_id: str, days: int) -> None:
    with sqlite3.connect(db, timeout=10) as conn:
        conn.execute(
            "UPDATE notifications SET created_at = created_at - ? WHERE user_id = ?",
            (days * DAY_MS, user_id),
        )


async def _production(server: ServerProcess, user_id: str, stage: str) -> str:
    async with server.client("platform", "service") as http:
        response = await http.post(
            "/api/notifications/production",
            json={
                "productionId": "pr",
                "pitchId": "p",
                "pitchTitle": "Harbor",
                "stage": stage,
                "teamIds": [user_id],
            },
        )
    notification_id: str = response.json()["ids"][0]
    return notification_id


async def test_a_digest_window_is_sent_once_even_across_a_restart(
    make_server: Callable[..., ServerProcess], standin: SendGridStandin, tmp_path: Path
) -> None:
    data = tmp_path / "digest"
    first = make_server(data_dir=data)
    user = await person(first, "digest")
    # Waiting since two days ago: it belongs to a window that has closed.
    done = await _production(first, user, "editing")
    _backdate(data / "pitchey.db", user, 2)
    [email] = await wait_for_emails(standin, f"{user}@example.com")
    assert "digest" in subject(email).lower()
    async with first.client(user) as http:
        assert (await wait_status(http, done, "digested"))["emailStatus"] == "digested"
    first.stop()

    second = make_server(data_dir=data, secret=first.secret)
    # Another notification lands in the same, already sent window (a late event or a
    # clock edge): it must wait for the next window, not send the same period twice.
    late = await _production(second, user, "color")
    with sqlite3.connect(data / "pitchey.db", timeout=10) as conn:
        conn.execute(
            "UPDATE notifications SET created_at = created_at - ? WHERE id = ?", (2 * DAY_MS, late)
        )
    await asyncio.sleep(UNREAD_DELAY * 3)
    assert len(emails_to(standin, f"{user}@example.com")) == 1
    async with second.client(user) as http:
        items = (await http.get("/api/notifications")).json()["items"]
    statuses = {i["id"]: i["emailStatus"] for i in items}
    assert statuses == {done: "digested", late: "digest_daily"}
    with sqlite3.connect(data / "pitchey.db") as conn:
        rows = conn.execute(
            "SELECT period, notification_count FROM notification_digests WHERE user_id = ?", (user,)
        ).fetchall()
    assert rows == [("daily", 1)]


async def test_over_the_rate_limit_in_app_records_and_email_folds(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(NOTIFICATION_RATE_LIMIT_PER_MINUTE="3")
    user = await person(server, "busy")
    limited: list[list[str]] = []
    ids: list[str] = []
    async with server.client("platform", "service") as http:
        for index in range(5):
            response = await http.post(
                "/api/notifications/send",
                json={"userId": user, "type": "system", "title": f"t{index}", "message": "m"},
            )
            assert response.status_code == 202
            ids += response.json()["ids"]
            limited.append(response.json()["rateLimited"])
    assert limited == [[], [], [], [user], [user]]
    async with server.client(user) as http:
        page = (await http.get("/api/notifications")).json()
    assert page["unreadCount"] == 5
    statuses = {i["id"]: i["emailStatus"] for i in page["items"]}
    assert [statuses[i] for i in ids[3:]] == ["folded", "folded"]
    # Within the limit, emails leave one by one as usual.
    async with server.client(user) as http:
        for notification_id in ids[:3]:
            assert (await wait_status(http, notification_id, "sent"))["emailStatus"] == "sent"
