"""Outgoing webhooks: endpoints, the event outbox and its deliveries, attempts.

`record_events` is called inside the transaction of the change that caused the events
(an email's status, a notification, a batch of messages), so an event exists exactly when
its change was committed. It writes one delivery row per enabled endpoint subscribed to
the event's type; with no such endpoint it writes nothing (one small read).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from base.clock import iso
from storage.db import Connection, Database
from storage.plan import Fetch, Plan, WriteMany, run_plan

_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class EndpointRow:
    id: str
    url: str
    description: str | None
    events: list[str]
    secret: str
    old_secret: str | None
    old_secret_until: int | None
    enabled: bool
    failing_since: int | None
    disabled_reason: str | None
    created_at: int
    updated_at: int


@dataclass(slots=True)
class Due:
    """One delivery claimed for an attempt, with what signing and sending it needs."""

    endpoint_id: str
    event_id: str
    attempt: int
    url: str
    body: bytes
    secrets: list[str]


@dataclass(slots=True)
class AttemptRow:
    event_id: str
    type: str
    attempt: int
    at: int
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


_ENDPOINT_COLUMNS = (
    "id, url, description, events, secret, old_secret, old_secret_until, enabled, "
    "failing_since, disabled_reason, created_at, updated_at"
)


def _events_column(events: Sequence[str]) -> str:
    return "," + ",".join(sorted(set(events))) + ","


def _endpoint(row: Any) -> EndpointRow:
    return EndpointRow(
        id=row[0],
        url=row[1],
        description=row[2],
        events=[e for e in row[3].split(",") if e],
        secret=row[4],
        old_secret=row[5],
        old_secret_until=int(row[6]) if row[6] is not None else None,
        enabled=bool(row[7]),
        failing_since=int(row[8]) if row[8] is not None else None,
        disabled_reason=row[9],
        created_at=int(row[10]),
        updated_at=int(row[11]),
    )


def new_event_id() -> str:
    return "msg_" + uuid.uuid4().hex


def event_body(event_id: str, type_: str, data: dict[str, Any], now: int) -> bytes:
    # The Standard Webhooks payload shape: type, timestamp, data. The id travels in the
    # `webhook-id` header; it is repeated here for receivers that log bodies only.
    return _encode({"id": event_id, "type": type_, "timestamp": iso(now), "data": data})


async def record_events(
    tx: Connection, events: Sequence[tuple[str, dict[str, Any]]], now: int
) -> None:
    """Queue `events` ((type, data) pairs) for every enabled endpoint subscribed to them,
    in the caller's transaction."""
    await run_plan(tx, record_events_plan(events, now))


