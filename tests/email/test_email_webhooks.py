"""SendGrid's signed Event Webhook end to end, and the suppression list it feeds."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from tests.email.support import EmailServer, delivered_ids, sign_webhook
from tests.standins.sendgrid import SendGridStandin

HOOK = "/api/email/webhooks/sendgrid"


def address() -> str:
    return f"ann-{uuid.uuid4().hex[:8]}@example.com"


def event(kind: str, email_id: str, to: str, ts: int, **fields: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "email": to,
        "timestamp": ts,
        "sg_message_id": "abc.filter-1",
        "sg_event_id": uuid.uuid4().hex,  # changes on every SendGrid retry
        "email_id": email_id,
        **fields,
    }


async def post(mail: EmailServer, events: list[dict[str, Any]], **sign: Any) -> httpx.Response:
    raw = json.dumps(events).encode()
    async with httpx.AsyncClient(base_url=mail.proc.url) as anonymous:
        return await anonymous.post(HOOK, content=raw, headers=sign_webhook(raw, **sign))


async def sent_email(mail: EmailServer) -> tuple[str, str]:
    to = address()
    email_id = await mail.accept({"to": to, "subject": "s", "text": "t"})
    await mail.wait_status(email_id, "sent")
    return email_id, to


async def test_a_signed_delivered_event_moves_the_status(mail: EmailServer) -> None:
    email_id, to = await sent_email(mail)

    response = await post(mail, [event("delivered", email_id, to, int(time.time()))])

    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "applied": 1}
    status = await mail.status(email_id)
    assert status["status"] == "delivered"
    assert status["events"][-1]["type"] == "delivered"


async def test_unsigned_badly_signed_and_stale_requests_get_403_and_change_nothing(
    mail: EmailServer,
) -> None:
    email_id, to = await sent_email(mail)
    raw = json.dumps([event("delivered", email_id, to, int(time.time()))]).encode()
    good = sign_webhook(raw)
    tampered = raw.replace(b"delivered", b"bounce")
    async with httpx.AsyncClient(base_url=mail.proc.url) as anonymous:
        unsigned = await anonymous.post(HOOK, content=raw)
        bad = await anonymous.post(HOOK, content=tampered, headers=good)
        stale = await anonymous.post(
            HOOK, content=raw, headers=sign_webhook(raw, timestamp=int(time.time()) - 3600)
        )

    assert [r.status_code for r in (unsigned, bad, stale)] == [403, 403, 403]
    assert (await mail.status(email_id))["status"] == "sent"


async def test_a_repeated_event_is_recorded_once(mail: EmailServer) -> None:
    email_id, to = await sent_email(mail)
    ts = int(time.time())

    first = await post(mail, [event("delivered", email_id, to, ts)])
    again = await post(mail, [event("delivered", email_id, to, ts)] * 3)

    assert first.json()["applied"] == 1
    assert again.json() == {"received": 3, "applied": 0}
    types = [e["type"] for e in (await mail.status(email_id))["events"]]
    assert types.count("delivered") == 1


async def test_a_late_deferred_does_not_undo_delivered(mail: EmailServer) -> None:
    email_id, to = await sent_email(mail)
    ts = int(time.time())

    await post(mail, [event("delivered", email_id, to, ts)])
    await post(mail, [event("deferred", email_id, to, ts - 5)])

    status = await mail.status(email_id)
    assert status["status"] == "delivered"
    assert "deferred" in [e["type"] for e in status["events"]]


async def test_a_hard_bounce_suppresses_later_emails_until_removed(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    email_id, to = await sent_email(mail)
    await post(mail, [event("bounce", email_id, to, int(time.time()), type="bounce")])

    later = await mail.send({"to": to, "subject": "again", "text": "t"})
    async with mail.proc.client("ops", role="admin") as admin:
        listed = (await admin.get("/api/email/suppressions", params={"limit": 500})).json()

    assert (await mail.status(email_id))["status"] == "bounced"
    assert later.status_code == 202
    assert later.json()["status"] == "suppressed"
    assert (await mail.status(later.json()["id"]))["status"] == "suppressed"
    assert to in [item["email"] for item in listed["items"]]
    assert later.json()["id"] not in delivered_ids(sendgrid)

    async with mail.proc.client("ops", role="admin") as admin:
        removed = await admin.delete(f"/api/email/suppressions/{to}")
    after = await mail.accept({"to": to, "subject": "welcome back", "text": "t"})

    assert removed.status_code == 204
    await mail.wait_status(after, "sent")


async def test_a_blocked_bounce_does_not_suppress(mail: EmailServer) -> None:
    email_id, to = await sent_email(mail)
    await post(mail, [event("bounce", email_id, to, int(time.time()), type="blocked")])

    later = await mail.send({"to": to, "subject": "again", "text": "t"})

    assert later.json()["status"] == "queued"
