"""Webhooks out, end to end: a real receiver checks every request with `standardwebhooks`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.email.support import eventually, sign_webhook
from tests.servers import conversation as new_conversation
from tests.webhooks_out.support import Hooked

MakeHooked = Callable[..., Any]


def verify(secret: str, received: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_a_failing_receiver_gets_the_same_webhook_id_until_it_answers_2xx(
    make_hooked: MakeHooked, db: str
) -> None:
    hooked: Hooked = await make_hooked(backend=db)
    endpoint = await hooked.endpoint(["email.sent"])
    hooked.receiver.answer(500, 500)

    sent = await hooked.admin.post(f"/api/webhooks/{endpoint['id']}/test")
    got = await hooked.wait_for(3)
    await eventually(lambda: _attempts(hooked, endpoint["id"], 3), what="three recorded attempts")
    attempts = (await hooked.admin.get(f"/api/webhooks/{endpoint['id']}/deliveries")).json()

    assert sent.status_code == 202
    message_id = sent.json()["messageId"]
    assert [r.headers["webhook-id"] for r in got] == [message_id] * 3
    assert [r.status for r in got] == [500, 500, 200]
    for received in got:
        assert verify(endpoint["secret"], received)["type"] == "webhook.test"
    assert [(a["attempt"], a["ok"], a["responseCode"]) for a in attempts["items"]] == [
        (3, True, 200),
        (2, False, 500),
        (1, False, 500),
    ]
    await _settle(hooked, 3)


async def _attempts(hooked: Hooked, endpoint_id: str, count: int) -> bool:
    listed = (await hooked.admin.get(f"/api/webhooks/{endpoint_id}/deliveries")).json()
    return len(listed["items"]) >= count


async def _settle(hooked: Hooked, count: int) -> None:
    """Nothing more arrives once the receiver answered 2xx (no doubled delivery)."""
    await asyncio.sleep(0.3)
    assert len(hooked.receiver.received()) == count


async def test_a_sendgrid_delivered_event_reaches_the_receiver_as_email_delivered(
    make_hooked: MakeHooked,
) -> None:
    hooked: Hooked = await make_hooked()
    endpoint = await hooked.endpoint(["email.delivered"])
    async with hooked.proc.client("mailer", role="service") as mailer:
        to = f"ann-{uuid.uuid4().hex[:8]}@example.com"
        accepted = await mailer.post(
            "/api/email/send", json={"to": to, "subject": "s", "text": "t"}
        )
        email_id = accepted.json()["id"]

        async def sent() -> bool:
            status = (await mailer.get(f"/api/email/{email_id}/status")).json()
            return bool(status["status"] == "sent")

        await eventually(sent, what="the email to be sent")
    event = {
        "event": "delivered",
        "email": to,
        "timestamp": int(time.time()),
        "sg_message_id": "abc.filter-1",
        "sg_event_id": uuid.uuid4().hex,
        "email_id": email_id,
    }
    raw = json.dumps([event]).encode()
    async with httpx.AsyncClient(base_url=hooked.proc.url) as anonymous:
        posted = await anonymous.post(
            "/api/email/webhooks/sendgrid", content=raw, headers=sign_webhook(raw)
        )

    got = await hooked.wait_for(1, "email.delivered")
    payload = verify(endpoint["secret"], got[0])
    assert posted.status_code == 200
    assert payload["data"]["emailId"] == email_id
    assert payload["data"]["provider"] == "sendgrid"
    # Only subscribed types arrive: email.sent happened too but was not asked for.
    assert [r.json()["type"] for r in hooked.receiver.received()] == ["email.delivered"]
    assert to not in got[0].body.decode()


async def test_after_a_rotation_both_the_new_and_the_old_secret_verify(
    make_hooked: MakeHooked,
) -> None:
    hooked: Hooked = await make_hooked()
    endpoint = await hooked.endpoint(["email.sent"])

    rotated = await hooked.admin.post(f"/api/webhooks/{endpoint['id']}/rotate-secret")
    await hooked.admin.post(f"/api/webhooks/{endpoint['id']}/test")
    got = (await hooked.wait_for(1))[0]

    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != endpoint["secret"]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verify(new_secret, got)["type"] == "webhook.test"
    assert verify(endpoint["secret"], got)["type"] == "webhook.test"


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_message_created_carries_ids_and_seq_but_no_content(
    make_hooked: MakeHooked, db: str
) -> None:
    hooked: Hooked = await make_hooked(backend=db)
    endpoint = await hooked.endpoint(["message.created"])
    conversation_id = await new_conversation(hooked.proc, "ann", "bob")
    async with hooked.proc.client("ann") as ann:
        sent = await ann.post(
            "/api/messages/send",
            json={"conversationId": conversation_id, "content": "secret plan"},
        )

    got = (await hooked.wait_for(1, "message.created"))[0]
    data = verify(endpoint["secret"], got)["data"]

    assert sent.status_code in (200, 201), sent.text
    assert data["messageId"] == sent.json()["id"]
    assert data["conversationId"] == conversation_id
    assert data["senderId"] == "ann" and data["seq"] == 1
    assert b"secret plan" not in got.body


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_notifications_created_and_read_are_sent(make_hooked: MakeHooked, db: str) -> None:
    hooked: Hooked = await make_hooked(backend=db)
    await hooked.endpoint(["notification.created", "notification.read"])
    async with hooked.proc.client("platform", role="service") as service:
        sent = await service.post(
            "/api/notifications/send",
            json={"userId": "ann", "type": "system", "title": "t", "message": "m"},
        )
    notification_id = sent.json()["ids"][0]
    async with hooked.proc.client("ann") as ann:
        read = await ann.post(f"/api/notifications/{notification_id}/read")

    created = (await hooked.wait_for(1, "notification.created"))[0].json()["data"]
    was_read = (await hooked.wait_for(1, "notification.read"))[0].json()["data"]

    assert read.status_code in (200, 204), read.text
    assert created["notificationId"] == notification_id and created["userId"] == "ann"
    assert was_read == {"notificationId": notification_id, "userId": "ann"}


@pytest.mark.parametrize("role", ["user", "service"])
async def test_only_admins_manage_webhooks(make_hooked: MakeHooked, role: str) -> None:
    hooked: Hooked = await make_hooked()
    async with hooked.proc.client("someone", role=role) as other:
        created = await other.post(
            "/api/webhooks", json={"url": hooked.receiver.url(), "events": ["email.sent"]}
        )
        listed = await other.get("/api/webhooks")

    assert created.status_code == 403
    assert listed.status_code == 403
    assert created.json()["error"]["code"]


async def test_an_unknown_event_type_is_refused_with_422(make_hooked: MakeHooked) -> None:
    hooked: Hooked = await make_hooked()
    response = await hooked.admin.post(
        "/api/webhooks", json={"url": hooked.receiver.url(), "events": ["email.exploded"]}
    )
    assert response.status_code == 422
    assert "email.exploded" in response.json()["error"]["message"]


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_endpoints_are_listed_patched_and_deleted_without_their_secret(
    make_hooked: MakeHooked, db: str
) -> None:
    hooked: Hooked = await make_hooked(backend=db)
    endpoint = await hooked.endpoint(["email.sent"], description="crm")
    path = f"/api/webhooks/{endpoint['id']}"

    patched = await hooked.admin.patch(path, json={"enabled": False, "events": ["email.failed"]})
    listed = await hooked.admin.get("/api/webhooks")
    removed = await hooked.admin.delete(path)
    gone = await hooked.admin.get(path)

    assert patched.json()["enabled"] is False and patched.json()["events"] == ["email.failed"]
    assert [e["id"] for e in listed.json()["items"]] == [endpoint["id"]]
    assert "secret" not in listed.json()["items"][0]
    assert removed.status_code == 204
    assert gone.status_code == 404


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_read_all_sends_one_notification_read_per_notification(
    make_hooked: MakeHooked, db: str
) -> None:
    hooked: Hooked = await make_hooked(backend=db)
    await hooked.endpoint(["notification.read"])
    async with hooked.proc.client("platform", role="service") as service:
        sent = await service.post(
            "/api/notifications/send",
            json={"userIds": ["ann"], "type": "system", "title": "t", "message": "m"},
        )
        again = await service.post(
            "/api/notifications/send",
            json={"userIds": ["ann"], "type": "system", "title": "t", "message": "m"},
        )
    async with hooked.proc.client("ann") as ann:
        await ann.post("/api/notifications/read-all")

    got = await hooked.wait_for(2, "notification.read")

    expected = {sent.json()["ids"][0], again.json()["ids"][0]}
    assert {r.json()["data"]["notificationId"] for r in got} == expected


async def test_an_endpoint_failing_past_the_disable_window_is_disabled(
    make_hooked: MakeHooked,
) -> None:
    hooked: Hooked = await make_hooked(WEBHOOK_DISABLE_AFTER="0.5")
    endpoint = await hooked.endpoint(["email.sent"])
    hooked.receiver.answer(*[500] * 50)

    await hooked.admin.post(f"/api/webhooks/{endpoint['id']}/test")

    async def disabled() -> dict[str, Any] | None:
        found: dict[str, Any] = (await hooked.admin.get(f"/api/webhooks/{endpoint['id']}")).json()
        return found if not found["enabled"] else None

    found = await eventually(disabled, what="the endpoint to be disabled")
    attempts = len(hooked.receiver.received())
    await asyncio.sleep(0.5)
    assert found["disabledReason"] and found["failingSince"]
    assert len(hooked.receiver.received()) == attempts  # nothing more is sent


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_disabling_an_endpoint_notifies_the_users_in_admin_user_ids(
    make_hooked: MakeHooked, db: str
) -> None:
    admins = [f"ops-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    hooked: Hooked = await make_hooked(
        db, WEBHOOK_DISABLE_AFTER="0.5", ADMIN_USER_IDS=",".join(admins)
    )
    endpoint = await hooked.endpoint(["email.sent"])
    hooked.receiver.answer(*[500] * 50)

    await hooked.admin.post(f"/api/webhooks/{endpoint['id']}/test")

    for admin in admins:
        async with hooked.proc.client(admin) as http:

            async def alert(http: httpx.AsyncClient = http) -> dict[str, Any] | None:
                items = (await http.get("/api/notifications")).json()["items"]
                return next((i for i in items if i["type"] == "webhook_disabled"), None)

            found = await eventually(alert, what=f"the webhook_disabled notification of {admin}")
            assert found["data"]["endpointId"] == endpoint["id"]
            assert found["priority"] == "critical"
            assert endpoint["id"] in found["message"] and "127.0.0.1" in found["message"]
    async with hooked.proc.client("someone-else") as http:
        assert (await http.get("/api/notifications")).json()["items"] == []