def record_events_plan(events: Sequence[tuple[str, dict[str, Any]]], now: int) -> Plan[None]:
    """`record_events` as part of a plan (storage/plan.py)."""
    if not events:
        return
    endpoints = yield Fetch("SELECT id, events FROM webhook_endpoints WHERE enabled = 1")
    if not endpoints:
        return
    rows: list[tuple[Any, ...]] = []
    deliveries: list[tuple[Any, ...]] = []
    for type_, data in events:
        wanted = [row[0] for row in endpoints if f",{type_}," in row[1]]
        if not wanted:
            continue
        event_id = new_event_id()
        rows.append((event_id, type_, event_body(event_id, type_, data, now).decode(), now))
        deliveries += [(endpoint_id, event_id, now, now, now) for endpoint_id in wanted]
    if rows:
        yield WriteMany(
            "INSERT INTO webhook_events (id, type, body, created_at) VALUES (?, ?, ?, ?)", rows
        )
        yield WriteMany(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at, "
            "created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?)",
            deliveries,
        )


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- endpoints -------------------------------------------------------------

    async def create(
        self,
        id_: str,
        url: str,
        events: Sequence[str],
        description: str | None,
        secret: str,
        now: int,
    ) -> EndpointRow:
        await self.db.execute(
            f"INSERT INTO webhook_endpoints ({_ENDPOINT_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, NULL, NULL, 1, NULL, NULL, ?, ?)",
            id_,
            url,
            description,
            _events_column(events),
            secret,
            now,
            now,
        )
        found = await self.get(id_)
        assert found is not None
        return found

    async def get(self, id_: str) -> EndpointRow | None:
        row = await self.db.fetchrow(
            f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?", id_
        )
        return _endpoint(row) if row else None

    async def all(self) -> list[EndpointRow]:
        rows = await self.db.fetch(
            f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
        )
        return [_endpoint(r) for r in rows]

    async def update(
        self,
        id_: str,
        now: int,
        url: str | None,
        events: Sequence[str] | None,
        enabled: bool | None,
        description: str | None,
    ) -> bool:
        # Re-enabling clears the failure run, so the endpoint gets a fresh 5 days.
        changed = await self.db.execute(
            "UPDATE webhook_endpoints SET url = COALESCE(?, url), events = COALESCE(?, events), "
            "description = COALESCE(?, description), enabled = COALESCE(?, enabled), "
            "failing_since = CASE WHEN ? = 1 THEN NULL ELSE failing_since END, "
            "disabled_reason = CASE WHEN ? = 1 THEN NULL ELSE disabled_reason END, "
            "updated_at = ? WHERE id = ?",
            url,
            _events_column(events) if events is not None else None,
            description,
            None if enabled is None else int(enabled),
            int(enabled is True),
            int(enabled is True),
            now,
            id_,
        )
        return changed > 0

    async def delete(self, id_: str) -> bool:
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", id_)
            await tx.execute("DELETE FROM webhook_attempts WHERE endpoint_id = ?", id_)
            removed: int = await tx.execute("DELETE FROM webhook_endpoints WHERE id = ?", id_)
        return removed > 0

    async def rotate(self, id_: str, secret: str, old_until: int, now: int) -> bool:
        changed = await self.db.execute(
            "UPDATE webhook_endpoints SET old_secret = secret, old_secret_until = ?, "
            "secret = ?, updated_at = ? WHERE id = ?",
            old_until,
            secret,
            now,
            id_,
        )
        return changed > 0

    async def enqueue_test(
        self, endpoint_id: str, type_: str, data: dict[str, Any], now: int
    ) -> str:
        event_id = new_event_id()
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO webhook_events (id, type, body, created_at) VALUES (?, ?, ?, ?)",
                event_id,
                type_,
                event_body(event_id, type_, data, now).decode(),
                now,
            )
            await tx.execute(
                "INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at, "
                "created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?)",
                endpoint_id,
                event_id,
                now,
                now,
                now,
            )
        return event_id

    # ---- sending ---------------------------------------------------------------

    async def claim(self, now: int, limit: int, lease_ms: int) -> list[Due]:
        """Claim due deliveries of enabled endpoints by moving them past a lease: a worker
        that dies leaves them due again when the lease ends. Two workers racing for one
        row: the conditional update lets exactly one win."""
        rows = await self.db.fetch(
            "SELECT d.endpoint_id, d.event_id, d.attempts, d.next_attempt_at, e.url, e.secret, "
            "e.old_secret, e.old_secret_until, ev.body FROM webhook_deliveries d "
            "JOIN webhook_endpoints e ON e.id = d.endpoint_id "
            "JOIN webhook_events ev ON ev.id = d.event_id "
            "WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND e.enabled = 1 "
            "ORDER BY d.next_attempt_at LIMIT ?",
            now,
            limit,
        )
        claimed: list[Due] = []
        for row in rows:
            won = await self.db.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE endpoint_id = ? AND event_id = ? AND status = 'pending' "
                "AND next_attempt_at = ?",
                now + lease_ms,
                now,
                row[0],
                row[1],
                row[3],
            )
            if not won:
                continue
            secrets = [row[5]]
            if row[6] and row[7] is not None and int(row[7]) > now:
                secrets.append(row[6])
            claimed.append(Due(row[0], row[1], int(row[2]) + 1, row[4], row[8].encode(), secrets))
        return claimed

    async def finish(
        self,
        due: Due,
        now: int,
        ok: bool,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        retry_at: int,
        disable_after_ms: int,
    ) -> bool:
        """Record one attempt; returns True when this failure disabled the endpoint."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO webhook_attempts (endpoint_id, event_id, attempt, at, ok, "
                "status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                due.endpoint_id,
                due.event_id,
                due.attempt,
                now,
                int(ok),
                status_code,
                error,
                duration_ms,
            )
            if ok:
                await tx.execute(
                    "UPDATE webhook_deliveries SET status = 'delivered', updated_at = ? "
                    "WHERE endpoint_id = ? AND event_id = ?",
                    now,
                    due.endpoint_id,
                    due.event_id,
                )
                await tx.execute(
                    "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?",
                    due.endpoint_id,
                )
                return False
            await tx.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ? "
                "WHERE endpoint_id = ? AND event_id = ? AND status = 'pending'",
                retry_at,
                now,
                due.endpoint_id,
                due.event_id,
            )
            await tx.execute(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?) "
                "WHERE id = ?",
                now,
                due.endpoint_id,
            )
            disabled: int = await tx.execute(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? "
                "WHERE id = ? AND enabled = 1 AND failing_since <= ?",
                "failing for too long",
                now,
                due.endpoint_id,
                now - disable_after_ms,
            )
        return disabled > 0

    async def attempts(self, endpoint_id: str, limit: int) -> list[AttemptRow]:
        rows = await self.db.fetch(
            "SELECT a.event_id, ev.type, a.attempt, a.at, a.ok, a.status_code, a.error, "
            "a.duration_ms FROM webhook_attempts a JOIN webhook_events ev ON ev.id = a.event_id "
            "WHERE a.endpoint_id = ? ORDER BY a.at DESC, a.attempt DESC LIMIT ?",
            endpoint_id,
            limit,
        )
        return [
            AttemptRow(r[0], r[1], int(r[2]), int(r[3]), bool(r[4]), r[5], r[6], int(r[7]))
            for r in rows
        ]

    async def purge(self, older_than: int) -> None:
        """Forget attempts and delivered events older than `older_than` (epoch ms)."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM webhook_attempts WHERE at < ?", older_than)
            await tx.execute(
                "DELETE FROM webhook_deliveries WHERE status = 'delivered' AND updated_at < ?",
                older_than,
            )
            await tx.execute(
                "DELETE FROM webhook_events WHERE created_at < ? AND NOT EXISTS "
                "(SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
                older_than,
            )
