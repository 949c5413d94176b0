"""The user directory: who a notification goes to (email, name, timezone, locale).

The only writer of the users table: token claims seen by messaging, and PUT /api/users/{id}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from base.clock import iso
from storage.db import Database
from storage.messages import now_ms

_COLUMNS = ("email", "name", "timezone", "locale")


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    email: str | None
    name: str | None
    timezone: str | None
    locale: str | None


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def remember(self, profiles: Sequence[tuple[str, str | None, str | None]]) -> None:
        """Record (user id, email, name) from token claims; one transaction for all of them.
        A claim that is absent keeps what is stored."""
        now = now_ms()
        await self.db.executemany(
            "INSERT INTO users (id, email, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET "
            "email = COALESCE(excluded.email, users.email), "
            "name = COALESCE(excluded.name, users.name), updated_at = excluded.updated_at",
            [(user_id, email, name, now, now) for user_id, email, name in profiles],
        )

    async def get(self, user_id: str) -> UserRow | None:
        found = await self.get_many([user_id])
        return found.get(user_id)

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, UserRow]:
        found: dict[str, UserRow] = {}
        ids = sorted(set(user_ids))
        # Chunked to stay under SQLite's bound-parameter limit.
        for start in range(0, len(ids), 400):
            chunk = ids[start : start + 400]
            marks = ", ".join("?" for _ in chunk)
            for row in await self.db.fetch(
                f"SELECT id, email, name, timezone, locale FROM users WHERE id IN ({marks})",
                *chunk,
            ):
                found[row[0]] = UserRow(*row)
        return found

    async def update(self, user_id: str, fields: dict[str, Any]) -> UserRow:
        """Create the user if needed and set the given fields (None clears one)."""
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown user fields {sorted(unknown)}")
        now = now_ms()
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                user_id,
                now,
                now,
            )
            if fields:
                sets = ", ".join(f"{name} = ?" for name in fields)
                await tx.execute(
                    f"UPDATE users SET {sets}, updated_at = ? WHERE id = ?",
                    *fields.values(),
                    now,
                    user_id,
                )
        row = await self.get(user_id)
        assert row is not None
        return row

    async def export_user(self, user_id: str) -> list[dict[str, Any]]:
        """The directory entry, as one item (none when there is no entry)."""
        row = await self.db.fetchrow(
            "SELECT id, email, name, timezone, locale, created_at, updated_at FROM users "
            "WHERE id = ?",
            user_id,
        )
        if row is None:
            return []
        return [
            {
                "id": row[0],
                "email": row[1],
                "name": row[2],
                "timezone": row[3],
                "locale": row[4],
                "createdAt": iso(int(row[5])),
                "updatedAt": iso(int(row[6])),
            }
        ]

    async def erase_user(self, user_id: str) -> None:
        await self.db.execute("DELETE FROM users WHERE id = ?", user_id)
