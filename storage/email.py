"""The email outbox: accepted emails, claims with leases, outcomes, events, suppressions.

An email answered 202 is a row here first. Workers claim due rows for a lease
(``claim``); a lease that expires makes the row claimable again, and its history
then records that the email may already have gone out (the crash window).
Statuses only move forward (``delivery.webhooks.may_advance``), except the
worker's own ``sending -> queued`` when it schedules a retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from base.clock import iso
from schemas.delivery import DeliveryEvent, DeliveryStatus, may_advance
from storage.db import Database, IntegrityError
from storage.messages import now_ms
from storage.webhooks import record_events

S = DeliveryStatus
# Send lanes (see m0006): bulk mail (unread-message emails, digests) waits in a lane of its
# own, claimed after the main lane and paced by a budget of its own.
LANE_MAIN = "main"
LANE_BULK = "bulk"
LANES = (LANE_MAIN, LANE_BULK)
# Outgoing webhook event of each status an email may take (storage.webhooks).
WEBHOOK_EVENTS = {
    S.SENT: "email.sent",
    S.DELIVERED: "email.delivered",
    S.BOUNCED: "email.bounced",
    S.SPAM_REPORT: "email.complained",
    S.FAILED: "email.failed",
    S.OPENED: "email.opened",
    S.CLICKED: "email.clicked",
}
# Erased addresses are kept as this prefix and the SHA-256 of the lower-cased address.
HASH_PREFIX = "sha256:"
# Statuses of an email not handed to a provider yet: an erasure stops them.
_UNSENT = ("queued", "sending", "deferred")
# SQLite binds at most 999 parameters in older builds; chunks stay well below.
_CHUNK = 400


@dataclass(slots=True)
class NewEmail:
    id: str
    payload: str
    recipient: str
    status: str = S.QUEUED
    category: str | None = None
    idempotency: str | None = None
    event_detail: str | None = None
    # The API caller that submitted it (None: made by the service itself).
    caller: str | None = None
    lane: str = LANE_MAIN


@dataclass(slots=True)
class StoredResponse:
    body_hash: str
    status: int
    response: str


@dataclass(slots=True)
class IdempotencyRecord:
    caller: str
    key: str
    body_hash: str
    status: int
    response: str


@dataclass(slots=True)
class Claimed:
    id: str
    payload: str
    attempts: int
    retry_provider: str | None


@dataclass(slots=True)
class Outcome:
    """What one attempt ended in; ``status`` is sent, queued (retry later), failed or suppressed."""

    id: str
    status: str
    event: str
    detail: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    next_attempt_at: int = 0
    retry_provider: str | None = None
    # A retry that never reached a provider (rate limit, shutdown) gives its attempt back.
    refund_attempt: bool = False


@dataclass(slots=True)
class EmailEvent:
    type: str
    at: int
    detail: str | None


@dataclass(slots=True)
class EmailRecord:
    id: str
    status: str
    provider: str | None
    provider_message_id: str | None
    attempts: int
    last_error: str | None
    created_at: int
    caller: str | None = None
    events: list[EmailEvent] = field(default_factory=list)


@dataclass(slots=True)
class Suppression:
    email: str
    reason: str
    provider: str | None
    created_at: int


def _hook_data(email_id: str, provider: str | None, detail: str | None) -> dict[str, Any]:
    # Ids and the provider's words only: no address, subject or body leaves in a webhook.
    data: dict[str, Any] = {"emailId": email_id, "provider": provider}
    if detail:
        data["detail"] = detail
    return data


def address_hash(address: str) -> str:
    """The one-way form an erased address keeps (outbox history, suppression list)."""
    return HASH_PREFIX + hashlib.sha256(address.strip().lower().encode()).hexdigest()


def _redacted(payload: str, hashed: dict[str, str]) -> str:
    """A stored email without its content, its erased recipients replaced by their hash."""
    try:
        email = json.loads(payload)
    except ValueError:
        return "{}"
    if not isinstance(email, dict):
        return "{}"
    for field_name in ("to", "cc", "bcc"):
        people = email.get(field_name)
        if isinstance(people, list):
            email[field_name] = [
                {"email": hashed[p["email"].lower()]}
                if isinstance(p, dict) and str(p.get("email", "")).lower() in hashed
                else p
                for p in people
            ]
    email["subject"] = ""
    for field_name in ("html", "text"):
        email.pop(field_name, None)
    email["attachments"] = []
    email["headers"] = {}
    return json.dumps(email)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _row(e: NewEmail, now: int) -> tuple[Any, ...]:
    return (
        e.id,
        e.status,
        e.payload,
        e.recipient,
        e.category,
        now,
        e.idempotency,
        now,
        now,
        e.caller,
        e.lane,
    )


def _marks(count: int) -> str:
    return ", ".join("?" for _ in range(count))


class EmailStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- accepting -------------------------------------------------------------

    async def queue_stats(self) -> tuple[int, int | None]:
        """(emails waiting to be sent, created_at of the oldest), for the metrics."""
        row = await self.db.fetchrow(
            "SELECT COUNT(*), MIN(created_at) FROM emails WHERE status IN ('queued', 'sending')"
        )
        assert row is not None
        return int(row[0]), (int(row[1]) if row[1] is not None else None)

    async def enqueue(
        self, emails: Sequence[NewEmail], idempotency: IdempotencyRecord | None = None
    ) -> StoredResponse | None:
        """Store every email in one transaction. With an idempotency record, a key
        already stored wins: its response comes back and nothing is inserted."""
        try:
            return await self._enqueue(emails, idempotency)
        except IntegrityError:
            if idempotency is None:
                raise
            # Another request stored the same key between our lookup and our insert.
            found = await self.idempotent_response(idempotency.caller, idempotency.key)
            if found is None:
                raise
            return found

    async def _enqueue(
        self, emails: Sequence[NewEmail], idem: IdempotencyRecord | None
    ) -> StoredResponse | None:
        now = now_ms()
        async with self.db.transaction() as tx:
            if idem is not None:
                row = await tx.fetchrow(
                    "SELECT body_hash, status, response FROM email_idempotency "
                    "WHERE caller = ? AND idem_key = ?",
                    idem.caller,
                    idem.key,
                )
                if row is not None:
                    return StoredResponse(row[0], int(row[1]), row[2])
            if emails:
                await tx.executemany(
                    "INSERT INTO emails (id, status, payload, recipient, category, "
                    "next_attempt_at, idempotency, created_at, updated_at, caller, lane) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [_row(e, now) for e in emails],
                )
                await tx.executemany(
                    "INSERT INTO email_events (email_id, type, at, detail) VALUES (?, ?, ?, ?)",
                    [(e.id, e.status, now, e.event_detail) for e in emails],
                )
            if idem is not None:
                await tx.execute(
                    "INSERT INTO email_idempotency (caller, idem_key, body_hash, status, "
                    "response, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    idem.caller,
                    idem.key,
                    idem.body_hash,
                    idem.status,
                    idem.response,
                    now,
                )
        return None

    async def idempotent_response(self, caller: str, key: str) -> StoredResponse | None:
        row = await self.db.fetchrow(
            "SELECT body_hash, status, response FROM email_idempotency "
            "WHERE caller = ? AND idem_key = ?",
            caller,
            key,
        )
        return StoredResponse(row[0], int(row[1]), row[2]) if row else None

    async def purge_idempotency(self, older_than_ms: int) -> int:
        return await self.db.execute(
            "DELETE FROM email_idempotency WHERE created_at < ?", older_than_ms
        )

    async def find_by_idempotency(self, keys: Iterable[str]) -> dict[str, str]:
        """The email id stored under each of `keys` that has one."""
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(set(keys))):
            rows = await self.db.fetch(
                f"SELECT idempotency, id FROM emails WHERE idempotency IN ({_marks(len(chunk))})",
                *chunk,
            )
            found.update((row[0], row[1]) for row in rows)
        return found

    # ---- claiming --------------------------------------------------------------

    async def claim(
        self, worker: str, limit: int, lease_seconds: float, lane: str = LANE_MAIN
    ) -> list[Claimed]:
        """Claim up to ``limit`` due emails of ``lane`` for ``lease_seconds``; attempts count
        at claim, so an email that kills its worker every time still runs out of attempts."""
        now = now_ms()
        expires = now + int(lease_seconds * 1000)
        async with self.db.transaction() as tx:
            if self.db.dialect == "postgres":
                rows = await tx.fetch(
                    "WITH picked AS (SELECT id, status AS old_status, claimed_by AS old_claim "
                    "FROM emails WHERE lane = ? AND ((status = 'queued' AND next_attempt_at <= ?) "
                    "OR (status = 'sending' AND claim_expires_at <= ?)) "
                    "ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED) "
                    "UPDATE emails e SET status = 'sending', claimed_by = ?, "
                    "claim_expires_at = ?, attempts = e.attempts + 1, updated_at = ? "
                    "FROM picked WHERE e.id = picked.id "
                    "RETURNING e.id, e.payload, e.attempts, e.retry_provider, "
                    "picked.old_status, picked.old_claim",
                    lane,
                    now,
                    now,
                    limit,
                    worker,
                    expires,
                    now,
                )
            else:
                picked = await tx.fetch(
                    "SELECT id, status, claimed_by FROM emails "
                    "WHERE lane = ? AND ((status = 'queued' AND next_attempt_at <= ?) "
                    "OR (status = 'sending' AND claim_expires_at <= ?)) "
                    "ORDER BY next_attempt_at LIMIT ?",
                    lane,
                    now,
                    now,
                    limit,
                )
                if not picked:
                    return []
                old = {row[0]: (row[1], row[2]) for row in picked}
                updated = await tx.fetch(
                    "UPDATE emails SET status = 'sending', claimed_by = ?, "
                    "claim_expires_at = ?, attempts = attempts + 1, updated_at = ? "
                    f"WHERE id IN ({_marks(len(old))}) "
                    "RETURNING id, payload, attempts, retry_provider",
                    worker,
                    expires,
                    now,
                    *old,
                )
                rows = [(*row, *old[row[0]]) for row in updated]
            expired = [
                (row[0], "lease_expired", now, f"claim by {row[5]} expired; it may have been sent")
                for row in rows
                if row[4] == S.SENDING
            ]
            if expired:
                await tx.executemany(
                    "INSERT INTO email_events (email_id, type, at, detail) VALUES (?, ?, ?, ?)",
                    expired,
                )
        return [Claimed(row[0], row[1], int(row[2]), row[3]) for row in rows]

    async def next_due(self, after: int) -> int | None:
        """When the earliest queued email due later than ``after`` (a retry) becomes due."""
        row = await self.db.fetchrow(
            "SELECT MIN(next_attempt_at) FROM emails WHERE status = 'queued' "
            "AND next_attempt_at > ?",
            after,
        )
        return int(row[0]) if row and row[0] is not None else None

    # ---- outcomes --------------------------------------------------------------

    async def record(self, worker: str, outcomes: Sequence[Outcome]) -> None:
        """Record many attempts in one transaction (group commit)."""
        now = now_ms()
        async with self.db.transaction() as tx:
            hooks: list[tuple[str, dict[str, Any]]] = []
            for outcome in outcomes:
                changed = await self._record(tx, worker, outcome, now)
                hook = WEBHOOK_EVENTS.get(S(outcome.status)) if changed else None
                if hook is not None:
                    hooks.append((hook, _hook_data(outcome.id, outcome.provider, outcome.detail)))
            # In the outcome's own transaction: the event exists exactly when the status does.
            await record_events(tx, hooks, now)
            await tx.executemany(
                "INSERT INTO email_events (email_id, type, at, detail) VALUES (?, ?, ?, ?)",
                [(o.id, o.event, now, o.detail) for o in outcomes],
            )

    async def _record(self, tx: Any, worker: str, o: Outcome, now: int) -> bool:
        """Apply one outcome; False when it changed nothing (another claim owns the row)."""
        if o.status == S.SENT:
            # A webhook may already have moved it further (delivered): keep that status.
            changed: int = await tx.execute(
                "UPDATE emails SET status = CASE WHEN status IN ('queued', 'sending') "
                "THEN 'sent' ELSE status END, provider = ?, provider_message_id = ?, "
                "retry_provider = NULL, last_error = NULL, "
                "claimed_by = CASE WHEN claimed_by = ? THEN NULL ELSE claimed_by END, "
                "claim_expires_at = CASE WHEN claimed_by = ? THEN NULL ELSE claim_expires_at END, "
                "updated_at = ? WHERE id = ?",
                o.provider,
                o.provider_message_id,
                worker,
                worker,
                now,
                o.id,
            )
            return changed > 0
        # Only our own live claim is rescheduled or ended: if a webhook already reported
        # delivery (after an ambiguous timeout), the email is not sent again.
        changed = await tx.execute(
            "UPDATE emails SET status = ?, last_error = COALESCE(?, last_error), "
            "provider = COALESCE(?, provider), retry_provider = ?, next_attempt_at = ?, "
            "attempts = attempts - ?, claimed_by = NULL, claim_expires_at = NULL, "
            "updated_at = ? WHERE id = ? AND status = 'sending' AND claimed_by = ?",
            o.status,
            o.detail if o.status != S.QUEUED or not o.refund_attempt else None,
            o.provider,
            o.retry_provider,
            o.next_attempt_at or now,
            1 if o.refund_attempt else 0,
            now,
            o.id,
            worker,
        )
        return changed > 0

    # ---- status and provider events --------------------------------------------

    async def get(self, email_id: str) -> EmailRecord | None:
        row = await self.db.fetchrow(
            "SELECT id, status, provider, provider_message_id, attempts, last_error, created_at, "
            "caller FROM emails WHERE id = ?",
            email_id,
        )
        if row is None:
            return None
        events = await self.db.fetch(
            "SELECT type, at, detail FROM email_events WHERE email_id = ? ORDER BY seq",
            email_id,
        )
        return EmailRecord(
            id=row[0],
            status=row[1],
            provider=row[2],
            provider_message_id=row[3],
            attempts=int(row[4]),
            last_error=row[5],
            created_at=int(row[6]),
            caller=row[7],
            events=[EmailEvent(e[0], int(e[1]), e[2]) for e in events],
        )

    async def apply_event(self, event: DeliveryEvent) -> bool:
        """Record a provider event once; move the status forward only; suppress if asked.

        Returns False for a duplicate (or an email we do not know)."""
        now = now_ms()
        async with self.db.transaction() as tx:
            row = await self._find_for_event(tx, event)
            if event.suppress:
                # An erased user's email keeps only the hash of the address: so does its
                # suppression, when the provider reports on it later.
                erased = row is not None and row[2].startswith(HASH_PREFIX)
                await tx.execute(
                    "INSERT INTO email_suppressions (email, reason, provider, created_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
                    address_hash(event.recipient) if erased else event.recipient.lower(),
                    (event.bounce_type and f"{event.kind}:{event.bounce_type}") or event.kind,
                    event.provider,
                    now,
                )
            if row is None:
                return False
            email_id, current, _ = row
            inserted = await tx.execute(
                "INSERT INTO email_events (email_id, type, at, detail, dedupe_key) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
                email_id,
                event.status or event.kind,
                int(event.occurred_at * 1000),
                event.detail,
                event.dedupe_key or None,
            )
            if not inserted:
                return False
            if event.status is not None and may_advance(S(current), event.status):
                await tx.execute(
                    "UPDATE emails SET status = ?, updated_at = ? WHERE id = ?",
                    event.status,
                    now,
                    email_id,
                )
            # Every first report of an outcome, even one that does not move the status
            # (an open after a click): the platform sees what the provider saw.
            hook = WEBHOOK_EVENTS.get(event.status) if event.status is not None else None
            if hook is not None:
                data = _hook_data(email_id, event.provider, event.detail)
                data["occurredAt"] = iso(int(event.occurred_at * 1000))
                await record_events(tx, [(hook, data)], now)
        return True

    async def _find_for_event(self, tx: Any, event: DeliveryEvent) -> tuple[str, str, str] | None:
        """(id, status, recipient) of the email an event is about."""
        if event.email_id:
            row = await tx.fetchrow(
                "SELECT id, status, recipient FROM emails WHERE id = ?", event.email_id
            )
            if row is not None:
                return row[0], row[1], row[2]
        if event.provider_message_id:
            row = await tx.fetchrow(
                "SELECT id, status, recipient FROM emails WHERE provider_message_id = ? "
                "AND provider = ?",
                event.provider_message_id,
                event.provider,
            )
            if row is not None:
                return row[0], row[1], row[2]
        return None

    # ---- suppressions ----------------------------------------------------------

    async def suppressed(self, addresses: Iterable[str]) -> set[str]:
        """Which of `addresses` (lower-cased) are suppressed, as themselves or, for an
        erased user's address, as its hash."""
        wanted = sorted({a.lower() for a in addresses})
        by_key = {key: a for a in wanted for key in (a, address_hash(a))}
        found: set[str] = set()
        for chunk in _chunks(sorted(by_key)):
            rows = await self.db.fetch(
                f"SELECT email FROM email_suppressions WHERE email IN ({_marks(len(chunk))})",
                *chunk,
            )
            found.update(by_key[row[0]] for row in rows)
        return found

    async def suppress(self, email: str, reason: str, provider: str | None = None) -> None:
        await self.db.execute(
            "INSERT INTO email_suppressions (email, reason, provider, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
            email.lower(),
            reason,
            provider,
            now_ms(),
        )

    async def suppressions(self, after: str | None, limit: int) -> list[Suppression]:
        rows = await self.db.fetch(
            "SELECT email, reason, provider, created_at FROM email_suppressions "
            "WHERE email > ? ORDER BY email LIMIT ?",
            after or "",
            limit,
        )
        return [Suppression(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def unsuppress(self, email: str) -> bool:
        removed = await self.db.execute(
            "DELETE FROM email_suppressions WHERE email IN (?, ?)",
            email.lower(),
            address_hash(email),
        )
        return removed > 0

    # ---- a user's data (export and erasure) -------------------------------------

    async def _ids_of(
        self, user_id: str, addresses: Sequence[str], after: str, limit: int
    ) -> list[str]:
        """Emails to any of the addresses, or made for the user's notifications, by id."""
        marks = _marks(len(addresses)) if addresses else "NULL"
        rows = await self.db.fetch(
            f"SELECT id FROM emails WHERE id > ? AND (LOWER(recipient) IN ({marks}) "
            "OR id IN (SELECT email_id FROM notifications WHERE user_id = ? "
            "AND email_id IS NOT NULL)) ORDER BY id LIMIT ?",
            after,
            *[a.lower() for a in addresses],
            user_id,
            limit,
        )
        return [row[0] for row in rows]

    async def emails_of(
        self, user_id: str, addresses: Sequence[str], after: str, limit: int
    ) -> list[dict[str, Any]]:
        """The user's emails after id `after`: what was sent and every status it went through."""
        found = []
        for email_id in await self._ids_of(user_id, addresses, after, limit):
            row = await self.db.fetchrow(
                "SELECT id, status, recipient, category, provider, created_at, payload "
                "FROM emails WHERE id = ?",
                email_id,
            )
            if row is None:
                continue
            try:
                payload = json.loads(row[6])
            except ValueError:
                payload = {}
            events = await self.db.fetch(
                "SELECT type, at, detail FROM email_events WHERE email_id = ? ORDER BY seq",
                email_id,
            )
            found.append(
                {
                    "id": row[0],
                    "status": row[1],
                    "to": row[2],
                    "category": row[3],
                    "provider": row[4],
                    "createdAt": iso(int(row[5])),
                    "subject": payload.get("subject") if isinstance(payload, dict) else None,
                    "history": [
                        {"status": e[0], "at": iso(int(e[1])), "detail": e[2]} for e in events
                    ],
                }
            )
        return found

    async def erase_user(self, user_id: str, addresses: Sequence[str]) -> None:
        """The user's emails keep their history with the address replaced by its hash and
        the content dropped; those not sent yet never will be; a suppression of the address
        becomes a suppression of its hash (a bounced address stays suppressed)."""
        hashed = {a.lower(): address_hash(a) for a in addresses}
        now = now_ms()
        after = ""
        while True:
            ids = await self._ids_of(user_id, list(hashed), after, _CHUNK)
            if not ids:
                break
            after = ids[-1]
            async with self.db.transaction() as tx:
                for email_id in ids:
                    row = await tx.fetchrow(
                        "SELECT recipient, payload, status FROM emails WHERE id = ?", email_id
                    )
                    if row is None:
                        continue
                    recipient = row[0]
                    if not recipient.startswith(HASH_PREFIX):  # not erased by an earlier run
                        recipient = hashed.get(recipient.lower(), address_hash(recipient))
                    if row[2] in _UNSENT:
                        await tx.execute(
                            "INSERT INTO email_events (email_id, type, at, detail) "
                            "VALUES (?, ?, ?, ?)",
                            email_id,
                            S.SUPPRESSED,
                            now,
                            "recipient erased",
                        )
                    await tx.execute(
                        "UPDATE emails SET recipient = ?, payload = ?, last_error = NULL, "
                        "status = CASE WHEN status IN (?, ?, ?) THEN ? ELSE status END, "
                        "updated_at = ? WHERE id = ?",
                        recipient,
                        _redacted(row[1], {**hashed, row[0].lower(): recipient}),
                        *_UNSENT,
                        S.SUPPRESSED,
                        now,
                        email_id,
                    )
                    # Event details may quote an address ("suppressed: a@b.c").
                    await tx.execute(
                        "UPDATE email_events SET detail = NULL WHERE email_id = ? "
                        "AND detail LIKE '%@%'",
                        email_id,
                    )
        async with self.db.transaction() as tx:
            for address, digest in hashed.items():
                row = await tx.fetchrow(
                    "SELECT reason, provider, created_at FROM email_suppressions WHERE email = ?",
                    address,
                )
                if row is None:
                    continue
                await tx.execute(
                    "INSERT INTO email_suppressions (email, reason, provider, created_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
                    digest,
                    row[0],
                    row[1],
                    row[2],
                )
                await tx.execute("DELETE FROM email_suppressions WHERE email = ?", address)

    # ---- development -----------------------------------------------------------

    async def recent_by_provider(self, provider: str, limit: int) -> list[tuple[str, str, str]]:
        """(id, status, payload) of the newest emails a provider took, newest first."""
        rows = await self.db.fetch(
            "SELECT id, status, payload FROM emails WHERE provider = ? "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            provider,
            limit,
        )
        return [(r[0], r[1], r[2]) for r in rows]
