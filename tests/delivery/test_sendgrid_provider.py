"""SendGridProvider against the stand-in over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from delivery.providers.base import Address, Attachment, ErrorKind, ProviderError
from delivery.providers.sendgrid import SendGridProvider, build_payload
from tests.delivery.samples import SENDGRID_KEY, make_email
from tests.standins.sendgrid import Mode, SendGridStandin


@pytest.fixture
async def provider(sendgrid: SendGridStandin) -> AsyncIterator[SendGridProvider]:
    client = SendGridProvider(
        SENDGRID_KEY, api_url=sendgrid.url, timeout=httpx.Timeout(0.5, connect=1.0)
    )
    yield client
    await client.aclose()


async def send_expecting_error(provider: SendGridProvider) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await provider.send(make_email())
    return info.value


async def test_accepted_email_returns_x_message_id_and_carries_our_id(
    provider: SendGridProvider, sendgrid: SendGridStandin
) -> None:
    result = await provider.send(make_email("email-42"))

    [seen] = sendgrid.messages()
    assert result.provider == "sendgrid"
    assert result.provider_message_id == seen["message_id"]
    assert seen["custom_args"] == {"email_id": "email-42"}
    assert seen["from"] == {"email": "noreply@pitchey.test", "name": "Pitchey"}
    assert [c["type"] for c in seen["content"]] == ["text/plain", "text/html"]


async def test_missing_x_message_id_gives_none(
    provider: SendGridProvider, sendgrid: SendGridStandin
) -> None:
    sendgrid.set_mode(Mode(omit_message_id=True, count=1))

    result = await provider.send(make_email())

    assert result.provider_message_id is None


async def test_payload_has_recipients_attachments_and_headers_in_sendgrid_shape() -> None:
    email = make_email(
        cc=[Address("cc@example.com")],
        bcc=[Address("bcc@example.com")],
        reply_to=Address("owner@example.com", "Owner"),
        categories=["nda"],
        headers={"List-Unsubscribe": "<https://pitchey.test/u>"},
        attachments=[Attachment("nda.pdf", "application/pdf", b"%PDF")],
    )

    payload = build_payload(email)

    assert payload["personalizations"] == [
        {
            "to": [{"email": "ann@example.com", "name": "Ann Lee"}],
            "cc": [{"email": "cc@example.com"}],
            "bcc": [{"email": "bcc@example.com"}],
        }
    ]
    assert payload["reply_to"] == {"email": "owner@example.com", "name": "Owner"}
    assert payload["attachments"] == [
        {
            "content": "JVBERg==",
            "filename": "nda.pdf",
            "type": "application/pdf",
            "disposition": "attachment",
        }
    ]
    assert payload["categories"] == ["nda"]
    assert payload["headers"] == {"List-Unsubscribe": "<https://pitchey.test/u>"}


async def test_email_with_attachment_is_accepted_by_the_standin(
    provider: SendGridProvider, sendgrid: SendGridStandin
) -> None:
    await provider.send(make_email(attachments=[Attachment("a.txt", "text/plain", b"hi")]))

    assert sendgrid.messages()[0]["attachments"][0]["filename"] == "a.txt"


async def test_bad_request_is_rejected_with_sendgrid_message(provider: SendGridProvider) -> None:
    with pytest.raises(ProviderError) as info:
        await provider.send(make_email(to=[Address("not-an-address")]))

    assert info.value.kind is ErrorKind.REJECTED
    assert info.value.status == 400
    assert "Invalid email" in info.value.message
    assert "personalizations.0.to.0.email" in info.value.message


async def test_bad_key_is_an_auth_error(sendgrid: SendGridStandin) -> None:
    provider = SendGridProvider("SG.wrong", api_url=sendgrid.url)
    try:
        error = await send_expecting_error(provider)
    finally:
        await provider.aclose()

    assert error.kind is ErrorKind.AUTH
    assert "authorization grant is invalid" in error.message


async def test_too_many_requests_is_rate_limited_with_retry_after(
    provider: SendGridProvider, sendgrid: SendGridStandin
) -> None:
    sendgrid.set_mode(Mode(fail_status=429, retry_after=7, count=1))

    error = await send_expecting_error(provider)

    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after == 7


async def test_server_error_is_retryable_and_the_next_request_succeeds(
    provider: SendGridProvider, sendgrid: SendGridStandin
) -> None:
    sendgrid.set_mode(Mode(fail_status=500, count=1))

    error = await send_expecting_error(provider)
    result = await provider.send(make_email())

    assert error.kind is ErrorKind.RETRY
    assert result.provider_message_id is not None


async def test_timeout_after_sending_is_ambiguous(
    provider: SendGridProvider, sendgrid: SendGridStandin
) -> None:
    sendgrid.set_mode(Mode(hang=True, count=1))

    error = await send_expecting_error(provider)

    assert error.kind is ErrorKind.AMBIGUOUS


async def test_an_answer_slower_than_the_timeout_is_an_ambiguous_timeout_and_the_next_send_goes_out(
    provider: SendGridProvider, sendgrid: SendGridStandin
) -> None:
    sendgrid.set_mode(Mode(delay_ms=1500, count=1))

    error = await send_expecting_error(provider)
    result = await provider.send(make_email())

    assert error.kind is ErrorKind.AMBIGUOUS
    assert isinstance(error.__cause__, httpx.ReadTimeout)
    assert result.provider_message_id is not None


async def test_refused_connection_is_retryable() -> None:
    provider = SendGridProvider(SENDGRID_KEY, api_url="http://127.0.0.1:9")
    try:
        error = await send_expecting_error(provider)
    finally:
        await provider.aclose()

    assert error.kind is ErrorKind.RETRY
    assert isinstance(error.__cause__, httpx.ConnectError)
