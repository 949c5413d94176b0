"""Email attachments given by stored id: uploaded to the email bucket, sent through the
SendGrid stand-in, on the local storage backend."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx

from tests.email.support import EmailServer, ServerFactory, eventually, sendgrid_env
from tests.standins.sendgrid import SendGridStandin

PDF = b"%PDF-1.7\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 200


def address() -> str:
    return f"ann-{uuid.uuid4().hex[:8]}@example.com"


def email(*attachments: dict[str, Any]) -> dict[str, Any]:
    return {
        "to": address(),
        "subject": "Your deck",
        "text": "Attached.",
        "attachments": [*attachments],
    }


async def upload(http: httpx.AsyncClient, data: bytes = PDF, name: str = "deck.pdf") -> str:
    response = await http.post(
        "/api/email/attachments", files={"file": (name, data, "application/pdf")}
    )
    assert response.status_code == 201, response.text
    attachment_id: str = response.json()["id"]
    return attachment_id


async def test_a_stored_pdf_reaches_sendgrid_as_an_attachment(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    stored = await upload(mail.http)

    email_id = await mail.accept(email({"id": stored}))

    async def received() -> dict[str, Any] | None:
        found = [m for m in sendgrid.messages() if m["custom_args"]["email_id"] == email_id]
        return found[0] if found else None

    message = await eventually(received, what="the stand-in to receive the email")
    [attachment] = message["attachments"]
    assert attachment["filename"] == "deck.pdf"
    assert attachment["type"] == "application/pdf"
    assert base64.b64decode(attachment["content"]) == PDF
    assert (await mail.wait_status(email_id, "sent"))["lastError"] is None


async def test_a_stored_attachment_may_be_renamed_and_mixed_with_inline_content(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    stored = await upload(mail.http)
    inline = {"filename": "note.txt", "contentType": "text/plain", "content": "aGk="}

    email_id = await mail.accept(email({"id": stored, "filename": "Pitch 2025.pdf"}, inline))

    await mail.wait_status(email_id, "sent")
    [message] = [m for m in sendgrid.messages() if m["custom_args"]["email_id"] == email_id]
    assert [(a["filename"], a["type"]) for a in message["attachments"]] == [
        ("Pitch 2025.pdf", "application/pdf"),
        ("note.txt", "text/plain"),
    ]


async def test_an_unknown_attachment_id_is_404_and_takes_nothing(mail: EmailServer) -> None:
    stored = await upload(mail.http)

    response = await mail.send(email({"id": stored}, {"id": str(uuid.uuid4())}))

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    # All or none: the known upload was given back and can still be sent.
    assert (await mail.send(email({"id": stored}))).status_code == 202


async def test_another_services_upload_is_not_found(mail: EmailServer) -> None:
    async with mail.proc.client("other-service", role="service") as other:
        stored = await upload(other)

    response = await mail.send(email({"id": stored}))

    assert response.status_code == 404, response.text


async def test_an_upload_goes_with_one_request_only(mail: EmailServer) -> None:
    stored = await upload(mail.http)
    assert (await mail.send(email({"id": stored}))).status_code == 202

    again = await mail.send(email({"id": stored}))

    assert again.status_code == 409, again.text


async def test_a_batch_may_share_an_upload(mail: EmailServer) -> None:
    stored = await upload(mail.http)

    response = await mail.http.post(
        "/api/email/batch",
        json={"emails": [email({"id": stored}), email({"id": stored}), email({"id": "nope"})]},
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["results"][2]["error"]["code"] == "not_found"


async def test_content_and_id_together_or_neither_are_refused(mail: EmailServer) -> None:
    stored = await upload(mail.http)
    both = {"id": stored, "filename": "a.pdf", "content": "aGk="}

    for attachment in (both, {"filename": "a.pdf"}):
        response = await mail.send(email(attachment))
        assert response.status_code == 422, response.text
        assert "exactly one" in response.json()["error"]["message"]


async def test_a_user_token_cannot_upload_email_attachments(mail: EmailServer) -> None:
    async with mail.proc.client("someone", role="user") as user:
        response = await user.post(
            "/api/email/attachments", files={"file": ("deck.pdf", PDF, "application/pdf")}
        )

    assert response.status_code == 403, response.text


async def test_an_email_too_large_for_the_provider_is_422_at_accept(
    make_email_server: ServerFactory, sendgrid: SendGridStandin
) -> None:
    # 64 KiB of allowance for headers plus about 10 KiB of PDF in base64 passes; 60 KiB does not.
    limit = 96 * 1024
    server = await make_email_server(**sendgrid_env(sendgrid), EMAIL_MAX_MESSAGE_BYTES=str(limit))
    big = await upload(server.http, b"%PDF-1.7\n" + b"x" * 60 * 1024, "big.pdf")

    response = await server.send(email({"id": big}))

    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "as sendgrid counts it" in message and str(limit) in message
    assert sendgrid.messages() == []
    # The limit is about this email, not the server: a small upload still goes.
    small = await upload(server.http)
    assert (await server.send(email({"id": small}))).status_code == 202
