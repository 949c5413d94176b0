"""Web Push: subscriptions, the push outbox and the unread-message push marks.

`queue_for_user` is called inside the transaction that accepts what the push is about
(a notification, an unread-message mark), so a push exists exactly when that was
committed: one outbox row per subscription the user has at that moment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.db import Connection, Database

# A user's browsers: each new one past this replaces the one least recently registered
# (a reinstalled browser leaves its old endpoint behind; nobody keeps ten live ones).
MAX_SUBSCRIPTIONS_PER_USER = 10

_SUBSCRIPTION_COLUMNS = "id, user_id, endpoint, p256dh, auth, user_agent, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    id: str
    user_id: str
    endpoint: str
    p256dh: str
    auth: str
    user_agent: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class QueuedPush:
    """A push for every subscription of `user_id`; `key` makes its outbox rows unique."""

    key: str
    user_id: str
    payload: str
    urgency: str
    ttl: int  # seconds
    due_at: int


@dataclass(frozen=True, slots=True)
class DuePush:
    """One outbox row claimed for an attempt, with its subscription."""

    id: str
    subscription_id: str
    endpoint: str
    p256dh: str
    auth: str
    payload: str
    urgency: str
    ttl: int
    attempts: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class UnreadPushCandidate:
    user_id: str
    conversation_id: str
    seq: int
    sender_id: str
    content: str


def _subscription(row: Any) -> SubscriptionRow:
    return SubscriptionRow(
        id=row[0],
        user_id=row[1],
        endpoint=row[2],
        p256dh=row[3],
        auth=row[4],
        user_agent=row[5],
        created_at=int(row[6]),
        updated_at=int(row[7]),
    )


async def queue_for_user(tx: Connection, push: QueuedPush, now: int) -> None:
    """One outbox row per subscription of the user, in the caller's transaction."""
    await tx.execute(
        "INSERT INTO push_outbox (id, subscription_id, user_id, payload, urgency, ttl, "
        "due_at, expires_at, created_at) "
        "SELECT CAST(? AS TEXT) || s.id, s.id, s.user_id, CAST(? AS TEXT), CAST(? AS TEXT), "
        "CAST(? AS INTEGER), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT) "
        "FROM push_subscriptions s WHERE s.user_id = ? ON CONFLICT (id) DO NOTHING",
        push.key + ":",
        push.payload,
        push.urgency,
        push.ttl,
        push.due_at,
        push.due_at + push.ttl * 1000,
        now,
        push.user_id,
    )


class PushStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- subscriptions --------------------------------------------------------

    async def subscribe(
        self, user_id: str, endpoint: str, p256dh: str, auth: str, user_agent: str | None, now: int
    ) -> tuple[SubscriptionRow, bool]:
        """Store the browser's subscription; (row, created).

        The same endpoint again updates its row (keys, user agent); registered by another
        user it becomes theirs under a new id (the browser changed hands: the old owner's
        pushes must not reach it). Past MAX_SUBSCRIPTIONS_PER_USER the user's least
        recently registered subscription is removed.
        """
        async with self.db.transaction() as tx:
            found = await tx.fetchrow(
                "SELECT id, user_id FROM push_subscriptions WHERE endpoint = ?", endpoint
            )
            if found is not None and found[1] == user_id:
                await tx.execute(
                    "UPDATE push_subscriptions SET p256dh = ?, auth = ?, user_agent = ?, "
                    "updated_at = ? WHERE id = ?",
                    p256dh,
                    auth,
                    user_agent,
                    now,
                    found[0],
                )
                row = await tx.fetchrow(
                    f"SELECT {_SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE id = ?",
                    found[0],
                )
                assert row is not None
                return _subscription(row), False
            if found is not None:
                await self._delete(tx, [found[0]])
            new = SubscriptionRow(
                id=str(uuid.uuid4()),
                user_id=user_id,
                endpoint=endpoint,
                p256dh=p256dh,
                auth=auth,
                user_agent=user_agent,
                created_at=now,
                updated_at=now,
            )
            await tx.execute(
                f"INSERT INTO push_subscriptions ({_SUBSCRIPTION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                new.id,
                new.user_id,
                new.endpoint,
                new.p256dh,
                new.auth,
                new.user_agent,
                new.created_at,
                new.updated_at,
            )
            rows = await tx.fetch(
                "SELECT id FROM push_subscriptions WHERE user_id = ? "
                "ORDER BY updated_at DESC, created_at DESC, id",
                user_id,
            )
            extra = [r[0] for r in rows[MAX_SUBSCRIPTIONS_PER_USER:]]
            if extra:
                await self._delete(tx, extra)
            return new, True

    async def subscriptions(self, user_id: str) -> list[SubscriptionRow]:
        rows = await self.db.fetch(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE user_id = ? "
            "ORDER BY created_at, id",
            user_id,
        )
        return [_subscription(r) for r in rows]

    async def unsubscribe(self, user_id: str, subscription_id: str) -> bool:
        """Remove one of the user's subscriptions (and its pending pushes); False if none."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT id FROM push_subscriptions WHERE id = ? AND user_id = ?",
                subscription_id,
                user_id,
            )
            if row is None:
                return False
            await self._delete(tx, [subscription_id])
            return True

    async def gone(self, subscription_id: str) -> None:
        """The push service says the subscription no longer exists (404/410)."""
        async with self.db.transaction() as tx:
            await self._delete(tx, [subscription_id])

    async def _delete(self, tx: Connection, ids: Sequence[str]) -> None:
        marks = ", ".join("?" for _ in ids)
        await tx.execute(f"DELETE FROM push_outbox WHERE subscription_id IN ({marks})", *ids)
        await tx.execute(f"DELETE FROM push_subscriptions WHERE id IN ({marks})", *ids)

    # ---- a user's data (export and erasure) ------------------------------------

    async def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything stored about the user's push: subscriptions (without their keys,
        which are the browser's secrets, not the user's data) and pending pushes."""
        pending = await self.db.fetch(
            "SELECT id, payload, due_at FROM push_outbox WHERE user_id = ? ORDER BY due_at, id",
            user_id,
        )
        return {
            "subscriptions": [
                {
                    "id": s.id,
                    "endpoint": s.endpoint,
                    "userAgent": s.user_agent,
                    "createdAt": s.created_at,
                    "updatedAt": s.updated_at,
                }
                for s in await self.subscriptions(user_id)
            ],
            "pending": [{"id": r[0], "payload": r[1], "dueAt": int(r[2])} for r in pending],
        }

    async def erase_user(self, user_id: str) -> None:
        """Remove every subscription, pending push and unread mark of the user."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM push_outbox WHERE user_id = ?", user_id)
            await tx.execute("DELETE FROM push_subscriptions WHERE user_id = ?", user_id)
            await tx.execute("DELETE FROM push_unread_marks WHERE user_id = ?", user_id)

    # ---- the outbox --------------------------------------------------------------

    async def claim(self, holder: str, now: int, limit: int, lease_ms: int) -> list[DuePush]:
        """Lease up to `limit` due pushes to `holder`; a lease that lapsed (a crashed
        worker) is taken again. Two processes picking the same rows at once: the second
        UPDATE finds them claimed and skips them, and only rows claimed by `holder` return."""
        async with self.db.transaction() as tx:
            ids = [
                r[0]
                for r in await tx.fetch(
                    "SELECT id FROM push_outbox WHERE due_at <= ? AND claimed_until < ? "
                    "ORDER BY due_at, id LIMIT ?",
                    now,
                    now,
                    limit,
                )
            ]
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            await tx.execute(
                f"UPDATE push_outbox SET claimed_by = ?, claimed_until = ? WHERE id IN ({marks}) "
                "AND claimed_until < ?",
                holder,
                now + lease_ms,
                *ids,
                now,
            )
            rows = await tx.fetch(
                "SELECT o.id, o.subscription_id, s.endpoint, s.p256dh, s.auth, o.payload, "
                "o.urgency, o.ttl, o.attempts, o.expires_at FROM push_outbox o "
                "JOIN push_subscriptions s ON s.id = o.subscription_id "
                f"WHERE o.id IN ({marks}) AND o.claimed_by = ? AND o.claimed_until = ? "
                "ORDER BY o.due_at, o.id",
                *ids,
                holder,
                now + lease_ms,
            )
        return [
            DuePush(
                id=r[0],
                subscription_id=r[1],
                endpoint=r[2],
                p256dh=r[3],
                auth=r[4],
                payload=r[5],
                urgency=r[6],
                ttl=int(r[7]),
                attempts=int(r[8]),
                expires_at=int(r[9]),
            )
            for r in rows
        ]

    async def done(self, push_id: str) -> None:
        await self.db.execute("DELETE FROM push_outbox WHERE id = ?", push_id)

    async def retry(self, push_id: str, attempts: int, due_at: int, error: str) -> None:
        await self.db.execute(
            "UPDATE push_outbox SET attempts = ?, due_at = ?, claimed_until = 0, "
            "last_error = ? WHERE id = ?",
            attempts,
            due_at,
            error[:500],
            push_id,
        )

    async def queue_stats(self) -> tuple[int, int | None]:
        """(pushes waiting, created_at of the oldest), for the metrics."""
        row = await self.db.fetchrow("SELECT COUNT(*), MIN(created_at) FROM push_outbox")
        assert row is not None
        return int(row[0]), (int(row[1]) if row[1] is not None else None)

    # ---- unread messages -----------------------------------------------------------

    async def unread_candidates(
        self, since: int, quiet_before: int, limit: int
    ) -> list[UnreadPushCandidate]:
        """Participants with push subscriptions whose conversation's newest message (since
        `since`, from someone else, not deleted) is past what they read and past what a
        push covered, and who were not pushed about that conversation after
        `quiet_before` (the coalescing window)."""
        rows = await self.db.fetch(
            "SELECT p.user_id, c.id, m.seq, m.sender_id, m.content FROM conversations c "
            "JOIN messages m ON m.id = c.last_message_id "
            "JOIN participants p ON p.conversation_id = c.id "
            "LEFT JOIN push_unread_marks k "
            "ON k.user_id = p.user_id AND k.conversation_id = c.id "
            "WHERE c.last_activity_at >= ? AND m.created_at >= ? AND m.deleted_at IS NULL "
            "AND m.sender_id <> p.user_id AND m.seq > p.read_seq "
            "AND m.seq > COALESCE(k.pushed_seq, 0) "
            "AND (k.pushed_at IS NULL OR k.pushed_at <= ?) "
            "AND EXISTS (SELECT 1 FROM push_subscriptions s WHERE s.user_id = p.user_id) "
            "ORDER BY m.created_at, c.id LIMIT ?",
            since,
            since,
            quiet_before,
            limit,
        )
        return [UnreadPushCandidate(r[0], r[1], int(r[2]), r[3], r[4]) for r in rows]

    async def mark_unread(
        self, user_id: str, conversation_id: str, seq: int, push: QueuedPush | None, now: int
    ) -> None:
        """Record that messages up to `seq` are covered, queueing the push (if any) in the
        same transaction; only a push moves the coalescing clock."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO push_unread_marks (user_id, conversation_id, pushed_seq, pushed_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (user_id, conversation_id) DO UPDATE SET "
                "pushed_seq = excluded.pushed_seq, pushed_at = CASE WHEN ? = 1 "
                "THEN excluded.pushed_at ELSE push_unread_marks.pushed_at END",
                user_id,
                conversation_id,
                seq,
                now if push is not None else 0,
                1 if push is not None else 0,
            )
            if push is not None:
                await queue_for_user(tx, push, now)
