"""The email service: validate, render, check suppressions, enqueue. Nothing is sent here.

Templates are rendered when the email is accepted, not when it is sent:

* a missing variable or unknown template is the caller's 422, not a `failed` email later;
* the outbox row holds exactly what goes out, so a retry, a failover to SES or a
  restart sends the same bytes even if a template file changed in between;
* workers do no template work, so sending throughput is provider-bound.

The cost is storage: each row keeps its rendered HTML.

Stored attachments (uploads from ``POST /api/email/attachments``, given by id) are
taken when the email is accepted, so an unknown or foreign id is the caller's 404
and one upload goes with one request only (a 409 for a later request; the emails
of one batch may share it). The row keeps a reference, not the bytes: the worker
reads them just before sending. Sizes are known at accept time, so an email the
primary provider would refuse as too large is a 422 at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from base.clock import iso
from base.errors import Conflict, Invalid, NotFound, ServiceError
from delivery.addresses import BadAddress, has_line_break, parse_address
from delivery.providers.base import Address, Attachment, OutgoingEmail, encoded_size
from delivery.render import TemplateError, TemplateRenderer
from delivery.template_catalog import CRITICAL_TEMPLATES
from delivery.unsubscribe import Target, Unsubscribe
from schemas.delivery import DeliveryStatus
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
from storage.attachments import AttachmentRow
from storage.db import IntegrityError
from storage.email import (
    LANE_BULK,
    LANE_MAIN,
    EmailStore,
    IdempotencyRecord,
    NewEmail,
    StoredResponse,
)
from storage.notifications import FOLD_CATEGORY

if TYPE_CHECKING:
    from attachments.service import Attachments
    from base.identity import Caller

S = DeliveryStatus
# Keys are opaque client strings (UUIDs in practice); the bound keeps the index small.
MAX_IDEMPOTENCY_KEY = 255
# Decoded attachments in one email; SendGrid's 30 MB limit counts the base64 form.
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,76}")
# Headers the API sets itself: letting a caller set them would forge or misroute mail.
_RESERVED_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "subject", "sender", "date", "message-id"}
    | {"content-type", "content-transfer-encoding", "mime-version", "x-pitchey-email-id"}
    # Bounce routing and resent blocks: a caller setting them could divert bounces or make
    # a message look forwarded by someone else.
    | {"return-path"}
)
# Mail about the inbox and digests: it waits in the bulk lane, with a send budget of its
# own, so a flood of it never delays an NDA or investment email (see delivery/worker.py).
BULK_CATEGORIES = frozenset({"unread_messages", "digest_daily", "digest_weekly", FOLD_CATEGORY})
_send_decoder = msgspec.json.Decoder(SendEmail)
_batch_decoder = msgspec.json.Decoder(SendBatch)
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class InternalEmail:
    """A templated email another part of the service (notifications) asks for.

    The same ``dedupe_key`` gives the first email's id and enqueues nothing; ``locale``
    picks localized template parts; ``unsubscribe`` (None for critical mail) is what the
    email's one-click unsubscribe link turns off.
    """

    to: str
    template: str
    data: dict[str, Any]
    category: str | None = None
    dedupe_key: str | None = None
    locale: str | None = None
    unsubscribe: Target | None = None


@dataclass(slots=True)
class _Prepared:
    email: OutgoingEmail
    category: str | None


@dataclass(slots=True)
class _Taking:
    """Stored uploads taken by one request. Every email of the request takes them with
    the same `ref`, so a batch may share an upload and a retry with the same
    Idempotency-Key takes them again; what no accepted email uses is given back."""

    caller: Caller
    uploads: Attachments | None
    ref: str
    taken: set[str] = field(default_factory=set)
    used: set[str] = field(default_factory=set)


def _invalid(exc: msgspec.DecodeError) -> Invalid:
    if isinstance(exc, msgspec.ValidationError):
        return Invalid(str(exc))
    return Invalid(f"body is not valid JSON: {exc}")


def _no_crlf(value: str, what: str) -> str:
    if has_line_break(value):
        raise Invalid(
            f"{what} must not contain CR or LF or any other line break "
            "(VT, FF, FS, GS, RS, NEL, U+2028, U+2029)"
        )
    return value


class EmailService:
    def __init__(
        self,
        *,
        store: EmailStore,
        renderer: TemplateRenderer,
        from_email: str,
        from_name: str | None = None,
        provider: str = "dev",
        max_message_bytes: int | None = None,
        on_enqueued: Callable[[int, bool], None] | None = None,
        unsubscribe: Unsubscribe | None = None,
    ) -> None:
        self.store = store
        # One-click unsubscribe links and headers (None: no List-Unsubscribe at all).
        self.unsubscribe = unsubscribe
        self.renderer = renderer
        self.from_email = from_email
        self.from_name = from_name or None
        # The primary provider and its size limit, as it counts (None: no limit known).
        self.provider = provider
        self.max_message_bytes = max_message_bytes
        # Wakes the worker without waiting for the batch timeout.
        self.on_enqueued = on_enqueued

    # ---- the public API ----------------------------------------------------------

    async def send(
        self,
        caller: Caller,
        raw: bytes,
        idempotency_key: str | None,
        uploads: Attachments | None = None,
    ) -> Reply:
        """Accept one email; `uploads` resolves attachments given by stored id."""

        async def build(taking: _Taking) -> tuple[list[NewEmail], Reply]:
            try:
                request = _send_decoder.decode(raw)
            except msgspec.DecodeError as exc:
                raise _invalid(exc) from None
            prepared = self._prepare(request)
            await self._take(prepared, taking)
            [new] = await self._new_emails([prepared], caller.user_id)
            return [new], Reply(202, _encoder.encode(Accepted(id=new.id, status=new.status)))

        return await self._accept(caller, raw, idempotency_key, uploads, build)

    async def batch(
        self,
        caller: Caller,
        raw: bytes,
        idempotency_key: str | None,
        uploads: Attachments | None = None,
    ) -> Reply:
        async def build(taking: _Taking) -> tuple[list[NewEmail], Reply]:
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
                    prepared = self._prepare(one)
                    await self._take(prepared, taking)
                    good.append((index, prepared))
                except ServiceError as exc:
                    error = ItemError(code=exc.code, message=exc.message)
                    results.append(BatchResult(index=index, error=error))
            news = await self._new_emails([p for _, p in good], caller.user_id)
            for (index, _), new in zip(good, news, strict=True):
                results.append(BatchResult(index=index, id=new.id, status=new.status))
            results.sort(key=lambda r: r.index)
            body = BatchAccepted(
                accepted=len(news), rejected=len(results) - len(news), results=results
            )
            return news, Reply(202, _encoder.encode(body))

        return await self._accept(caller, raw, idempotency_key, uploads, build)

    async def submit_internal(
        self,
        *,
        to: str,
        template: str,
        data: dict[str, Any],
        category: str | None = None,
        dedupe_key: str | None = None,
        locale: str | None = None,
        unsubscribe: Target | None = None,
    ) -> str:
        """One `InternalEmail`: its id; raises ``base.errors.Invalid`` for a bad address or
        template."""
        request = InternalEmail(to, template, data, category, dedupe_key, locale, unsubscribe)
        [result] = await self.submit_internal_many([request])
        if isinstance(result, Invalid):
            raise result
        return result

    async def submit_internal_many(self, requests: Sequence[InternalEmail]) -> list[str | Invalid]:
        """For other parts of the service (notifications): enqueue templated emails, every
        new one in one transaction (one commit for a whole notification batch).

        Returns, in order, each email's id or the ``Invalid`` that refused it: a bad address
        or template refuses that email only. A ``dedupe_key`` already stored, or repeated
        in `requests`, gives the first email's result and enqueues nothing.
        """
        keys = [f"internal|{r.dedupe_key}" if r.dedupe_key else None for r in requests]
        known = await self.store.find_by_idempotency(k for k in keys if k is not None)
        results: list[str | Invalid | None] = [None] * len(requests)
        first: dict[str, int] = {}
        prepared: list[tuple[int, _Prepared]] = []
        for index, (request, key) in enumerate(zip(requests, keys, strict=True)):
            if key is not None:
                if key in known:
                    results[index] = known[key]
                    continue
                if key in first:
                    continue
                first[key] = index
            try:
                one = self._prepare(
                    SendEmail(to=request.to, template=request.template, data=request.data),
                    locale=request.locale,
                    unsubscribe=request.unsubscribe,
                    internal=True,
                )
            except Invalid as exc:
                results[index] = exc
                continue
            one.category = request.category
            prepared.append((index, one))
        news = await self._new_emails([p for _, p in prepared], None)
        for (index, _), new in zip(prepared, news, strict=True):
            new.idempotency = keys[index]
            results[index] = new.id
        stored, taken = await self._enqueue_internal(news)
        self._notify(stored)
        for key, email_id in taken.items():
            results[first[key]] = email_id
        done: list[str | Invalid] = []
        for index, key in enumerate(keys):
            # A key repeated in this batch gets its first request's result.
            result = results[first[key]] if key is not None and key in first else results[index]
            assert result is not None
            done.append(result)
        return done

    async def _enqueue_internal(self, news: list[NewEmail]) -> tuple[int, dict[str, str]]:
        """Store `news` in one transaction. A dedupe key that a concurrent submit stored
        between our look-up and our insert keeps that submit's email and drops ours.
        Returns (emails stored, {key: id} of the keys found stored that way)."""
        taken: dict[str, str] = {}
        while news:
            try:
                await self.store.enqueue(news)
                return len(news), taken
            except IntegrityError:
                keys = [n.idempotency for n in news if n.idempotency is not None]
                found = await self.store.find_by_idempotency(keys)
                if not found:
                    raise
                taken.update(found)
                news = [n for n in news if n.idempotency not in found]
        return 0, taken

    async def status(self, caller: Caller, email_id: str) -> EmailStatus:
        """An admin sees every email; a service caller only the emails it submitted (another's
        is a 404, as if it did not exist: ids must not be probed across callers)."""
        record = await self.store.get(email_id)
        if record is None or (caller.role != "admin" and record.caller != caller.user_id):
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
        caller: Caller,
        raw: bytes,
        key: str | None,
        uploads: Attachments | None,
        build: Callable[[_Taking], Awaitable[tuple[list[NewEmail], Reply]]],
    ) -> Reply:
        if key is None:
            taking = _Taking(caller, uploads, f"email:{uuid.uuid4()}")
            emails, reply, _ = await self._build_and_enqueue(taking, build, None)
            self._notify(len(emails))
            return reply
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            raise Invalid(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        who = caller.user_id
        body_hash = hashlib.sha256(raw).hexdigest()
        found = await self.store.idempotent_response(who, key)
        if found is not None:
            return _replay(found, body_hash)

        def record(reply: Reply) -> IdempotencyRecord:
            return IdempotencyRecord(who, key, body_hash, reply.status, reply.body.decode())

        # The ref follows the key: a concurrent or retried request takes the same uploads.
        taking = _Taking(caller, uploads, f"email:{who}:{key}")
        emails, reply, stored = await self._build_and_enqueue(taking, build, record)
        if stored is not None:
            return _replay(stored, body_hash)
        self._notify(len(emails))
        return reply

    async def _build_and_enqueue(
        self,
        taking: _Taking,
        build: Callable[[_Taking], Awaitable[tuple[list[NewEmail], Reply]]],
        record: Callable[[Reply], IdempotencyRecord] | None,
    ) -> tuple[list[NewEmail], Reply, StoredResponse | None]:
        """Build and store the emails; uploads taken for nothing are given back."""
        stored = None
        try:
            emails, reply = await build(taking)
            if record is None:
                await self.store.enqueue(emails)
            else:
                stored = await self.store.enqueue(emails, record(reply))
        except BaseException:
            await asyncio.shield(self._give_back(taking, taking.taken))
            raise
        await self._give_back(taking, taking.taken - taking.used)
        return emails, reply, stored

    async def _give_back(self, taking: _Taking, ids: Collection[str]) -> None:
        if ids and taking.uploads is not None:
            await taking.uploads.release_for_email(list(ids), taking.ref)

    def _notify(self, count: int) -> None:
        if count and self.on_enqueued is not None:
            self.on_enqueued(count, False)

    def flush(self) -> None:
        """Send what internal submits queued now, not after EMAIL_BATCH_TIMEOUT: their caller
        (a notification batch) has batched them already, and one alert to thousands of users
        would otherwise wait for the email batch to fill, up to 15 s per batch."""
        if self.on_enqueued is not None:
            self.on_enqueued(0, True)

    async def _new_emails(self, prepared: list[_Prepared], caller: str | None) -> list[NewEmail]:
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
                    caller=caller,
                    lane=LANE_BULK if p.category in BULK_CATEGORIES else LANE_MAIN,
                )
            )
        return rows

    # ---- validation and rendering ---------------------------------------------------

    def _prepare(
        self,
        request: SendEmail,
        *,
        locale: str | None = None,
        unsubscribe: Target | None = None,
        internal: bool = False,
    ) -> _Prepared:
        to = [request.to] if isinstance(request.to, str) else request.to
        recipients = [*to, *request.cc, *request.bcc]
        if len(recipients) > MAX_RECIPIENTS:
            raise Invalid(f"at most {MAX_RECIPIENTS} recipients in to, cc and bcc together")
        to_addresses = _addresses(to, "to")
        headers = {
            _header_name(name): _no_crlf(value, f"header {name}")
            for name, value in request.headers.items()
        }
        if not internal:
            unsubscribe = _api_unsubscribe(request, to_addresses, headers)
        link = None
        if unsubscribe is not None and self.unsubscribe is not None:
            link = self.unsubscribe.url(unsubscribe)
            headers.update(self.unsubscribe.headers(link))
        subject, html, text = self._content(request, locale or request.locale, link)
        return _Prepared(
            OutgoingEmail(
                id=str(uuid.uuid4()),
                from_email=self.from_email,
                from_name=self.from_name,
                subject=subject,
                to=to_addresses,
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

    async def _take(self, prepared: _Prepared, taking: _Taking) -> None:
        """Take the email's stored uploads (all or none) and check its size."""
        email = prepared.email
        ids = [a.stored_id for a in email.attachments if a.stored_id is not None]
        if ids:
            if taking.uploads is None:
                raise Invalid("attachments by id are not available on this server")
            rows = await taking.uploads.take_for_email(taking.caller, ids, taking.ref)
            taking.taken.update(row.id for row in rows)
            by_id = {row.id: row for row in rows}
            attachments = [
                a if a.stored_id is None else _stored(a, by_id[a.stored_id])
                for a in email.attachments
            ]
            email = msgspec.structs.replace(email, attachments=attachments)
        self._check_size(email)
        prepared.email = email
        taking.used.update(ids)

    def _check_size(self, email: OutgoingEmail) -> None:
        total = sum(a.byte_size for a in email.attachments)
        if total > MAX_ATTACHMENT_BYTES:
            raise Invalid(
                f"attachments are {total} bytes; at most {MAX_ATTACHMENT_BYTES} in one email"
            )
        if self.max_message_bytes is None or not email.attachments:
            return
        size = encoded_size(email, self.provider)
        if size > self.max_message_bytes:
            raise Invalid(
                f"the email would be about {size} bytes as {self.provider} counts it "
                f"(attachments grow by 4/3 in base64); at most {self.max_message_bytes} "
                "are accepted: send fewer or smaller attachments, or a link"
            )

    def _content(
        self, request: SendEmail, locale: str | None, unsubscribe_url: str | None
    ) -> tuple[str, str | None, str | None]:
        if request.template is not None:
            if request.html is not None or request.text is not None:
                raise Invalid("send either template with data, or html and/or text without one")
            try:
                rendered = self.renderer.render(
                    request.template,
                    request.data or {},
                    locale=locale,
                    unsubscribe_url=unsubscribe_url,
                )
            except TemplateError as exc:
                raise Invalid(str(exc)) from None
            # The seed's own requests name a subject beside the template: it wins.
            subject = rendered.subject
            if request.subject is not None:
                subject = _no_crlf(request.subject, "subject")
            return subject, rendered.html, rendered.text
        if request.data is not None:
            raise Invalid("data is only used with a template")
        if request.subject is None:
            raise Invalid("subject is required without a template")
        if request.html is None and request.text is None:
            raise Invalid("html or text is required without a template")
        return _no_crlf(request.subject, "subject"), request.html, request.text


