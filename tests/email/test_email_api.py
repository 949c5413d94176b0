"""The email API against a real server sending through the SendGrid stand-in."""

from __future__ import annotations

import uuid

import pytest

from tests.email.support import EmailServer, ServerFactory, delivered_ids, eventually
from tests.standins.sendgrid import SendGridStandin


def address(name: str = "ann") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


async def test_a_templated_email_is_rendered_and_sent(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    to = address()
    email_id = await mail.accept({"to": to, "template": "welcome", "data": {"name": "Ann <b>"}})

    await mail.wait_status(email_id, "sent")

    [message] = [m for m in sendgrid.messages() if m["custom_args"]["email_id"] == email_id]
    assert message["personalizations"][0]["to"] == [{"email": to}]
    assert message["subject"].startswith("Welcome to Pitchey")
    html = next(c["value"] for c in message["content"] if c["type"] == "text/html")
    assert "Ann &lt;b&gt;" in html


async def test_the_seeds_request_with_subject_and_template_sends_that_subject(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    # The seed's own example body: a subject beside the template overrides the template's.
    body = {
        "to": address(),
        "subject": "Welcome aboard, Ann",
        "template": "welcome",
        "data": {"name": "Ann"},
    }
    email_id = await mail.accept(body)

    await mail.wait_status(email_id, "sent")

    [message] = [m for m in sendgrid.messages() if m["custom_args"]["email_id"] == email_id]
    assert message["subject"] == "Welcome aboard, Ann"
    html = next(c["value"] for c in message["content"] if c["type"] == "text/html")
    assert "Ann" in html


async def test_an_html_email_is_sent_as_given_and_answers_202_queued(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    response = await mail.send(
        {"to": f"Ann Lee <{address()}>", "subject": "Hello", "html": "<p>Hi</p>", "text": "Hi"}
    )

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    status = await mail.wait_status(response.json()["id"], "sent")
    assert status["provider"] == "sendgrid"
    assert status["providerMessageId"]
    assert status["attempts"] == 1
    assert [e["type"] for e in status["events"]] == ["queued", "sent"]


async def test_a_batch_accepts_good_items_and_reports_the_bad_one(mail: EmailServer) -> None:
    emails = [
        {"to": address(), "subject": "one", "text": "1"},
        {"to": "not-an-address", "subject": "two", "text": "2"},
        {"to": address(), "template": "welcome", "data": {"name": "Bo"}},
    ]

    response = await mail.http.post("/api/email/batch", json={"emails": emails})

    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    first, bad, third = body["results"]
    assert bad["error"]["code"] == "validation_error"
    assert "not-an-address" in bad["error"]["message"]
    for good in (first, third):
        await mail.wait_status(good["id"], "sent")


async def test_a_batch_over_1000_items_is_refused(mail: EmailServer) -> None:
    emails = [{"to": "a@example.com", "subject": "s", "text": "t"}] * 1001

    response = await mail.http.post("/api/email/batch", json={"emails": emails})

    assert response.status_code == 422


async def test_the_same_idempotency_key_and_body_replays_without_sending_again(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    body = {"to": address(), "subject": "Once", "text": "only once"}
    key = {"Idempotency-Key": str(uuid.uuid4())}

    first = await mail.send(body, **key)
    await mail.wait_status(first.json()["id"], "sent")
    second = await mail.send(body, **key)

    assert second.status_code == 202
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert delivered_ids(sendgrid).count(first.json()["id"]) == 1


async def test_the_same_idempotency_key_with_another_body_is_a_409(mail: EmailServer) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    await mail.send({"to": address(), "subject": "A", "text": "a"}, **key)

    response = await mail.send({"to": address(), "subject": "B", "text": "b"}, **key)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


async def test_idempotency_keys_are_per_caller(mail: EmailServer) -> None:
    body = {"to": address(), "subject": "A", "text": "a"}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await mail.send(body, **key)

    async with mail.proc.client("other-service", role="service") as other:
        second = await other.post("/api/email/send", json=body, headers=key)

    assert second.status_code == 202
    assert second.json()["id"] != first.json()["id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"to": "a@example.com", "subject": "Hi\r\nBcc: x@evil.test", "text": "t"}, "CR or LF"),
        ({"to": "a@example.com", "subject": "Hi\nthere", "text": "t"}, "CR or LF"),
        (
            {"to": "a@example.com", "subject": "s", "text": "t", "headers": {"X-A": "1\r\nB: 2"}},
            "CR or LF",
        ),
        ({"to": "a@example.com\r\nBcc: x@evil.test", "subject": "s", "text": "t"}, "CR and LF"),
        ({"to": "a@example.com", "subject": "s", "text": "t", "headers": {"Bcc": "x"}}, "Bcc"),
        ({"to": "nobody", "subject": "s", "text": "t"}, "not an email address"),
        ({"to": "a@exa_mple.com", "subject": "s", "text": "t"}, "invalid domain"),
        ({"to": f"{'a' * 65}@example.com", "subject": "s", "text": "t"}, "too long"),
        ({"to": "a@example.com", "text": "t"}, "subject is required"),
        ({"to": "a@example.com", "subject": "s"}, "html or text"),
        ({"to": "a@example.com", "template": "welcome", "html": "<p>x</p>"}, "either template"),
        ({"to": "a@example.com", "template": "no_such", "data": {}}, "unknown email template"),
        ({"to": "a@example.com", "template": "welcome", "data": {}}, "name"),
        ({"to": "a@example.com", "subject": "s", "text": "t", "bogus": 1}, "bogus"),
        ({"to": ["a@example.com"] * 51, "subject": "s", "text": "t"}, "50"),
    ],
)
async def test_invalid_requests_get_a_clear_422(
    mail: EmailServer, body: dict[str, object], message: str
) -> None:
    response = await mail.send(body)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert message in response.json()["error"]["message"]


async def test_a_user_token_cannot_send_or_read_status(mail: EmailServer) -> None:
    email_id = await mail.accept({"to": address(), "subject": "s", "text": "t"})

    async with mail.proc.client("someone", role="user") as user:
        sent = await user.post(
            "/api/email/send", json={"to": address(), "subject": "s", "text": "t"}
        )
        batch = await user.post("/api/email/batch", json={"emails": []})
        status = await user.get(f"/api/email/{email_id}/status")
        listed = await user.get("/api/email/suppressions")

    assert [r.status_code for r in (sent, batch, status, listed)] == [403] * 4


async def test_an_admin_token_may_send(mail: EmailServer) -> None:
    async with mail.proc.client("root", role="admin") as admin:
        response = await admin.post(
            "/api/email/send", json={"to": address(), "subject": "s", "text": "t"}
        )

    assert response.status_code == 202


async def test_an_unknown_email_status_is_404(mail: EmailServer) -> None:
    response = await mail.http.get(f"/api/email/{uuid.uuid4()}/status")

    assert response.status_code == 404


async def test_without_provider_keys_the_dev_provider_keeps_emails_for_dev_emails(
    make_email_server: ServerFactory,
) -> None:
    server = await make_email_server()
    to = address()
    email_id = await server.accept({"to": to, "template": "welcome", "data": {"name": "Dev"}})

    status = await server.wait_status(email_id, "sent")
    listed = (await server.http.get("/dev/emails")).json()["items"]

    assert status["provider"] == "dev"
    [shown] = [item for item in listed if item["id"] == email_id]
    assert shown["to"] == [to]
    assert "Welcome to Pitchey" in shown["subject"]
    assert "Dev" in shown["html"]


async def test_dev_emails_is_hidden_in_production(make_email_server: ServerFactory) -> None:
    # Production without provider keys starts only when EMAIL_PROVIDER=dev says so.
    server = await make_email_server(ENVIRONMENT="production", EMAIL_PROVIDER="dev")

    response = await server.http.get("/dev/emails")

    assert response.status_code == 404


async def test_over_the_send_rate_emails_wait_in_the_queue(
    make_email_server: ServerFactory, sendgrid: SendGridStandin
) -> None:
    from tests.email.support import sendgrid_env

    # 2 per minute: a burst of two goes out, the third waits about 30 s.
    server = await make_email_server(EMAIL_RATE_LIMIT_PER_MINUTE="2", **sendgrid_env(sendgrid))
    ids = [await server.accept({"to": address(), "subject": "s", "text": "t"}) for _ in range(3)]

    async def two_sent() -> bool:
        return len(set(delivered_ids(sendgrid)) & set(ids)) == 2

    await eventually(two_sent, what="two emails at the stand-in")
    [late] = [i for i in ids if i not in delivered_ids(sendgrid)]

    async def paced() -> dict[str, object] | None:
        status = await server.status(late)
        return status if "rate_limited" in [e["type"] for e in status["events"]] else None

    status = await eventually(paced, what="the third email to wait for the rate limit")
    assert status["status"] == "queued"
    assert status["attempts"] == 0
