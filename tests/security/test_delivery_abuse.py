"""Delivery abuse (issue 12): what a user or a service caller could make our sender do.

Each test attacks a real server (our service as a subprocess, the SendGrid stand-in or
the dev provider as the email provider) and fails on the code before the fix.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_ENV
from tests.notifications.conftest import emails_to, person, subject, wait_for_emails
from tests.servers import ServerProcess, conversation, uid
from tests.standins.sendgrid import SendGridStandin

SENDGRID_KEY = "delivery-abuse-standin-key"
UNREAD_DELAY = 1.0

# Fast queues; the send budgets are set per test where they matter.
FAST = {
    **TEST_ENV,
    "NOTIFICATION_RATE_LIMIT_PER_MINUTE": "100000",
    "NOTIFICATION_BATCH_TIMEOUT": "0.05",
    "EMAIL_BATCH_TIMEOUT": "0.05",
    "UNREAD_EMAIL_DELAY": str(UNREAD_DELAY),
    "EMAIL_RATE_LIMIT_PER_MINUTE": "0",
    "EMAIL_RATE_LIMIT_PER_HOUR": "0",
    "EMAIL_BULK_RATE_LIMIT_PER_MINUTE": "0",
    "EMAIL_BULK_RATE_LIMIT_PER_HOUR": "0",
}


@pytest.fixture(scope="module")
def standin() -> Iterator[SendGridStandin]:
    with SendGridStandin(api_key=SENDGRID_KEY) as running:
        yield running


def _start(folder: Path, env: dict[str, str]) -> ServerProcess:
    proc = ServerProcess(folder, env)
    proc.start()
    return proc


@pytest.fixture(scope="module")
def mailer(
    tmp_path_factory: pytest.TempPathFactory, standin: SendGridStandin
) -> Iterator[ServerProcess]:
    """Our server sending through the SendGrid stand-in."""
    env = {**FAST, "SENDGRID_API_KEY": SENDGRID_KEY, "SENDGRID_API_URL": standin.url}
    proc = _start(tmp_path_factory.mktemp("mailer"), env)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def devbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Our server as it starts with ENVIRONMENT unset: development, the dev provider."""
    env = {k: v for k, v in FAST.items() if k != "ENVIRONMENT"}
    proc = _start(tmp_path_factory.mktemp("devbox"), env)
    yield proc
    proc.stop()


async def _say(server: ServerProcess, sender: str, conversation_id: str, text: str) -> None:
    async with server.client(sender) as http:
        response = await http.post(
            "/api/messages/send", json={"conversationId": conversation_id, "content": text}
        )
        assert response.status_code == 201, response.text