def _api_unsubscribe(
    request: SendEmail, to: list[Address], headers: dict[str, str]
) -> Target | None:
    """What the unsubscribe link of an email sent through the API turns off: its one
    address (suppressed), unless the mail is critical (an NDA or investment template),
    has several recipients (one of them must not unsubscribe the others) or the caller
    set its own List-Unsubscribe."""
    if request.template in CRITICAL_TEMPLATES:
        return None
    if len(to) != 1 or request.cc or request.bcc:
        return None
    if any(name.lower().startswith("list-unsubscribe") for name in headers):
        return None
    return Target(e=to[0].email.lower())


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
    if name.lower() in _RESERVED_HEADERS or name.lower().startswith("resent-"):
        raise Invalid(f"header {name} is set by the service and cannot be given")
    return name


def _attachments(request: SendEmail) -> list[Attachment]:
    """Inline attachments decoded; stored ones as references that `_take` completes."""
    found: list[Attachment] = []
    for index, item in enumerate(request.attachments):
        where = f"attachments[{index}]"
        if (item.content is None) == (item.id is None):
            raise Invalid(
                f"{where}: give either content (base64) or id "
                "(an upload from POST /api/email/attachments), exactly one"
            )
        if item.filename is not None:
            _no_crlf(item.filename, f"{where}.filename")
        if item.content_type is not None:
            _no_crlf(item.content_type, f"{where}.contentType")
        if item.id is not None:
            found.append(
                Attachment(item.filename or "", item.content_type or "", stored_id=item.id)
            )
            continue
        if item.filename is None:
            raise Invalid(f"{where}: filename is required with content")
        try:
            content = base64.b64decode(item.content or "", validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(f"{where} {item.filename!r}: content must be base64") from None
        found.append(Attachment(item.filename, item.content_type or DEFAULT_CONTENT_TYPE, content))
    return found


def _stored(given: Attachment, row: AttachmentRow) -> Attachment:
    """A reference to a taken upload: its checked type, its name unless another is given."""
    if given.content_type and given.content_type != row.content_type:
        raise Invalid(
            f"attachment {row.id} is {row.content_type} (checked against its bytes); "
            f"contentType {given.content_type!r} does not match"
        )
    return Attachment(
        given.filename or row.filename, row.content_type, stored_id=row.id, size=row.size
    )


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
