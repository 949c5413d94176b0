"""Erasure requests: stored before DELETE /api/users/{id} answers 202, worked off under a lease.

A request is a row in `user_erasures` (m0011). Whichever process claims it runs the
erasure; a process that dies mid-way leaves a lease that lapses, and the next claim runs
the erasure again from the start (every step is idempotent). Completing it clears the
address kept for it and records the `user.erased` webhook in the same transaction.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from base.clock import iso
from storage.db import Database
from storage.webhooks import record_events


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose data an export or an erasure is about."""

    user_id: str
    # Lower-cased addresses the user's email went to (the directory's, at request time).
    addresses: tuple[str, ...] = ()
    # Who asked: recorded as the `by` of the member changes an erasure makes.
    actor: str = ""


@dataclass(frozen=True, slots=True)
class Part:
    """What one store holds about a user: one section of the export, and how to erase it.

    `export` yields the section's items (JSON-encodable) in a stable order; `erase` removes
    or anonymizes them and must be safe to run again (an erasure interrupted by a crash
    runs from the start). Adding a store to export and erasure is adding one Part.
    """

    section: str
    export: Callable[[Subject], AsyncGenerator[Any, None]]
    erase: Callable[[Subject], Awaitable[None]] | None = None


Export = Callable[[Subject], AsyncGenerator[Any, None]]


def listed(read: Callable[[str], Awaitable[list[Any]]]) -> Export:
    """An export for a store that returns a user's (small, bounded) items in one list."""

    async def export(subject: Subject) -> AsyncGenerator[Any, None]:
        for item in await read(subject.user_id):
            yield item

    return export


def by_user(erase: Callable[[str], Awaitable[None]]) -> Callable[[Subject], Awaitable[None]]:
    """An erasure step for a store that needs only the user id."""

    async def step(subject: Subject) -> None:
        await erase(subject.user_id)

    return step


@dataclass(frozen=True, slots=True)
class ErasureJob:
    user_id: str
    address: str | None
    requested_by: str
    requested_at: int
    attempts: int


class ErasureStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def request(self, user_id: str, requested_by: str, now: int) -> int:
        """Record (or renew) the request, with the directory's address at this moment;
        returns when it was requested. A pending request keeps its first time."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT email FROM users WHERE id = ?", user_id)
            address = row[0] if row else None
            await tx.execute(
                "INSERT INTO user_erasures (user_id, status, address, requested_by, "
                "requested_at) VALUES (?, 'pending', ?, ?, ?) ON CONFLICT (user_id) DO UPDATE "
                "SET address = COALESCE(excluded.address, user_erasures.address), "
                "requested_by = excluded.requested_by, "
                # A running erasure keeps its lease; a finished one may be claimed at once.
                "claimed_until = CASE WHEN user_erasures.status = 'pending' "
                "THEN user_erasures.claimed_until ELSE 0 END, "
                "requested_at = CASE WHEN user_erasures.status = 'pending' "
                "THEN user_erasures.requested_at ELSE excluded.requested_at END, "
                "status = 'pending', completed_at = NULL",
                user_id,
                address,
                requested_by,
                now,
            )
            found = await tx.fetchrow(
                "SELECT requested_at FROM user_erasures WHERE user_id = ?", user_id
            )
        assert found is not None
        return int(found[0])

    async def claim(self, holder: str, now: int, lease_ms: int) -> ErasureJob | None:
        """The oldest pending request nobody holds, leased to `holder`."""
        rows = await self.db.fetch(
            "SELECT user_id FROM user_erasures WHERE status = 'pending' AND claimed_until <= ? "
            "ORDER BY requested_at LIMIT 5",
            now,
        )
        for (user_id,) in rows:
            async with self.db.transaction() as tx:
                taken = await tx.execute(
                    "UPDATE user_erasures SET claimed_by = ?, claimed_until = ?, "
                    "attempts = attempts + 1 WHERE user_id = ? AND status = 'pending' "
                    "AND claimed_until <= ?",
                    holder,
                    now + lease_ms,
                    user_id,
                    now,
                )
                if not taken:
                    continue  # another process took it first
                row = await tx.fetchrow(
                    "SELECT user_id, address, requested_by, requested_at, attempts "
                    "FROM user_erasures WHERE user_id = ?",
                    user_id,
                )
            assert row is not None
            return ErasureJob(row[0], row[1], row[2], int(row[3]), int(row[4]))
        return None

    async def next_due(self) -> int | None:
        """When the earliest pending request may be claimed (ms), None when none is pending."""
        row = await self.db.fetchrow(
            "SELECT MIN(claimed_until) FROM user_erasures WHERE status = 'pending'"
        )
        return int(row[0]) if row and row[0] is not None else None

    async def renew(self, user_id: str, holder: str, until: int) -> None:
        await self.db.execute(
            "UPDATE user_erasures SET claimed_until = ? WHERE user_id = ? AND claimed_by = ? "
            "AND status = 'pending'",
            until,
            user_id,
            holder,
        )

    async def failed(self, user_id: str, holder: str, error: str, retry_at: int) -> None:
        await self.db.execute(
            "UPDATE user_erasures SET claimed_until = ?, last_error = ? "
            "WHERE user_id = ? AND claimed_by = ? AND status = 'pending'",
            retry_at,
            error[:500],
            user_id,
            holder,
        )

    async def finish(self, job: ErasureJob, holder: str, now: int) -> bool:
        """Done: the address is forgotten and `user.erased` goes out, in one transaction.
        False when the request was renewed meanwhile (it runs again)."""
        async with self.db.transaction() as tx:
            done = await tx.execute(
                "UPDATE user_erasures SET status = 'done', address = NULL, completed_at = ?, "
                "claimed_by = NULL, last_error = NULL WHERE user_id = ? AND claimed_by = ? "
                "AND status = 'pending' AND requested_at = ?",
                now,
                job.user_id,
                holder,
                job.requested_at,
            )
            if done:
                await record_events(
                    tx,
                    [
                        (
                            "user.erased",
                            {
                                "userId": job.user_id,
                                "requestedAt": iso(job.requested_at),
                                "completedAt": iso(now),
                            },
                        )
                    ],
                    now,
                )
        return bool(done)
