"""The provider-neutral event every webhook parser returns."""

from __future__ import annotations

import hashlib

import msgspec

from delivery.webhooks.status import DeliveryStatus


class DeliveryEvent(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    kind: str  # the provider's own event name, e.g. "bounce", "Complaint"
    # None when the event changes no status (processed, unsubscribes): act on ``suppress``.
    status: DeliveryStatus | None
    recipient: str
    occurred_at: float  # epoch seconds
    email_id: str | None = None
    # SendGrid: the X-Message-Id we got at send (sg_message_id up to the first dot).
    # SES: the MessageId returned by SendEmail.
    provider_message_id: str | None = None
    detail: str | None = None
    suppress: bool = False
    bounce_type: str | None = None
    dedupe_key: str = ""


class WebhookError(Exception):
    """The request is not a genuine provider webhook: answer 401/403, do not parse it."""


class MalformedWebhook(WebhookError):
    """Signed correctly or not, the body cannot be understood: answer 400."""


def dedupe_key(provider: str, message_ref: str | None, kind: str, recipient: str, ts: float) -> str:
    """Stable across provider retries (SendGrid's sg_event_id is not)."""
    raw = f"{provider}\x1f{message_ref}\x1f{kind}\x1f{recipient.lower()}\x1f{ts:.3f}"
    return hashlib.sha256(raw.encode()).hexdigest()
