"""The email service: validate, render, check suppressions, enqueue. Nothing is sent here.

Templates are rendered when the email is accepted, not when it is sent:

* a missing variable or unknown template is the caller's 422, not a `failed` email later;
* the outbox row holds exactly what goes out, so a retry, a failover to SES or a
  restart sends the same bytes even if a template file changed in between;
* workers do no template work, so sending throughput is provider-bound.

The cost is storage: each row keeps its rendered HTML.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from delivery.addresses import BadAddress, parse_address
from delivery.providers.base import Address, Attachment, OutgoingEmail
from delivery.render import TemplateError, TemplateRenderer
from delivery.webhooks import DeliveryStatus
from rooms.errors import Conflict, Invalid, NotFound
from rooms.views import iso
from schemas.email import (
    MAX_RECIPIENTS,
    Accepted,
    BatchAccepted,
    BatchResult,
    EmailStatus,
    ItemError,
    SendBatch,
    SendEmail,
    StatusEvent,
)
from storage.email import EmailStore, IdempotencyRecord, NewEmail, StoredResponse

S = DeliveryStatus
# Keys are opaque client strings (UUIDs in practice); the bound keeps the index small.
MAX_IDEMPOTENCY_KEY = 255
# Decoded attachments in one email; SendGrid's 30 MB limit counts the base64 form.
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,76}")
# Headers the API sets itself: letting a caller set them would forge or misroute mail.
_RESERVED_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "subject", "sender", "date", "message-id"}
    | {"content-type", "content-transfer-encoding", "mime-version", "x-pitchey-email-id"}
)
_send_decoder = msgspec.json.Decoder(SendEmail)
_batch_decoder = msgspec.json.Decoder(SendBatch)
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    replayed: bool = False


@dataclass(slots=True)
class _Prepared:
    email: OutgoingEmail
    category: str | None


def _invalid(exc: msgspec.DecodeError) -> Invalid:
    if isinstance(exc, msgspec.ValidationError):
        return Invalid(str(exc))
    return Invalid(f"body is not valid JSON: {exc}")


def _no_crlf(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise Invalid(f"{what} must not contain CR or LF")
    return value


class EmailService:
    def __init__(
        self,
        *,
        store: EmailStore,
        renderer: TemplateRenderer,
        from_email: str,
        from_name: str | None = None,
    ) -> None:
        self.store = store
        self.renderer = renderer
        self.from_email = from_email
        self.from_name = from_name or None
        # Set by the worker: wakes it without waiting for the batch timeout.
        self.on_enqueued: Callable[[int], None] | None = None
        # Provider webhooks in (delivery.intake.WebhookIntake), set by delivery.pipeline.
        self.webhooks: Any = None

    # ---- the public API ----------------------------------------------------------

    async def send(self, caller: str, raw: bytes, idempotency_key: str | None) -> Reply:
        async def build() -> tuple[list[NewEmail], Reply]:
            try:
                request = _send_decoder.decode(raw)
            except msgspec.DecodeError as exc:
                raise _invalid(exc) from None
            prepared = self._prepare(request)
            [new] = await self._new_emails([prepared])
            return [new], Reply(202, _encoder.encode(Accepted(id=new.id, status=new.status)))

        return await self._accept(caller, raw, idempotency_key, build)

    async def batch(self, caller: str, raw: bytes, idempotency_key: str | None) -> Reply:
        async def build() -> tuple[list[NewEmail], Reply]:
            try:
                request = _batch_decoder.decode(raw)
            except msgspec.DecodeError as exc:
                raise _invalid(exc) from None
            results: list[BatchResult] = []
            good: list[tuple[int, _Prepared]] = []
            for index, item in enumerate(request.emails):
                try:
                    try:
                        one = _send_decoder.decode(item)
                    except msgspec.DecodeError as exc:
                        raise _invalid(exc) from None
                    good.append((index, self._prepare(one)))
                except Invalid as exc:
                    error = ItemError(code=exc.code, message=exc.message)
                    results.append(BatchResult(index=index, error=error))
            news = await self._new_emails([p for _, p in good])
            for (index, _), new in zip(good, news, strict=True):
                results.append(BatchResult(index=index, id=new.id, status=new.status))
            results.sort(key=lambda r: r.index)
            body = BatchAccepted(
                accepted=len(news), rejected=len(results) - len(news), results=results
            )
            return news, Reply(202, _encoder.encode(body))

        return await self._accept(caller, raw, idempotency_key, build)

    async def submit_internal(
        self,
        *,
        to: str,
        template: str,
        data: dict[str, Any],
        category: str | None = None,
        dedupe_key: str | None = None,
    ) -> str:
        """For other parts of the service (notifications): enqueue a templated email.

        Returns the email id. The same ``dedupe_key`` returns the first email's id and
        enqueues nothing. Raises ``rooms.errors.Invalid`` for a bad address or template.
        """
        idempotency = f"internal|{dedupe_key}" if dedupe_key else None
        if idempotency is not None:
            found = await self.store.find_by_idempotency(idempotency)
            if found is not None:
                return found
        request = SendEmail(to=to, template=template, data=data)
        prepared = self._prepare(request)
        prepared.category = category
        [new] = await self._new_emails([prepared])
        new.idempotency = idempotency
        try:
            await self.store.enqueue([new])
        except Exception:
            if idempotency is not None:
                found = await self.store.find_by_idempotency(idempotency)
                if found is not None:
                    return found
            raise
        self._notify(1)
        return new.id

    async def status(self, email_id: str) -> EmailStatus:
        record = await self.store.get(email_id)
        if record is None:
            raise NotFound("no such email")
        return EmailStatus(
            id=record.id,
            status=record.status,
            provider=record.provider,
            provider_message_id=record.provider_message_id,
            attempts=record.attempts,
            last_error=record.last_error,
            events=[StatusEvent(type=e.type, at=iso(e.at), detail=e.detail) for e in record.events],
        )

    # ---- accepting -----------------------------------------------------------------

    async def _accept(
        self,
        caller: str,
        raw: bytes,
        key: str | None,
        build: Callable[[], Awaitable[tuple[list[NewEmail], Reply]]],
    ) -> Reply:
        if key is None:
            emails, reply = await build()
            await self.store.enqueue(emails)
            self._notify(len(emails))
            return reply
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            raise Invalid(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        body_hash = hashlib.sha256(raw).hexdigest()
        found = await self.store.idempotent_response(caller, key)
        if found is not None:
            return _replay(found, body_hash)
        emails, reply = await build()
        record = IdempotencyRecord(caller, key, body_hash, reply.status, reply.body.decode())
        stored = await self.store.enqueue(emails, record)
        if stored is not None:
            return _replay(stored, body_hash)
        self._notify(len(emails))
        return reply

    def _notify(self, count: int) -> None:
        if count and self.on_enqueued is not None:
            self.on_enqueued(count)

    async def _new_emails(self, prepared: list[_Prepared]) -> list[NewEmail]:
        """Outbox rows; an email whose every To address is suppressed ends `suppressed`."""
        addresses = {a.email for p in prepared for a in (*p.email.to, *p.email.cc, *p.email.bcc)}
        blocked = await self.store.suppressed(addresses) if addresses else set()
        rows: list[NewEmail] = []
        for p in prepared:
            email, detail = without_suppressed(p.email, blocked)
            rows.append(
                NewEmail(
                    id=email.id,
                    payload=_encoder.encode(email).decode(),
                    recipient=p.email.to[0].email,
                    status=S.SUPPRESSED if not email.to else S.QUEUED,
                    category=p.category,
                    event_detail=detail,
                )
            )
        return rows

    # ---- validation and rendering ---------------------------------------------------

    def _prepare(self, request: SendEmail) -> _Prepared:
        to = [request.to] if isinstance(request.to, str) else request.to
        recipients = [*to, *request.cc, *request.bcc]
        if len(recipients) > MAX_RECIPIENTS:
            raise Invalid(f"at most {MAX_RECIPIENTS} recipients in to, cc and bcc together")
        subject, html, text = self._content(request)
        headers = {
            _header_name(name): _no_crlf(value, f"header {name}")
            for name, value in request.headers.items()
        }
        return _Prepared(
            OutgoingEmail(
                id=str(uuid.uuid4()),
                from_email=self.from_email,
                from_name=self.from_name,
                subject=subject,
                to=_addresses(to, "to"),
                cc=_addresses(request.cc, "cc"),
                bcc=_addresses(request.bcc, "bcc"),
                reply_to=_addresses([request.reply_to], "replyTo")[0] if request.reply_to else None,
                html=html,
                text=text,
                categories=list(request.categories),
                attachments=_attachments(request),
                headers=headers,
            ),
            category=request.categories[0] if request.categories else None,
        )

    def _content(self, request: SendEmail) -> tuple[str, str | None, str | None]:
        if request.template is not None:
            if request.subject is not None or request.html is not None or request.text is not None:
                raise Invalid("send either template with data, or subject with html and/or text")
            try:
                rendered = self.renderer.render(request.template, request.data or {})
            except TemplateError as exc:
                raise Invalid(str(exc)) from None
            return rendered.subject, rendered.html, rendered.text
        if request.data is not None:
            raise Invalid("data is only used with a template")
        if request.subject is None:
            raise Invalid("subject is required without a template")
        if request.html is None and request.text is None:
            raise Invalid("html or text is required without a template")
        return _no_crlf(request.subject, "subject"), request.html, request.text


def _replay(stored: StoredResponse, body_hash: str) -> Reply:
    if stored.body_hash != body_hash:
        raise Conflict("this Idempotency-Key was used with a different body")
    return Reply(stored.status, stored.response.encode(), replayed=True)


def _addresses(values: list[str], field: str) -> list[Address]:
    try:
        return [parse_address(v) for v in values]
    except BadAddress as exc:
        raise Invalid(f"{field}: {exc}") from None


def _header_name(name: str) -> str:
    if not _HEADER_NAME.fullmatch(name):
        raise Invalid(f"header name {name!r} is not a valid header name")
    if name.lower() in _RESERVED_HEADERS:
        raise Invalid(f"header {name} is set by the service and cannot be given")
    return name


def _attachments(request: SendEmail) -> list[Attachment]:
    found: list[Attachment] = []
    total = 0
    for item in request.attachments:
        _no_crlf(item.filename, "attachment filename")
        _no_crlf(item.content_type, "attachment contentType")
        try:
            content = base64.b64decode(item.content, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(f"attachment {item.filename!r}: content must be base64") from None
        total += len(content)
        found.append(Attachment(item.filename, item.content_type, content))
    if total > MAX_ATTACHMENT_BYTES:
        raise Invalid(f"attachments exceed {MAX_ATTACHMENT_BYTES} bytes in total")
    return found


def without_suppressed(email: OutgoingEmail, blocked: set[str]) -> tuple[OutgoingEmail, str | None]:
    """The email minus suppressed recipients, and a note naming them (None if none)."""
    if not blocked:
        return email, None

    def keep(addresses: list[Address]) -> list[Address]:
        return [a for a in addresses if a.email.lower() not in blocked]

    removed = [a.email for a in (*email.to, *email.cc, *email.bcc) if a.email.lower() in blocked]
    if not removed:
        return email, None
    trimmed = msgspec.structs.replace(
        email, to=keep(email.to), cc=keep(email.cc), bcc=keep(email.bcc)
    )
    return trimmed, "suppressed: " + ", ".join(removed)
