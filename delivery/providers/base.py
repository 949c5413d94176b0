"""What every email provider speaks: the outgoing email, the result, and one error type."""

from __future__ import annotations

import enum
from typing import Protocol

import msgspec


class Address(msgspec.Struct, frozen=True):
    email: str
    name: str | None = None


class Attachment(msgspec.Struct, frozen=True):
    filename: str
    content_type: str
    content: bytes


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
