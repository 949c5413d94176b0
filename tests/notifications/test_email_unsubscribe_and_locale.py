"""Notification emails: one-click unsubscribe turns the type off for the recipient,
critical ones carry no link, and a recipient's locale picks localized templates."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.notifications.conftest import person, request_nda, subject, wait_for_emails, wait_status
from tests.servers import ServerProcess
from tests.standins.sendgrid import SendGridStandin


async def notify(server: ServerProcess, user: str, kind: str = "system") -> str:
    body = {"userId": user, "type": kind, "title": "Festival news", "message": "Line-up is out"}
    async with server.client("platform", "service") as http:
        response = await http.post("/api/notifications/send", json=body)
        assert response.status_code == 202, response.text
    notification_id: str = response.json()["ids"][0]
    return notification_id


def token_of(message: dict[str, Any]) -> str:
    match = re.fullmatch(r"<(https?://[^>]+)>", message["headers"]["List-Unsubscribe"])
    assert match
    return parse_qs(urlsplit(match[1]).query)["token"][0]


async def test_one_click_unsubscribe_turns_that_types_email_off_for_the_recipient(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    user = await person(server, "unsub")
    await notify(server, user)
    [email] = await wait_for_emails(standin, f"{user}@example.com")
    assert email["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = token_of(email)

    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        first = await anonymous.post("/api/email/unsubscribe", params={"token": token})
        replay = await anonymous.post("/api/email/unsubscribe", params={"token": token})
    assert (first.status_code, replay.status_code) == (200, 200)

    async with server.client(user) as http:
        prefs = (await http.get("/api/notifications/preferences")).json()
        assert prefs["types"]["system"]["email"] is False
        assert prefs["types"]["production_update"]["email"] is True
        later = await notify(server, user)
        item = await wait_status(http, later, "skipped_preference")
    assert item["emailStatus"] == "skipped_preference"


async def test_a_critical_notification_email_carries_no_unsubscribe_link(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    owner, requester = await person(server, "owner"), await person(server, "req")
    await request_nda(server, owner, requester, "Night")

    [email] = await wait_for_emails(standin, f"{owner}@example.com")

    assert "List-Unsubscribe" not in email.get("headers", {})
    html = next(c["value"] for c in email["content"] if c["type"] == "text/html")
    assert "Unsubscribe" not in html


async def test_the_recipients_locale_picks_the_localized_template(
    make_server: Callable[..., ServerProcess], standin: SendGridStandin, tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "notification.fr.subject.j2").write_text("Nouveau : {{ title }}")
    (folder / "notification.fr.txt.j2").write_text("Bonjour {{ name }}, {{ message }}")
    server = make_server(EMAIL_TEMPLATE_DIR=str(folder))
    french, plain = await person(server, "fr"), await person(server, "en")
    async with server.client("platform", "service") as http:
        response = await http.put(f"/api/users/{french}", json={"locale": "fr-FR"})
        assert response.status_code == 200, response.text

    await notify(server, french)
    await notify(server, plain)
    [to_french] = await wait_for_emails(standin, f"{french}@example.com")
    [to_plain] = await wait_for_emails(standin, f"{plain}@example.com")

    assert subject(to_french) == "Nouveau : Festival news"
    text = next(c["value"] for c in to_french["content"] if c["type"] == "text/plain")
    assert text.startswith("Bonjour " + french.title())
    # No French HTML part: that part falls back to the plain template.
    html = next(c["value"] for c in to_french["content"] if c["type"] == "text/html")
    assert "Line-up is out" in html
    assert subject(to_plain) == "Festival news"
