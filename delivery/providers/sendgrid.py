"""SendGrid v3 Mail Send over HTTP."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import msgspec

from delivery.providers.aiohttp_transport import AiohttpTransport
from delivery.providers.base import (
    SENDGRID_MAX_MESSAGE_BYTES,
    Address,
    ErrorKind,
    OutgoingEmail,
    ProviderError,
    SendResult,
)
from delivery.providers.retry_after import retry_after_seconds
from schemas.settings import SENDGRID_API_URL

# SendGrid refuses messages over 30 MB in total; checking first saves an upload that must fail.
MAX_MESSAGE_BYTES = SENDGRID_MAX_MESSAGE_BYTES
# Connect fast or fail over; a read may take a while under SendGrid load but 10 s is already rare.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Error bodies can be HTML from a proxy; keep logs and stored errors short.
MAX_ERROR_TEXT = 500

_encoder = msgspec.json.Encoder()


class _ErrorItem(msgspec.Struct):
    message: str | None = None
    field: str | None = None


class _ErrorBody(msgspec.Struct):
    errors: list[_ErrorItem] = []


_error_decoder = msgspec.json.Decoder(_ErrorBody)


def _address(address: Address) -> dict[str, str]:
    if address.name:
        return {"email": address.email, "name": address.name}
    return {"email": address.email}


def build_payload(email: OutgoingEmail) -> dict[str, Any]:
    """The v3 mail/send JSON body for one email (one personalization: all recipients see it)."""
    personalization: dict[str, Any] = {"to": [_address(a) for a in email.to]}
    if email.cc:
        personalization["cc"] = [_address(a) for a in email.cc]
    if email.bcc:
        personalization["bcc"] = [_address(a) for a in email.bcc]
    sender = Address(email.from_email, email.from_name)
    payload: dict[str, Any] = {
        "personalizations": [personalization],
        "from": _address(sender),
        "subject": email.subject,
        # SendGrid requires text/plain before text/html when both are present.
        "content": [
            {"type": kind, "value": value}
            for kind, value in (("text/plain", email.text), ("text/html", email.html))
            if value
        ],
        # Flattened into every webhook event, so events can be matched without X-Message-Id.
        "custom_args": {"email_id": email.id},
    }
    if email.reply_to is not None:
        payload["reply_to"] = _address(email.reply_to)
    if email.categories:
        payload["categories"] = list(email.categories)
    if email.headers:
        payload["headers"] = dict(email.headers)
    if email.attachments:
        payload["attachments"] = [
            {
                "content": base64.b64encode(a.content).decode("ascii"),
                "filename": a.filename,
                "type": a.content_type,
                "disposition": "attachment",
            }
            for a in email.attachments
        ]
    return payload


def _error_text(response: httpx.Response) -> str:
    try:
        body = _error_decoder.decode(response.content)
    except msgspec.DecodeError:
        return response.text[:MAX_ERROR_TEXT] or response.reason_phrase
    parts = [
        f"{item.message} (field: {item.field})" if item.field else str(item.message)
        for item in body.errors
    ]
    return ("; ".join(parts) or response.reason_phrase)[:MAX_ERROR_TEXT]


def _kind_for_status(status: int) -> ErrorKind:
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 408 or status >= 500:
        return ErrorKind.RETRY
    return ErrorKind.REJECTED


class SendGridProvider:
    """One pooled HTTP client for the process; close it with ``aclose``.

    httpx over aiohttp (delivery/providers/aiohttp_transport.py): httpx's own transport
    spent more CPU per send than the rest of the email pipeline.
    """

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = SENDGRID_API_URL,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=api_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport or AiohttpTransport(),
        )

    async def send(self, email: OutgoingEmail) -> SendResult:
        body = _encoder.encode(build_payload(email))
        if len(body) > MAX_MESSAGE_BYTES:
            raise ProviderError(
                ErrorKind.REJECTED,
                f"message is {len(body)} bytes with attachments in base64; "
                f"SendGrid accepts at most {MAX_MESSAGE_BYTES}",
                provider=self.name,
            )
        response = await self._post(body)
        if response.status_code == 202:
            return SendResult(self.name, response.headers.get("x-message-id"))
        kind = _kind_for_status(response.status_code)
        raise ProviderError(
            kind,
            _error_text(response),
            provider=self.name,
            status=response.status_code,
            retry_after=retry_after_seconds(response.headers, time.time())
            if kind is ErrorKind.RATE_LIMITED
            else None,
        )

    async def _post(self, body: bytes) -> httpx.Response:
        try:
            return await self._client.post(
                "/v3/mail/send", content=body, headers={"Content-Type": "application/json"}
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached SendGrid: safe to retry, or to fail over if it keeps happening.
            raise ProviderError(ErrorKind.RETRY, repr(exc), provider=self.name) from exc
        except httpx.WriteTimeout as exc:
            # The body was not fully sent, so SendGrid cannot have accepted it.
            raise ProviderError(ErrorKind.RETRY, repr(exc), provider=self.name) from exc
        except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            # The request went out and SendGrid may have queued it. Sending through the
            # other provider too would make a duplicate certain; the router retries here.
            raise ProviderError(ErrorKind.AMBIGUOUS, repr(exc), provider=self.name) from exc
        except httpx.TransportError as exc:
            raise ProviderError(ErrorKind.RETRY, repr(exc), provider=self.name) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