async def _dev_email(server: ServerProcess, email_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    async with server.client("ops", "service") as http:
        while True:
            items = (await http.get("/dev/emails")).json()["items"]
            found = [item for item in items if item["id"] == email_id]
            if found or time.monotonic() > deadline:
                assert found, f"email {email_id} never reached the dev provider"
                item: dict[str, Any] = found[0]
                return item
            await asyncio.sleep(0.05)


# ---- item 3: the service as a phishing relay ---------------------------------------


async def test_a_strangers_message_is_not_quoted_in_the_unread_email(
    mailer: ServerProcess, standin: SendGridStandin
) -> None:
    mallory = await person(mailer, "mallory")
    victims = [await person(mailer, "victim") for _ in range(3)]
    chat = await conversation(mailer, mallory, *victims, title="Pitchey Security Team")
    await _say(mailer, mallory, chat, "Verify at https://evil.example/login")

    for victim in victims:
        [email] = await wait_for_emails(standin, f"{victim}@example.com", timeout=UNREAD_DELAY * 10)
        body = repr(email)
        assert "evil.example" not in body
        assert "Pitchey Security Team" not in body
        assert subject(email) == f"New messages from {mallory.title()}"
        assert "1 unread message" in body


async def test_a_flood_of_bulk_emails_does_not_delay_a_critical_email(
    tmp_path: Path, standin: SendGridStandin
) -> None:
    budget = {"EMAIL_RATE_LIMIT_PER_MINUTE": "5", "EMAIL_BULK_RATE_LIMIT_PER_MINUTE": "5"}
    env = {**FAST, **budget, "SENDGRID_API_KEY": SENDGRID_KEY, "SENDGRID_API_URL": standin.url}
    server = _start(tmp_path / "lanes", env)
    try:
        owner = await person(server, "owner")
        readers = [f"{uid('reader')}@example.com" for _ in range(30)]
        categories = ("unread_messages", "digest_daily")
        flood = [
            {"to": to, "subject": "Your digest", "text": "n", "categories": [categories[i % 2]]}
            for i, to in enumerate(readers)
        ]
        async with server.client("platform", "service") as http:
            accepted = await http.post("/api/email/batch", json={"emails": flood})
            assert accepted.status_code == 202, accepted.text
            # Wait until the flood has spent this minute's budget; the rest wait in the queue.
            deadline = time.monotonic() + 10
            while sum(bool(emails_to(standin, to)) for to in readers) < 5:
                assert time.monotonic() < deadline, "the flood never started"
                await asyncio.sleep(0.05)
            response = await http.post(
                "/api/notifications/nda/request",
                json={
                    "pitchId": "p",
                    "pitchTitle": "Night Owl",
                    "requesterId": "r",
                    "ownerId": owner,
                },
            )
            assert response.status_code == 202, response.text
        # Before the fix it waited for the next minute's budget, behind the flood.
        found = await wait_for_emails(standin, f"{owner}@example.com", timeout=15)
        assert found, "the NDA email waited behind the bulk emails"
    finally:
        server.stop()


# ---- item 8: /dev/emails -------------------------------------------------------------


async def test_dev_emails_needs_a_service_or_admin_token_when_environment_is_unset(
    devbox: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=devbox.url) as anyone:
        assert (await anyone.get("/dev/emails")).status_code == 401
    async with devbox.client(uid("user")) as user:
        assert (await user.get("/dev/emails")).status_code == 403
    for role in ("service", "admin"):
        async with devbox.client(uid(role), role) as trusted:
            assert (await trusted.get("/dev/emails")).status_code == 200


# ---- item 11: preferences for unknown types -----------------------------------------


async def test_preferences_refuse_types_that_do_not_exist(mailer: ServerProcess) -> None:
    async with mailer.client(uid("hoarder")) as http:
        one = await http.put(
            "/api/notifications/preferences", json={"types": {"no_such_type": {"email": False}}}
        )
        flood = {f"t{index}": {"email": False} for index in range(20_000)}
        many = await http.put("/api/notifications/preferences", json={"types": flood})
        after = await http.get("/api/notifications/preferences")

    assert one.status_code == 422 and one.json()["error"]["code"] == "validation_error"
    assert many.status_code == 422
    assert "no_such_type" not in after.json()["types"] and len(after.content) < 4096


# ---- item 13: header injection -------------------------------------------------------

LINE_BREAKS = ["\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKS])
async def test_every_line_break_is_refused_in_subject_display_name_and_header_value(
    devbox: ServerProcess, brk: str
) -> None:
    base = {"to": "ann@example.com", "subject": "Hello", "text": "t"}
    bodies = [
        {**base, "subject": f"Hello{brk}Bcc: all@example.com"},
        {**base, "to": f"Ann{brk}Bcc: all@example.com <ann@example.com>"},
        {**base, "replyTo": f"Ann{brk}X: y <ann@example.com>"},
        {**base, "headers": {"X-Campaign": f"a{brk}Bcc: all@example.com"}},
    ]
    async with devbox.client("platform", "service") as http:
        for body in bodies:
            response = await http.post("/api/email/send", json=body)
            assert response.status_code == 422, (body, response.text)


@pytest.mark.parametrize("name", ["Return-Path", "Resent-From", "resent-to", "Resent-Message-Id"])
async def test_return_path_and_resent_headers_are_reserved(
    devbox: ServerProcess, name: str
) -> None:
    body = {"to": "ann@example.com", "subject": "Hi", "text": "t", "headers": {name: "x@evil.test"}}
    async with devbox.client("platform", "service") as http:
        response = await http.post("/api/email/send", json=body)

    assert response.status_code == 422, response.text


# ---- item 14: email status across callers ---------------------------------------------


async def test_a_service_caller_sees_only_the_status_of_its_own_emails(
    devbox: ServerProcess,
) -> None:
    async with devbox.client("billing", "service") as billing:
        sent = await billing.post(
            "/api/email/send", json={"to": "ann@example.com", "subject": "Invoice", "text": "t"}
        )
        email_id = sent.json()["id"]
        own = await billing.get(f"/api/email/{email_id}/status")
    async with devbox.client("marketing", "service") as marketing:
        other = await marketing.get(f"/api/email/{email_id}/status")
    async with devbox.client("root", "admin") as admin:
        audit = await admin.get(f"/api/email/{email_id}/status")

    assert own.status_code == 200
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert audit.status_code == 200


async def test_only_an_admin_may_read_or_change_the_shared_suppression_list(
    devbox: ServerProcess,
) -> None:
    async with devbox.client("marketing", "service") as marketing:
        listed = await marketing.get("/api/email/suppressions")
        removed = await marketing.delete("/api/email/suppressions/ann@example.com")
    async with devbox.client("root", "admin") as admin:
        audit = await admin.get("/api/email/suppressions")

    assert [listed.status_code, removed.status_code] == [403, 403]
    assert audit.status_code == 200


# ---- item 15: hrefs --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
    ],
)
async def test_only_http_links_reach_an_href_in_an_email(devbox: ServerProcess, url: str) -> None:
    data = {"name": "Ann", "title": "Update", "message": "See", "url": url}
    async with devbox.client("platform", "service") as http:
        sent = await http.post(
            "/api/email/send",
            json={"to": "ann@example.com", "template": "notification", "data": data},
        )
        assert sent.status_code == 202, sent.text

    email = await _dev_email(devbox, sent.json()["id"])

    hrefs = [part.split('"', 2)[1] for part in email["html"].split("href=")[1:]]
    assert hrefs and all(h.startswith(("http://", "https://")) for h in hrefs), hrefs
    assert "Open Pitchey" in email["html"]  # the link's text stays, as text


async def test_http_links_still_reach_the_href(devbox: ServerProcess) -> None:
    data = {
        "name": "Ann",
        "title": "Update",
        "message": "See",
        "url": "https://pitchey.com/p/1",
    }
    async with devbox.client("platform", "service") as http:
        sent = await http.post(
            "/api/email/send",
            json={"to": "ann@example.com", "template": "notification", "data": data},
        )

    email = await _dev_email(devbox, sent.json()["id"])

    assert 'href="https://pitchey.com/p/1"' in email["html"]
