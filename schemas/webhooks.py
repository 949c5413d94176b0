"""Outgoing webhooks: the event types, the admin API's bodies (camelCase on the wire)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

# Every event type an endpoint may subscribe to. `webhook.test` is only ever sent by
# POST /api/webhooks/{id}/test, to that one endpoint.
EVENT_TYPES = (
    "email.sent",
    "email.delivered",
    "email.bounced",
    "email.complained",
    "email.failed",
    "email.opened",
    "email.clicked",
    "notification.created",
    "notification.read",
    "message.created",
    "user.erased",
)
TEST_EVENT = "webhook.test"

Url = Annotated[str, Meta(min_length=8, max_length=2048)]
EventType = Annotated[str, Meta(min_length=1, max_length=64)]
Events = Annotated[list[EventType], Meta(min_length=1, max_length=len(EVENT_TYPES))]
Description = Annotated[str, Meta(max_length=500)]


class Base(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    pass


class WebhookIn(Base, kw_only=True):
    url: Url
    events: Events
    description: Description | None = None


class WebhookPatch(Base, kw_only=True):
    url: Url | None = None
    events: Events | None = None
    enabled: bool | None = None
    description: Description | None = None


class WebhookOut(Base, kw_only=True):
    id: str
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    # Why the service switched it off (after WEBHOOK_DISABLE_AFTER seconds of failures).
    disabled_reason: str | None
    failing_since: str | None
    created_at: str
    updated_at: str


class WebhookCreated(WebhookOut, kw_only=True):
    # Shown here and by rotate-secret only; never listed.
    secret: str


class SecretOut(Base, kw_only=True):
    secret: str
    # Until when the previous secret also signs.
    previous_valid_until: str


class WebhookList(Base, kw_only=True):
    items: list[WebhookOut]


class AttemptOut(Base, kw_only=True):
    # The `webhook-id` header of the delivery (the same on every retry).
    message_id: str
    type: str
    attempt: int
    at: str
    ok: bool
    response_code: int | None
    error: str | None
    duration_ms: int


class AttemptList(Base, kw_only=True):
    items: list[AttemptOut]


class TestSent(Base, kw_only=True):
    message_id: str
