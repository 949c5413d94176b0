"""Export and erasure of a user, against the real server on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook
from websockets.exceptions import ConnectionClosed

from tests.email.support import eventually, sign_webhook
from tests.privacy.support import SECTIONS, erase, erased, export, person_with_everything
from tests.servers import ServerProcess, uid, ws_client
from tests.standins.sendgrid import SendGridStandin
from tests.standins.webhook_receiver import Received, WebhookReceiver


async def test_the_export_holds_everything_stored_about_the_user(server: ServerProcess) -> None:
    ann = await person_with_everything(server)

    found = await export(server, ann.user_id)

    assert found["userId"] == ann.user_id and found["complete"] is True
    assert [p["email"] for p in found["profile"]] == [ann.address]
    assert [c["id"] for c in found["conversations"]] == [ann.conversation_id]
    assert found["readPositions"] == [{"conversationId": ann.conversation_id, "readSeq": 1}]
    assert [m["content"] for m in found["messages"]] == ["my secret pitch"]
    assert len(found["blocks"]) == 1
    assert [n["id"] for n in found["notifications"]] == [ann.notification_id]
    assert any(p.get("type") == "production_update" for p in found["preferences"])
    [email] = found["emails"]
    assert email["to"] == ann.address and email["history"]


async def test_after_an_erasure_the_export_is_empty(server: ServerProcess) -> None:
    ann = await person_with_everything(server)

    accepted = await erase(server, ann.user_id)
    found = await erased(server, ann.user_id)

    assert accepted["userId"] == ann.user_id and accepted["status"] == "pending"
    assert found["complete"] is True
    assert all(found[section] == [] for section in SECTIONS)


async def test_erased_messages_show_as_deletions_to_the_others(server: ServerProcess) -> None:
    ann = await person_with_everything(server)
    async with ws_client(server, ann.friend) as bob:
        await bob.subscribe(ann.conversation_id)
        await erase(server, ann.user_id)
        deleted = await bob.expect("message_deleted")
        left = await bob.expect("member")
    async with server.client(ann.friend) as http:
        history = (await http.get(f"/api/messages/{ann.conversation_id}")).json()["items"]
        convs = (await http.get("/api/messages/conversations")).json()["items"]

    assert deleted["messageId"] == ann.message_id
    assert (left["userId"], left["action"]) == (ann.user_id, "removed")
    [shown] = history
    assert (shown["id"], shown["deleted"], shown["content"]) == (ann.message_id, True, "")
    [listed] = [c for c in convs if c["id"] == ann.conversation_id]
    assert listed["participantIds"] == [ann.friend]


async def test_the_erased_users_sessions_are_closed(server: ServerProcess) -> None:
    ann = await person_with_everything(server)
    async with ws_client(server, ann.user_id) as ws:
        await ws.subscribe(ann.conversation_id)
        await erase(server, ann.user_id)
        deadline = time.monotonic() + 5
        closed = None
        while closed is None and time.monotonic() < deadline:
            try:
                await ws.recv(deadline - time.monotonic())
            except ConnectionClosed as exc:
                closed = exc
    assert closed is not None and closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1008, "account erased")


async def test_the_outbox_keeps_a_hash_of_the_address_and_no_content(
    server: ServerProcess,
) -> None:
    ann = await person_with_everything(server)
    email_id = (await export(server, ann.user_id))["emails"][0]["id"]

    await erase(server, ann.user_id)
    await erased(server, ann.user_id)
    async with server.client("ops", "admin") as admin:
        status = await admin.get(f"/api/email/{email_id}/status")
        dev = await admin.get("/dev/emails")

    assert status.status_code == 200, status.text
    assert ann.address not in status.text
    assert ann.address not in dev.text and "Someone wants your NDA" not in dev.text


def bounce_of(email_id: str, address: str) -> bytes:
    return json.dumps(
        [
            {
                "event": "bounce",
                "type": "bounce",
                "reason": "550 no such user",
                "email": address,
                "timestamp": int(time.time()),
                "sg_event_id": uid("ev"),
                "email_id": email_id,
            }
        ]
    ).encode()


async def suppressed_now(admin: httpx.AsyncClient, address: str) -> tuple[str, str]:
    """The suppression list's text, and what becomes of a new email to `address`."""
    listed = (await admin.get("/api/email/suppressions", params={"limit": 1000})).text
    again = await admin.post(
        "/api/email/send", json={"to": address, "subject": "hello again", "text": "there?"}
    )
    assert again.status_code == 202, again.text

    async def final() -> str | None:
        body = (await admin.get(f"/api/email/{again.json()['id']}/status")).json()
        return str(body["status"]) if body["status"] not in ("queued", "sending") else None

    return listed, await eventually(final, 10.0, "the new email's outcome")


