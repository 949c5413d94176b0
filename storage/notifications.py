"""Notifications, preferences, the email job queue, unread-message marks, digests and leases."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from base.clock import iso
from storage.db import Connection, Database, IntegrityError, Row
from storage.push import QueuedPush, queue_for_user
from storage.webhooks import record_events

# Email status of a notification (the `email_status` column).
FOLDED = "folded"
DIGEST_PREFIX = "digest_"
FOLD_CATEGORY = "fold"

_NOTIFICATION_COLUMNS = (
    "id, user_id, type, title, message, data, priority, created_at, read_at, email_status, in_app"
)
_JOB_COLUMNS = "id, user_id, notification_id, template, data, category, dedupe_key, attempts"


@dataclass(slots=True)
class NotificationRow:
    id: str
    user_id: str
    type: str
    title: str
    message: str
    data: dict[str, Any] | None
    priority: str
    created_at: int
    read_at: int | None = None
    email_status: str = "none"
    in_app: bool = True


@dataclass(slots=True)
class JobRow:
    id: str
    user_id: str
    notification_id: str | None
    template: str
    data: dict[str, Any]
    category: str
    dedupe_key: str
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class FinishedJob:
    """How an email job ended: `status` sent (`result` is the email id), skipped or failed
    (`result` says why); its notifications' email status becomes `email_status`."""

    job_id: str
    status: str
    result: str | None
    notification_ids: Sequence[str]
    email_status: str


@dataclass(frozen=True, slots=True)
class PreferenceRow:
    type: str
    in_app: bool
    email: bool
    frequency: str
    # None: stored before the push channel existed; the type's default applies.
    push: bool | None = None


@dataclass(frozen=True, slots=True)
class UserSettingsRow:
    quiet_start: int | None
    quiet_end: int | None
    timezone: str | None


@dataclass(frozen=True, slots=True)
class UnreadCandidate:
    user_id: str
    conversation_id: str
    from_seq: int  # first seq not yet read nor emailed
    last_seq: int


def _notification(row: Row) -> NotificationRow:
    return NotificationRow(
        id=row[0],
        user_id=row[1],
        type=row[2],
        title=row[3],
        message=row[4],
        data=json.loads(row[5]) if row[5] else None,
        priority=row[6],
        created_at=int(row[7]),
        read_at=int(row[8]) if row[8] is not None else None,
        email_status=row[9],
        in_app=bool(row[10]),
    )


def _job(row: Row) -> JobRow:
    return JobRow(
        id=row[0],
        user_id=row[1],
        notification_id=row[2],
        template=row[3],
        data=json.loads(row[4]),
        category=row[5],
        dedupe_key=row[6],
        attempts=int(row[7]),
    )


def _read_event(user_id: str, notification_id: str) -> tuple[str, dict[str, Any]]:
    return ("notification.read", {"notificationId": notification_id, "userId": user_id})


async def _insert_job(tx: Connection, job: JobRow, due_at: int, now: int) -> None:
    await tx.execute(
        "INSERT INTO notification_jobs (id, user_id, notification_id, template, data, category, "
        "dedupe_key, status, due_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
        job.id,
        job.user_id,
        job.notification_id,
        job.template,
        json.dumps(job.data),
        job.category,
        job.dedupe_key,
        due_at,
        now,
        now,
    )


class NotificationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- inbox -------------------------------------------------------------

    async def queue_stats(self) -> tuple[int, int | None]:
        """(email jobs waiting, created_at of the oldest), for the metrics."""
        row = await self.db.fetchrow(
            "SELECT COUNT(*), MIN(created_at) FROM notification_jobs WHERE status = 'pending'"
        )
        assert row is not None
        return int(row[0]), (int(row[1]) if row[1] is not None else None)

    async def insert(
        self,
        rows: Sequence[NotificationRow],
        jobs: Sequence[tuple[JobRow, int]],
        folds: Sequence[tuple[JobRow, int]],
        now: int,
        pushes: Sequence[QueuedPush] = (),
    ) -> dict[str, int]:
        """Store notifications, their email jobs and pushes in one transaction: accepted
        means stored.

        `folds` are fold jobs, inserted only if the user has no pending one already.
        Returns the in-app unread count of each recipient, counted in the same transaction
        so it always includes what was just stored (a count read afterwards on the other
        connection was seen to miss it once under load).
        """
        async with self.db.transaction() as tx:
            if rows:
                await tx.executemany(
                    f"INSERT INTO notifications ({_NOTIFICATION_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            r.id,
                            r.user_id,
                            r.type,
                            r.title,
                            r.message,
                            json.dumps(r.data) if r.data is not None else None,
                            r.priority,
                            r.created_at,
                            r.read_at,
                            r.email_status,
                            int(r.in_app),
                        )
                        for r in rows
                    ],
                )
            # Outgoing webhooks, committed with the notifications (metadata, no text).
            await record_events(
                tx,
                [
                    (
                        "notification.created",
                        {
                            "notificationId": r.id,
                            "userId": r.user_id,
                            "type": r.type,
                            "priority": r.priority,
                        },
                    )
                    for r in rows
                ],
                now,
            )
            for job, due_at in jobs:
                await _insert_job(tx, job, due_at, now)
            for job, due_at in folds:
                pending = await tx.fetchrow(
                    "SELECT id FROM notification_jobs WHERE user_id = ? AND category = ? "
                    "AND status = 'pending'",
                    job.user_id,
                    FOLD_CATEGORY,
                )
                if pending is None:
                    await _insert_job(tx, job, due_at, now)
            for push in pushes:
                await queue_for_user(tx, push, now)
            return await self.unread_counts([r.user_id for r in rows if r.in_app], tx)

    async def unread_counts(
        self, user_ids: Sequence[str], conn: Connection | None = None
    ) -> dict[str, int]:
        counts = dict.fromkeys(user_ids, 0)
        ids = sorted(set(user_ids))
        for start in range(0, len(ids), 400):
            chunk = ids[start : start + 400]
            marks = ", ".join("?" for _ in chunk)
            for user_id, count in await (conn or self.db).fetch(
                "SELECT user_id, COUNT(*) FROM notifications "
                f"WHERE user_id IN ({marks}) AND in_app = 1 AND read_at IS NULL GROUP BY user_id",
                *chunk,
            ):
                counts[user_id] = int(count)
        return counts

    async def unread_count(self, user_id: str) -> int:
        return (await self.unread_counts([user_id]))[user_id]

    async def page(
        self, user_id: str, unread_only: bool, before: tuple[int, str] | None, limit: int
    ) -> list[NotificationRow]:
        """Newest first; `before` is the (created_at, id) keyset cursor."""
        clauses = ["user_id = ?", "in_app = 1"]
        args: list[Any] = [user_id]
        if unread_only:
            clauses.append("read_at IS NULL")
        if before is not None:
            clauses.append("(created_at < ? OR (created_at = ? AND id < ?))")
            args += [before[0], before[0], before[1]]
        rows = await self.db.fetch(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE {' AND '.join(clauses)} "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            *args,
            limit,
        )
        return [_notification(r) for r in rows]

    async def get_many(self, ids: Sequence[str]) -> list[NotificationRow]:
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = await self.db.fetch(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE id IN ({marks}) "
            "ORDER BY created_at, id",
            *ids,
        )
        return [_notification(r) for r in rows]

    async def mark_read(self, user_id: str, notification_id: str, now: int) -> bool | None:
        """True if it became read, False if it already was, None if the user has no such one."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE notifications SET read_at = ? WHERE id = ? AND user_id = ? "
                "AND in_app = 1 AND read_at IS NULL",
                now,
                notification_id,
                user_id,
            )
            if changed:
                await record_events(tx, [_read_event(user_id, notification_id)], now)
        if changed:
            return True
        row = await self.db.fetchrow(
            "SELECT 1 FROM notifications WHERE id = ? AND user_id = ? AND in_app = 1",
            notification_id,
            user_id,
        )
        return False if row else None

    async def mark_all_read(self, user_id: str, now: int) -> int:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "UPDATE notifications SET read_at = ? WHERE user_id = ? AND in_app = 1 "
                "AND read_at IS NULL RETURNING id",
                now,
                user_id,
            )
            await record_events(tx, [_read_event(user_id, row[0]) for row in rows], now)
        return len(rows)

    async def received_types(self, user_id: str, types: Sequence[str]) -> set[str]:
        """Which of `types` the user has been sent at least one notification of."""
        if not types:
            return set()
        marks = ", ".join("?" for _ in types)
        rows = await self.db.fetch(
            f"SELECT DISTINCT type FROM notifications WHERE user_id = ? AND type IN ({marks})",
            user_id,
            *types,
        )
        return {row[0] for row in rows}

    async def preferences(self, user_id: str) -> tuple[list[PreferenceRow], UserSettingsRow]:
        rows = await self.db.fetch(
            "SELECT type, in_app, email, frequency, push FROM notification_preferences "
            "WHERE user_id = ? ORDER BY type",
            user_id,
        )
        settings = await self.db.fetchrow(
            "SELECT s.quiet_start, s.quiet_end, COALESCE(s.timezone, u.timezone) "
            "FROM users u LEFT JOIN notification_settings s ON s.user_id = u.id WHERE u.id = ?",
            user_id,
        )
        prefs = [
            PreferenceRow(r[0], bool(r[1]), bool(r[2]), r[3], None if r[4] is None else bool(r[4]))
            for r in rows
        ]
        if settings is None:
            return prefs, UserSettingsRow(None, None, None)
        return prefs, UserSettingsRow(settings[0], settings[1], settings[2])

    async def save_preferences(
        self,
        user_id: str,
        types: Sequence[PreferenceRow],
        quiet: tuple[int, int] | None,
        set_quiet: bool,
        timezone: str | None,
        set_timezone: bool,
        now: int,
    ) -> None:
        async with self.db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO notification_preferences (user_id, type, in_app, email, frequency, "
                "push, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, type) "
                "DO UPDATE SET in_app = excluded.in_app, email = excluded.email, "
                "frequency = excluded.frequency, push = excluded.push, "
                "updated_at = excluded.updated_at",
                [
                    (
                        user_id,
                        p.type,
                        int(p.in_app),
                        int(p.email),
                        p.frequency,
                        None if p.push is None else int(p.push),
                        now,
                    )
                    for p in types
                ],
            )
            if set_quiet or set_timezone:
                await tx.execute(
                    "INSERT INTO notification_settings (user_id, updated_at) VALUES (?, ?) "
                    "ON CONFLICT (user_id) DO NOTHING",
                    user_id,
                    now,
                )
            if set_quiet:
                await tx.execute(
                    "UPDATE notification_settings SET quiet_start = ?, quiet_end = ?, "
                    "updated_at = ? WHERE user_id = ?",
                    quiet[0] if quiet else None,
                    quiet[1] if quiet else None,
                    now,
                    user_id,
                )
            if set_timezone:
                await tx.execute(
                    "UPDATE notification_settings SET timezone = ?, updated_at = ? "
                    "WHERE user_id = ?",
                    timezone,
                    now,
                    user_id,
                )

    # ---- email jobs --------------------------------------------------------

    async def due(self, now: int) -> tuple[int, int | None]:
        """(jobs that may run now, earliest due_at of any pending job nobody has leased)."""
        row = await self.db.fetchrow(
            "SELECT COUNT(*) FROM notification_jobs WHERE status = 'pending' AND due_at <= ? "
            "AND claimed_until < ?",
            now,
            now,
        )
        first = await self.db.fetchrow(
            "SELECT MIN(due_at) FROM notification_jobs WHERE status = 'pending' "
            "AND claimed_until < ?",
            now,
        )
        earliest = int(first[0]) if first and first[0] is not None else None
        return (int(row[0]) if row else 0), earliest

    async def claim(self, holder: str, now: int, lease_ms: int, limit: int) -> list[JobRow]:
        """Lease up to `limit` due jobs to `holder`; an expired lease can be claimed again."""
        async with self.db.transaction() as tx:
            ids = [
                r[0]
                for r in await tx.fetch(
                    "SELECT id FROM notification_jobs WHERE status = 'pending' AND due_at <= ? "
                    "AND claimed_until < ? ORDER BY due_at, id LIMIT ?",
                    now,
                    now,
                    limit,
                )
            ]
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            await tx.execute(
                "UPDATE notification_jobs SET claimed_by = ?, claimed_until = ?, updated_at = ? "
                f"WHERE id IN ({marks}) AND status = 'pending' AND claimed_until < ?",
                holder,
                now + lease_ms,
                now,
                *ids,
                now,
            )
            rows = await tx.fetch(
                f"SELECT {_JOB_COLUMNS} FROM notification_jobs "
                f"WHERE id IN ({marks}) AND claimed_by = ? AND status = 'pending'",
                *ids,
                holder,
            )
        return [_job(r) for r in rows]

    async def finish_jobs(self, finished: Sequence[FinishedJob], now: int) -> None:
        """Finish every job and its notifications in one transaction: one commit for a
        whole batch, where one per job made SQLite's fsyncs the pipeline's bound."""
        if not finished:
            return
        notifications = [
            (job.email_status, job.result if job.status == "sent" else None, notification_id)
            for job in finished
            for notification_id in job.notification_ids
        ]
        async with self.db.transaction() as tx:
            await tx.executemany(
                "UPDATE notification_jobs SET status = ?, result = ?, claimed_until = 0, "
                "updated_at = ? WHERE id = ?",
                [(job.status, job.result, now, job.job_id) for job in finished],
            )
            if notifications:
                await tx.executemany(
                    "UPDATE notifications SET email_status = ?, email_id = ? WHERE id = ?",
                    notifications,
                )

    async def retry_job(
        self, job_id: str, attempts: int, due_at: int, error: str, now: int
    ) -> None:
        await self.db.execute(
            "UPDATE notification_jobs SET attempts = ?, due_at = ?, result = ?, claimed_until = 0, "
            "updated_at = ? WHERE id = ?",
            attempts,
            due_at,
            error[:500],
            now,
            job_id,
        )

    async def take_folded(self, user_id: str, job_id: str) -> list[NotificationRow]:
        """Move the user's folded notifications onto this fold job and return them."""
        tag = f"folding:{job_id}"
        await self.db.execute(
            "UPDATE notifications SET email_status = ? WHERE user_id = ? AND email_status = ?",
            tag,
            user_id,
            FOLDED,
        )
        rows = await self.db.fetch(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE user_id = ? "
            "AND email_status = ? ORDER BY created_at, id",
            user_id,
            tag,
        )
        return [_notification(r) for r in rows]

    async def unread_candidates(
        self, active_since: int, cutoff: int, limit: int
    ) -> list[UnreadCandidate]:
        """Participants with a message older than `cutoff` they have neither read nor been
        emailed about, in conversations active since `active_since` (the scan horizon),
        leaving out users emailed after `cutoff` (one email per user per delay window)."""
        rows = await self.db.fetch(
            "SELECT p.user_id, p.conversation_id, p.read_seq, COALESCE(k.notified_seq, 0), "
            "c.last_seq FROM conversations c "
            "JOIN participants p ON p.conversation_id = c.id "
            "LEFT JOIN unread_email_marks k "
            "ON k.user_id = p.user_id AND k.conversation_id = p.conversation_id "
            "LEFT JOIN unread_email_users e ON e.user_id = p.user_id "
            # The first message after what was read or emailed: not simply the next seq,
            # since edits, deletions and member changes take seqs too (m0008).
            "JOIN messages m ON m.conversation_id = c.id AND m.seq = "
            "(SELECT MIN(n.seq) FROM messages n WHERE n.conversation_id = c.id AND n.seq > "
            "(CASE WHEN p.read_seq > COALESCE(k.notified_seq, 0) THEN p.read_seq "
            "ELSE COALESCE(k.notified_seq, 0) END)) "
            "WHERE c.last_activity_at >= ? AND c.last_seq > p.read_seq "
            "AND c.last_seq > COALESCE(k.notified_seq, 0) AND m.created_at <= ? "
            "AND (e.last_sent_at IS NULL OR e.last_sent_at <= ?) "
            "ORDER BY p.user_id LIMIT ?",
            active_since,
            cutoff,
            cutoff,
            limit,
        )
        return [UnreadCandidate(r[0], r[1], max(int(r[2]), int(r[3])) + 1, int(r[4])) for r in rows]

    async def mark_unread_handled(
        self,
        user_id: str,
        marks: Sequence[tuple[str, int]],
        job: tuple[JobRow, int] | None,
        now: int,
    ) -> None:
        """Record that the user was emailed (or need not be) up to each conversation's seq,
        and queue the email, in one transaction."""
        async with self.db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO unread_email_marks (user_id, conversation_id, notified_seq) "
                "VALUES (?, ?, ?) ON CONFLICT (user_id, conversation_id) DO UPDATE SET "
                "notified_seq = excluded.notified_seq "
                "WHERE unread_email_marks.notified_seq < excluded.notified_seq",
                [(user_id, conversation_id, seq) for conversation_id, seq in marks],
            )
            if job is not None:
                await _insert_job(tx, job[0], job[1], now)
                await tx.execute(
                    "INSERT INTO unread_email_users (user_id, last_sent_at) VALUES (?, ?) "
                    "ON CONFLICT (user_id) DO UPDATE SET last_sent_at = excluded.last_sent_at",
                    user_id,
                    now,
                )

    async def conversations_with_sender(self, user_id: str, ids: Sequence[str]) -> set[str]:
        """Which of the conversations `ids` the user has sent at least one message in."""
        found: set[str] = set()
        unique = sorted(set(ids))
        for start in range(0, len(unique), 400):
            chunk = unique[start : start + 400]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.db.fetch(
                "SELECT DISTINCT conversation_id FROM messages "
                f"WHERE sender_id = ? AND conversation_id IN ({marks})",
                user_id,
                *chunk,
            )
            found.update(row[0] for row in rows)
        return found

    async def conversation_titles(self, ids: Sequence[str]) -> dict[str, str | None]:
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        rows = await self.db.fetch(
            f"SELECT id, title FROM conversations WHERE id IN ({marks})", *ids
        )
        return {r[0]: r[1] for r in rows}

    # ---- digests -----------------------------------------------------------

    async def digest_users(self, period: str, limit: int) -> list[str]:
        rows = await self.db.fetch(
            "SELECT DISTINCT user_id FROM notifications WHERE email_status = ? "
            "ORDER BY user_id LIMIT ?",
            DIGEST_PREFIX + period,
            limit,
        )
        return [r[0] for r in rows]

    async def create_digest(
        self,
        user_id: str,
        period: str,
        window_start: int,
        build_job: Any,
        now: int,
    ) -> JobRow | None:
        """Claim the user's (period, window) digest and queue its email in one transaction.

        The unique row goes in first; a second attempt for the same window, from this or
        any other process, before or after a restart, fails on it and sends nothing.
        `build_job(notifications)` turns the unread notifications into the email job.
        """
        status = DIGEST_PREFIX + period
        try:
            async with self.db.transaction() as tx:
                rows = [
                    _notification(r)
                    for r in await tx.fetch(
                        f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE user_id = ? "
                        "AND email_status = ? AND created_at < ? ORDER BY created_at, id",
                        user_id,
                        status,
                        window_start,
                    )
                ]
                if not rows:
                    return None
                unread = [r for r in rows if r.read_at is None]
                digest_id = str(uuid.uuid4())
                if unread:
                    await tx.execute(
                        "INSERT INTO notification_digests (id, user_id, period, window_start, "
                        "notification_count, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        digest_id,
                        user_id,
                        period,
                        window_start,
                        len(unread),
                        now,
                    )
                await tx.executemany(
                    "UPDATE notifications SET email_status = ?, email_id = ? WHERE id = ?",
                    [("digested" if r.read_at is None else "read", digest_id, r.id) for r in rows],
                )
                if not unread:
                    return None
                job: JobRow = build_job(unread)
                await _insert_job(tx, job, now, now)
                return job
        except IntegrityError:
            return None

    async def acquire_lease(self, name: str, holder: str, now: int, ttl_ms: int) -> bool:
        """Take or renew the named lease; True while `holder` has it."""
        await self.db.execute(
            "INSERT INTO scheduler_leases (name, holder, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_at = excluded.expires_at "
            "WHERE scheduler_leases.holder = excluded.holder OR scheduler_leases.expires_at < ?",
            name,
            holder,
            now + ttl_ms,
            now,
        )
        row = await self.db.fetchrow("SELECT holder FROM scheduler_leases WHERE name = ?", name)
        return row is not None and row[0] == holder

    async def release_lease(self, name: str, holder: str) -> None:
        await self.db.execute(
            "DELETE FROM scheduler_leases WHERE name = ? AND holder = ?", name, holder
        )

    # ---- a user's data (export and erasure) ---------------------------------------

    async def notifications_of(
        self, user_id: str, after: tuple[int, str], limit: int
    ) -> list[tuple[tuple[int, str], dict[str, Any]]]:
        """Every notification of a user, in-app or not, oldest first after the keyset
        `after`: (the next keyset, the item) each."""
        rows = await self.db.fetch(
            "SELECT id, type, title, message, data, priority, in_app, created_at, read_at, "
            "email_status, email_id FROM notifications WHERE user_id = ? "
            "AND (created_at > ? OR (created_at = ? AND id > ?)) ORDER BY created_at, id LIMIT ?",
            user_id,
            after[0],
            after[0],
            after[1],
            limit,
        )
        return [
            (
                (int(r[7]), r[0]),
                {
                    "id": r[0],
                    "type": r[1],
                    "title": r[2],
                    "message": r[3],
                    "data": json.loads(r[4]) if r[4] else None,
                    "priority": r[5],
                    "inApp": bool(r[6]),
                    "createdAt": iso(int(r[7])),
                    "readAt": iso(int(r[8])) if r[8] is not None else None,
                    "emailStatus": r[9],
                    "emailId": r[10],
                },
            )
            for r in rows
        ]

    async def export_preferences(self, user_id: str) -> list[dict[str, Any]]:
        """Per-type choices and the quiet-hours row, as they are stored (defaults are not)."""
        items: list[dict[str, Any]] = [
            {
                "type": r[0],
                "inApp": bool(r[1]),
                "email": bool(r[2]),
                "frequency": r[3],
                "updatedAt": iso(int(r[4])),
            }
            for r in await self.db.fetch(
                "SELECT type, in_app, email, frequency, updated_at FROM notification_preferences "
                "WHERE user_id = ? ORDER BY type",
                user_id,
            )
        ]
        row = await self.db.fetchrow(
            "SELECT quiet_start, quiet_end, timezone, updated_at FROM notification_settings "
            "WHERE user_id = ?",
            user_id,
        )
        if row is not None:
            items.append(
                {
                    "quietHoursStart": row[0],
                    "quietHoursEnd": row[1],
                    "timezone": row[2],
                    "updatedAt": iso(int(row[3])),
                }
            )
        return items

    async def erase_user(self, user_id: str) -> None:
        """Notifications, email jobs not yet handed over, preferences and the bookkeeping of
        unread-message emails and digests: nothing is left that names the user."""
        async with self.db.transaction() as tx:
            for table in (
                "notifications",
                "notification_jobs",
                "notification_preferences",
                "notification_settings",
                "unread_email_marks",
                "unread_email_users",
                "notification_digests",
            ):
                await tx.execute(f"DELETE FROM {table} WHERE user_id = ?", user_id)
