"""SesProvider against moto's standalone server."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any, ClassVar

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


class _SesV2Capture(http.server.BaseHTTPRequestHandler):
    """Answers SESv2 SendEmail (POST /v2/email/outbound-emails) as SES does, keeping the body."""

    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
        answer = json.dumps({"MessageId": "captured-1"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return None


async def test_configuration_set_is_named_on_every_send() -> None:
    # moto accepts and forgets ConfigurationSetName, so the request SES would get is read
    # from a stand-in speaking SESv2's SendEmail contract.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SesV2Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    provider = SesProvider(
        region="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
        configuration_set="pitchey-events",
    )
    try:
        result = await provider.send(make_email("ses-set"))
    finally:
        await provider.aclose()
        server.shutdown()

    assert result.provider_message_id == "captured-1"
    assert _SesV2Capture.bodies[-1]["ConfigurationSetName"] == "pitchey-events"
