"""REST bodies and responses of the email API (camelCase on the wire).

Limits that only need the JSON shape live here as Meta; address syntax, CR/LF
and "template or content" rules are checked in ``delivery.email``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from schemas.bounds import FreeJson

# RFC 5321 caps a path at 256 octets; with a display name, 320 is generous.
AddressText = Annotated[str, Meta(min_length=3, max_length=320)]
# RFC 5322: a header line must not exceed 998 characters.
Subject = Annotated[str, Meta(min_length=1, max_length=998)]
# A rendered body above 1 MiB is a mistake (and costs every recipient the download).
Body = Annotated[str, Meta(min_length=1, max_length=1024 * 1024)]
TemplateName = Annotated[str, Meta(min_length=1, max_length=64)]
Category = Annotated[str, Meta(min_length=1, max_length=100)]
# Transactional mail: a handful of recipients. Lists belong in a marketing tool.
MAX_RECIPIENTS = 50
# The API's batch bound (and SendGrid's personalizations bound).
MAX_BATCH = 1000


class Base(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    pass


class AttachmentIn(Base, kw_only=True):
    """Exactly one of `content` (base64 bytes) or `id` (an upload from
    POST /api/email/attachments). A stored upload keeps its own filename and checked
    type unless these are given; inline content needs a filename."""

    filename: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    content: Annotated[str, Meta(min_length=1)] | None = None  # base64
    id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    content_type: Annotated[str, Meta(max_length=255)] | None = None


class SendEmail(Base, kw_only=True):
    to: AddressText | Annotated[list[AddressText], Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    cc: Annotated[list[AddressText], Meta(max_length=MAX_RECIPIENTS)] = []
    bcc: Annotated[list[AddressText], Meta(max_length=MAX_RECIPIENTS)] = []
    subject: Subject | None = None
    template: TemplateName | None = None
    data: FreeJson | None = None
    html: Body | None = None
    text: Body | None = None
    reply_to: AddressText | None = None
    attachments: Annotated[list[AttachmentIn], Meta(max_length=10)] = []
    categories: Annotated[list[Category], Meta(max_length=10)] = []
    headers: Annotated[dict[str, Annotated[str, Meta(max_length=998)]], Meta(max_length=20)] = {}
    # Picks localized template parts (name.<locale>.subject.j2, ...); plain ones otherwise.
    locale: Annotated[str, Meta(min_length=2, max_length=35)] | None = None


class SendBatch(Base, kw_only=True):
    # Raw items: each is decoded on its own so one bad item does not sink the others.
    emails: Annotated[list[msgspec.Raw], Meta(min_length=1, max_length=MAX_BATCH)]


class Accepted(Base, kw_only=True):
    id: str
    status: str


class ItemError(Base, kw_only=True):
    code: str
    message: str


class BatchResult(Base, kw_only=True, omit_defaults=True):
    index: int
    id: str | None = None
    status: str | None = None
    error: ItemError | None = None


class BatchAccepted(Base, kw_only=True):
    accepted: int
    rejected: int
    results: list[BatchResult]


class StatusEvent(Base, kw_only=True):
    type: str
    at: str
    detail: str | None = None


class EmailStatus(Base, kw_only=True):
    id: str
    status: str
    provider: str | None
    provider_message_id: str | None
    attempts: int
    last_error: str | None
    events: list[StatusEvent]


class SuppressionOut(Base, kw_only=True):
    email: str
    reason: str
    provider: str | None
    created_at: str


class SuppressionPage(Base, kw_only=True):
    items: list[SuppressionOut]
    next_cursor: str | None = None


class DevEmail(Base, kw_only=True):
    id: str
    status: str
    to: list[str]
    subject: str
    html: str | None
    text: str | None


class TemplateOut(Base, kw_only=True):
    name: str
    required: list[str]
    optional: list[str]
    builtin: bool
    # A file in EMAIL_TEMPLATE_DIR replaces at least one of this template's parts.
    overridden: bool
    # Locales with their own subject (name.<locale>.subject.j2).
    locales: list[str]


class TemplateList(Base, kw_only=True):
    items: list[TemplateOut]
