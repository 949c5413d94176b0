"""Attachment metadata: uploads, their checks, and which message (or email) took them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Database, Row
from storage.messages import now_ms


@dataclass(slots=True)
class AttachmentRow:
    id: str
    kind: str
    object_key: str
    uploader_id: str
    conversation_id: str | None
    filename: str
    content_type: str
    size: int
    sha256: str | None
    created_at: int
    uploaded_at: int | None
    claimed_at: int | None
    message_id: str | None


_COLUMNS = (
    "id, kind, object_key, uploader_id, conversation_id, filename, content_type, size, "
    "sha256, created_at, uploaded_at, claimed_at, message_id"
)


def _row(row: Row) -> AttachmentRow:
    return AttachmentRow(
        id=row[0],
        kind=row[1],
        object_key=row[2],
        uploader_id=row[3],
        conversation_id=row[4],
        filename=row[5],
        content_type=row[6],
        size=int(row[7]),
        sha256=row[8],
        created_at=int(row[9]),
        uploaded_at=None if row[10] is None else int(row[10]),
        claimed_at=None if row[11] is None else int(row[11]),
        message_id=row[12],
    )


class ClaimRefused(Exception):
    """At least one upload could not be taken; nothing was taken."""

    def __init__(self, attachment_id: str, reason: str) -> None:
        super().__init__(f"{attachment_id}: {reason}")
        self.attachment_id = attachment_id
        self.reason = reason


class AttachmentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, row: AttachmentRow) -> None:
        await self.db.execute(
            f"INSERT INTO attachments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row.id,
            row.kind,
            row.object_key,
            row.uploader_id,
            row.conversation_id,
            row.filename,
            row.content_type,
            row.size,
            row.sha256,
            row.created_at,
            row.uploaded_at,
            row.claimed_at,
            row.message_id,
        )

    async def get(self, attachment_id: str) -> AttachmentRow | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM attachments WHERE id = ?", attachment_id
        )
        return _row(row) if row else None

    async def mark_uploaded(
        self,
        attachment_id: str,
        size: int,
        sha256: str,
        content_type: str,
        *,
        object_key: str | None = None,
    ) -> bool:
        """Record the checked bytes once (False when already recorded); a direct upload
        also moves `object_key` to the confirmed copy."""
        changed = await self.db.execute(
            "UPDATE attachments SET size = ?, sha256 = ?, content_type = ?, uploaded_at = ?, "
            "object_key = COALESCE(?, object_key) WHERE id = ? AND uploaded_at IS NULL",
            size,
            sha256,
            content_type,
            now_ms(),
            object_key,
            attachment_id,
        )
        return changed > 0

    async def claim(
        self,
        ids: Sequence[str],
        *,
        uploader_id: str,
        kind: str,
        conversation_id: str | None,
        ref: str,
    ) -> list[AttachmentRow]:
        """Take every upload for one message or email, all or none.

        An upload is taken when it belongs to the uploader (and conversation), is
        uploaded, and is free or already taken with the same `ref` (a retried send).
        """
        now = now_ms()
        taken: list[AttachmentRow] = []
        async with self.db.transaction() as tx:
            for attachment_id in ids:
                row = await tx.fetchrow(
                    f"SELECT {_COLUMNS}, claim_ref FROM attachments WHERE id = ?", attachment_id
                )
                found = _row(row) if row else None
                if (
                    found is None
                    or found.kind != kind
                    or found.uploader_id != uploader_id
                    or found.conversation_id != conversation_id
                ):
                    raise ClaimRefused(attachment_id, "not_found")
                if found.uploaded_at is None:
                    raise ClaimRefused(attachment_id, "not_uploaded")
                if found.claimed_at is not None and row is not None and row[13] != ref:
                    raise ClaimRefused(attachment_id, "already_attached")
                await tx.execute(
                    "UPDATE attachments SET claimed_at = ?, claim_ref = ? WHERE id = ?",
                    found.claimed_at or now,
                    ref,
                    attachment_id,
                )
                taken.append(found)
        return taken

    async def release(self, ids: Sequence[str], ref: str) -> None:
        """Undo a claim whose message was never stored, so the upload can be sent again."""
        async with self.db.transaction() as tx:
            for attachment_id in ids:
                await tx.execute(
                    "UPDATE attachments SET claimed_at = NULL, claim_ref = NULL "
                    "WHERE id = ? AND claim_ref = ? AND message_id IS NULL",
                    attachment_id,
                    ref,
                )

    async def set_message(self, ids: Sequence[str], message_id: str) -> None:
        async with self.db.transaction() as tx:
            for attachment_id in ids:
                await tx.execute(
                    "UPDATE attachments SET message_id = ? WHERE id = ?", message_id, attachment_id
                )

    async def unclaimed_before(self, cutoff_ms: int, limit: int) -> list[AttachmentRow]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM attachments WHERE claimed_at IS NULL AND created_at < ? "
            "ORDER BY created_at LIMIT ?",
            cutoff_ms,
            limit,
        )
        return [_row(row) for row in rows]

    async def delete_unclaimed(self, attachment_id: str) -> bool:
        """Remove the row unless a message took it meanwhile."""
        changed = await self.db.execute(
            "DELETE FROM attachments WHERE id = ? AND claimed_at IS NULL", attachment_id
        )
        return changed > 0
