"""What every email provider speaks: the outgoing email, the result, and one error type."""

from __future__ import annotations

import enum
from typing import Protocol

import msgspec


class Address(msgspec.Struct, frozen=True):
    email: str
    name: str | None = None


# SendGrid refuses a mail/send request body over 30 MB; attachments count in base64.
SENDGRID_MAX_MESSAGE_BYTES = 30 * 1024 * 1024
# SES v2 refuses a message over 10 MB once MIME-encoded (attachments in base64).
SES_MAX_MESSAGE_BYTES = 10 * 1024 * 1024
MAX_MESSAGE_BYTES = {"sendgrid": SENDGRID_MAX_MESSAGE_BYTES, "ses": SES_MAX_MESSAGE_BYTES}
# Headers, recipients and JSON or MIME framing on top of bodies and attachments: generous,
# so an email that passes the estimate is not refused by the provider's exact count.
ENVELOPE_ALLOWANCE = 64 * 1024
# MIME base64 lines are 76 characters plus CRLF.
_MIME_LINE = 76


class Attachment(msgspec.Struct, frozen=True):
    """Either the bytes (`content`), or a reference to a stored email upload (`stored_id`,
    with its `size`) that the worker reads just before sending."""

    filename: str
    content_type: str
    content: bytes = b""
    stored_id: str | None = None
    size: int = 0

    @property
    def byte_size(self) -> int:
        return self.size if self.stored_id is not None else len(self.content)


class OutgoingEmail(msgspec.Struct, frozen=True, kw_only=True):
    """A fully rendered email; providers only translate it, they never change it."""

    id: str
    from_email: str
    subject: str
    to: list[Address]
    from_name: str | None = None
    cc: list[Address] = msgspec.field(default_factory=list)
    bcc: list[Address] = msgspec.field(default_factory=list)
    reply_to: Address | None = None
    html: str | None = None
    text: str | None = None
    categories: list[str] = msgspec.field(default_factory=list)
    attachments: list[Attachment] = msgspec.field(default_factory=list)
    headers: dict[str, str] = msgspec.field(default_factory=dict)


def _base64_size(size: int) -> int:
    return 4 * -(-size // 3)


def encoded_size(email: OutgoingEmail, provider: str) -> int:
    """An upper estimate of `email` as `provider` counts it, from attachment sizes alone.

    SendGrid counts the JSON body (attachments in base64, 4/3 larger); SES and raw MIME
    count base64 lines of 76 characters plus CRLF, and bodies may be base64 too.
    """
    mime = provider != "sendgrid"
    bodies = sum(len(part.encode()) for part in (email.html, email.text) if part)
    total = ENVELOPE_ALLOWANCE + (_base64_size(bodies) if mime else bodies)
    for attachment in email.attachments:
        encoded = _base64_size(attachment.byte_size)
        total += encoded + (2 * -(-encoded // _MIME_LINE) if mime else 0)
    return total


class SendResult(msgspec.Struct, frozen=True):
    provider: str
    # SendGrid may omit X-Message-Id; webhooks then match by our email_id instead.
    provider_message_id: str | None


class ErrorKind(enum.StrEnum):
    """What the caller should do next; see delivery.failover for the policy."""

    RETRY = "retry"  # 408, 5xx, connection refused/reset before sending: back off, try again
    RATE_LIMITED = "rate_limited"  # 429 or throttling: wait retry_after, same provider
    AUTH = "auth"  # bad key or account paused: the other provider may still work
    REJECTED = "rejected"  # the provider refuses this message: final, never fail over
    AMBIGUOUS = "ambiguous"  # timed out after sending: it may have gone out, retry same provider


class ProviderError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {kind}: {message}")
        self.kind = kind
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after


class EmailProvider(Protocol):
    name: str

    async def send(self, email: OutgoingEmail) -> SendResult: ...

    async def aclose(self) -> None: ...
