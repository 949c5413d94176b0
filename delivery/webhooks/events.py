"""Errors of webhook parsing and the dedupe key every parser computes."""

from __future__ import annotations

import hashlib


class WebhookError(Exception):
    """The request is not a genuine provider webhook: answer 401/403, do not parse it."""


class MalformedWebhook(WebhookError):
    """Signed correctly or not, the body cannot be understood: answer 400."""


def dedupe_key(provider: str, message_ref: str | None, kind: str, recipient: str, ts: float) -> str:
    """Stable across provider retries (SendGrid's sg_event_id is not)."""
    raw = f"{provider}\x1f{message_ref}\x1f{kind}\x1f{recipient.lower()}\x1f{ts:.3f}"
    return hashlib.sha256(raw.encode()).hexdigest()