async def test_a_bounced_address_stays_suppressed_after_its_owner_is_erased(
    server: ServerProcess, sendgrid: SendGridStandin
) -> None:
    ann = await person_with_everything(server)
    email_id = (await export(server, ann.user_id))["emails"][0]["id"]
    raw = bounce_of(email_id, ann.address)
    async with server.client("ops", "admin") as admin:
        hook = await admin.post(
            "/api/email/webhooks/sendgrid", content=raw, headers=sign_webhook(raw)
        )
        assert hook.status_code in (200, 204), hook.text
        await erase(server, ann.user_id)
        await erased(server, ann.user_id)
        listed, outcome = await suppressed_now(admin, ann.address)

    assert ann.address not in listed
    assert outcome == "suppressed"
    assert not any("hello again" in json.dumps(m) for m in sendgrid.messages())


async def test_a_bounce_reported_after_the_erasure_suppresses_only_the_hash(
    server: ServerProcess,
) -> None:
    ann = await person_with_everything(server)
    email_id = (await export(server, ann.user_id))["emails"][0]["id"]
    await erase(server, ann.user_id)
    await erased(server, ann.user_id)
    raw = bounce_of(email_id, ann.address)
    async with server.client("ops", "admin") as admin:
        hook = await admin.post(
            "/api/email/webhooks/sendgrid", content=raw, headers=sign_webhook(raw)
        )
        assert hook.status_code in (200, 204), hook.text
        listed, outcome = await suppressed_now(admin, ann.address)

    assert ann.address not in listed
    assert outcome == "suppressed"


async def test_no_notification_email_goes_to_an_erased_address(
    server: ServerProcess, sendgrid: SendGridStandin
) -> None:
    ann = await person_with_everything(server)
    await erase(server, ann.user_id)
    await erased(server, ann.user_id)
    before = len(sendgrid.messages())
    async with server.client("platform", "service") as platform:
        sent = await platform.post(
            "/api/notifications/send",
            json={
                "userId": ann.user_id,
                "type": "nda_request",
                "title": "After",
                "message": "After the erasure",
                "channels": ["email"],
            },
        )
    assert sent.status_code == 202, sent.text

    async def skipped() -> bool:
        found = await export(server, ann.user_id)
        return any(n["emailStatus"] == "skipped_no_address" for n in found["notifications"])

    await eventually(skipped, 10.0, "the email to be skipped for want of an address")
    assert not any(ann.address in json.dumps(m) for m in sendgrid.messages()[before:])


async def test_export_and_erasure_need_a_platform_token(server: ServerProcess) -> None:
    user = uid()
    async with server.client(user) as http:
        exported = await http.get(f"/api/users/{user}/export")
        erased_ = await http.delete(f"/api/users/{user}")
    assert (exported.status_code, erased_.status_code) == (403, 403)
    assert exported.json()["error"]["code"] == erased_.json()["error"]["code"] == "forbidden"


async def test_a_malformed_user_id_is_a_422(server: ServerProcess) -> None:
    async with server.client("platform", "service") as platform:
        response = await platform.delete("/api/users/" + "x" * 129)
        spaced = await platform.get("/api/users/a%20b/export")
    assert (response.status_code, spaced.status_code) == (422, 422)
    assert response.json()["error"]["code"] == "validation_error"


async def test_a_completed_erasure_sends_a_signed_user_erased_webhook(
    server: ServerProcess, receiver: WebhookReceiver
) -> None:
    async with server.client("ops", "admin") as admin:
        created = await admin.post(
            "/api/webhooks",
            json={"url": receiver.url(path=f"/{uid('hook')}"), "events": ["user.erased"]},
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()
        ann = await person_with_everything(server)
        accepted = await erase(server, ann.user_id)

        async def delivered() -> list[Received] | None:
            got = [r for r in receiver.received() if r.path == urlsplit(endpoint["url"]).path]
            return got or None

        [received] = await eventually(delivered, 10.0, "the user.erased webhook")
        await admin.delete(f"/api/webhooks/{endpoint['id']}")

    payload = Webhook(endpoint["secret"]).verify(received.body, received.headers)
    assert payload["type"] == "user.erased"
    assert payload["data"]["userId"] == ann.user_id
    assert payload["data"]["requestedAt"] == accepted["requestedAt"]
    assert ann.address not in received.body.decode()
    # Sent once the erasure is complete: nothing is left by then.
    found = await export(server, ann.user_id)
    assert not any(found[section] for section in SECTIONS)
