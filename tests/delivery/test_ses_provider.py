"""SesProvider against moto's standalone server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from delivery.providers.base import Address, Attachment, ErrorKind, ProviderError
from delivery.providers.ses import SesProvider
from tests.delivery.samples import make_email


def sent_by_moto(moto_url: str, kind: str, message_id: str | None) -> dict[str, Any]:
    data = httpx.get(f"{moto_url}/moto-api/data.json").json()
    [message] = [m for m in data["ses"][kind] if m["id"] == message_id]
    return dict(message)


async def test_plain_email_is_sent_as_simple_content(ses: SesProvider, moto_url: str) -> None:
    result = await ses.send(make_email("ses-simple"))

    message = sent_by_moto(moto_url, "Message", result.provider_message_id)
    assert result.provider == "ses"
    assert message["subject"] == "Your NDA was approved"
    assert message["source"] == "Pitchey <noreply@pitchey.test>"
    assert message["destinations"]["ToAddresses"] == ["Ann Lee <ann@example.com>"]


async def test_email_with_attachment_is_sent_as_raw_mime_with_our_id(
    ses: SesProvider, moto_url: str
) -> None:
    email = make_email("ses-raw", attachments=[Attachment("deck.txt", "text/plain", b"slides")])

    result = await ses.send(email)

    raw = sent_by_moto(moto_url, "RawMessage", result.provider_message_id)["raw_data"]
    assert "X-Pitchey-Email-Id: ses-raw" in raw
    assert 'filename="deck.txt"' in raw
    assert "multipart/mixed" in raw


async def test_custom_headers_force_raw_content(ses: SesProvider, moto_url: str) -> None:
    email = make_email("ses-headers", headers={"List-Unsubscribe": "<https://p.test/u>"})

    result = await ses.send(email)

    raw = sent_by_moto(moto_url, "RawMessage", result.provider_message_id)["raw_data"]
    assert "List-Unsubscribe: <https://p.test/u>" in raw


async def test_unverified_sender_is_rejected(ses: SesProvider) -> None:
    with pytest.raises(ProviderError) as info:
        await ses.send(make_email(from_email="someone@unverified.test"))

    assert info.value.kind is ErrorKind.REJECTED
    assert "MessageRejected" in info.value.message


async def test_header_injection_is_rejected_before_sending(ses: SesProvider) -> None:
    email = make_email(headers={"X-Note": "a\r\nBcc: victim@example.com"})

    with pytest.raises(ProviderError) as info:
        await ses.send(email)

    assert info.value.kind is ErrorKind.REJECTED


async def test_unreachable_endpoint_is_retryable() -> None:
    provider = SesProvider(
        region="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url="http://127.0.0.1:9",
        connect_timeout=0.5,
    )
    try:
        with pytest.raises(ProviderError) as info:
            await provider.send(make_email(to=[Address("x@example.com")]))
    finally:
        await provider.aclose()

    assert info.value.kind is ErrorKind.RETRY
