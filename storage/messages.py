"""Conversations, participants, messages and read positions."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from base.clock import iso
from storage.db import Database, IntegrityError, Row
from storage.plan import Fetch, Plan, WriteMany, run_plan
from storage.webhooks import record_events_plan


def now_ms() -> int:
    return int(time.time() * 1000)


def message_id(ms: int) -> str:
    """A UUID in version 7's layout: the time in milliseconds, then 74 random bits.

    The primary-key index of messages is written on every send: random (version 4) ids
    land each new message on a random page of it, so a commit of a batch wrote a page of
    that index per message. Ids that follow time land on its last pages; they stay as hard
    to guess (74 random bits) and reveal only the creation time, which `createdAt` shows."""
    rand = os.urandom(10).hex()
    # The variant's two bits over the first random digit: 8, 9, a or b.
    variant = "89ab"[int(rand[3], 16) & 3]
    stamp = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
    return f"{stamp[:8]}-{stamp[8:]}-7{rand[:3]}-{variant}{rand[4:7]}-{rand[8:20]}"


def direct_key(first: str, second: str) -> str:
    """The unique key of a two-person conversation, the same whoever creates it.

    The first id's length leads, so no pair of ids can produce another pair's key
    (a plain "a|b" made `org1|u100`+`zed` and `org1`+`u100|zed` collide). Migration
    m0005 computes the same key in SQL: keep the two in step.
    """
    low, high = sorted((first, second))
    return f"{len(low)}:{low}|{high}"


@dataclass(slots=True)
class StoredMessage:
    id: str
    conversation_id: str
    seq: int
    sender_id: str
    content: str
    created_at: int
    client_msg_id: str | None
    attachments: list[dict[str, Any]] | None = None
    edited_at: int | None = None
    deleted_at: int | None = None


@dataclass(slots=True)
class StoredChange:
    """A change that took a seq without being a new message: an edit, a deletion or a
    member change. `message` is the edited or deleted message as it is now."""

    conversation_id: str
    seq: int
    kind: str  # "edit" | "delete" | "member"
    created_at: int
    message_id: str | None = None
    user_id: str | None = None
    action: str | None = None  # member changes: "added" | "removed" | "left"
    actor: str | None = None
    message: StoredMessage | None = None


@dataclass(slots=True)
class ConversationInfo:
    created_by: str
    direct: bool


@dataclass(slots=True)
class NewMessage:
    conversation_id: str
    sender_id: str
    content: str
    client_msg_id: str | None = None
    attachments: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class ConversationRow:
    id: str
    title: str | None
    metadata: dict[str, Any] | None
    created_at: int
    last_seq: int
    last_activity_at: int
    participant_ids: list[str]
    last_message: StoredMessage | None
    read_seq: int
    unread: int = 0


@dataclass(slots=True)
class ReadPosition:
    conversation_id: str
    user_id: str
    message_id: str
    seq: int
    changed: bool


_MESSAGE_COLUMNS = (
    "id, conversation_id, seq, sender_id, content, created_at, client_msg_id, attachments, "
    "edited_at, deleted_at"
)


# A messages-table condition: not written by anyone the user (one parameter) blocks.
_NOT_BLOCKED = "sender_id NOT IN (SELECT blocked_id FROM blocks WHERE user_id = ?)"


def _message(row: Row) -> StoredMessage:
    # Positional, in _MESSAGE_COLUMNS order: a history page builds a hundred of these, and
    # keyword arguments cost several times as much. Both drivers return BIGINT as int.
    return StoredMessage(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        json.loads(row[7]) if row[7] else None,
        row[8],
        row[9],
    )


class MessageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- conversations -----------------------------------------------------

    async def find_direct(self, direct_key: str) -> str | None:
        row = await self.db.fetchrow(
            "SELECT id FROM conversations WHERE direct_key = ?", direct_key
        )
        return row[0] if row else None

    async def create_conversation(
        self,
        creator: str,
        participant_ids: Sequence[str],
        title: str | None,
        metadata: dict[str, Any] | None,
        direct_key: str | None,
    ) -> tuple[str, bool]:
        """Create a conversation; return (id, created). A direct pair is created once."""
        conversation_id = str(uuid.uuid4())
        now = now_ms()
        try:
            async with self.db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO conversations (id, title, metadata, created_by, created_at, "
                    "last_activity_at, direct_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    conversation_id,
                    title,
                    json.dumps(metadata) if metadata is not None else None,
                    creator,
                    now,
                    now,
                    direct_key,
                )
                await tx.executemany(
                    "INSERT INTO participants (conversation_id, user_id, joined_at) "
                    "VALUES (?, ?, ?)",
                    [(conversation_id, user, now) for user in participant_ids],
                )
        except IntegrityError:
            if direct_key is None:
                raise
            existing = await self.find_direct(direct_key)
            if existing is None:
                raise
            return existing, False
        return conversation_id, True

    async def participants(self, conversation_id: str) -> list[str]:
        rows = await self.db.fetch(
            "SELECT user_id FROM participants WHERE conversation_id = ? ORDER BY user_id",
            conversation_id,
        )
        return [row[0] for row in rows]

    async def conversation(self, conversation_id: str, user_id: str) -> ConversationRow | None:
        rows = await self._conversations("c.id = ?", (conversation_id,), user_id, limit=1)
        return rows[0] if rows else None

    async def list_conversations(
        self, user_id: str, before: tuple[int, str] | None, limit: int
    ) -> list[ConversationRow]:
        """Most recent activity first; `before` is the (activity, id) keyset cursor."""
        if before is None:
            return await self._conversations("1 = 1", (), user_id, limit)
        return await self._conversations(
            "(c.last_activity_at < ? OR (c.last_activity_at = ? AND c.id < ?))",
            (before[0], before[0], before[1]),
            user_id,
            limit,
        )

    async def _conversations(
        self, where: str, args: tuple[Any, ...], user_id: str, limit: int
    ) -> list[ConversationRow]:
        rows = await self.db.fetch(
            "SELECT c.id, c.title, c.metadata, c.created_at, c.last_seq, c.last_activity_at, "
            "p.read_seq, c.last_message_id FROM conversations c "
            "JOIN participants p ON p.conversation_id = c.id AND p.user_id = ? "
            f"WHERE {where} ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?",
            user_id,
            *args,
            limit,
        )
        if not rows:
            return []
        ids = [row[0] for row in rows]
        marks = ", ".join("?" for _ in ids)
        members: dict[str, list[str]] = defaultdict(list)
        for conv_id, member in await self.db.fetch(
            f"SELECT conversation_id, user_id FROM participants WHERE conversation_id IN ({marks}) "
            "ORDER BY user_id",
            *ids,
        ):
            members[conv_id].append(member)
        last_ids = [row[7] for row in rows if row[7]]
        last: dict[str, StoredMessage] = {}
        if last_ids:
            marks = ", ".join("?" for _ in last_ids)
            for row in await self.db.fetch(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id IN ({marks})", *last_ids
            ):
                message = _message(row)
                last[message.id] = message
            await self._last_visible(user_id, last)
        unread = await self.unread_counts(
            user_id, [row[0] for row in rows if int(row[4]) > int(row[6])]
        )
        return [
            ConversationRow(
                id=row[0],
                title=row[1],
                metadata=_metadata(row[0], row[2]),
                created_at=int(row[3]),
                last_seq=int(row[4]),
                last_activity_at=int(row[5]),
                read_seq=int(row[6]),
                participant_ids=members[row[0]],
                last_message=last.get(row[7]) if row[7] else None,
                unread=unread.get(row[0], 0),
            )
            for row in rows
        ]

    async def _last_visible(self, user_id: str, last: dict[str, StoredMessage]) -> None:
        """Replace each last message written by someone the user blocks with the latest one
        they may see (or drop it). Rare, so looked up one conversation at a time."""
        blocked = {
            r[0]
            for r in await self.db.fetch("SELECT blocked_id FROM blocks WHERE user_id = ?", user_id)
        }
        if not blocked:
            return
        for message_id, message in list(last.items()):
            if message.sender_id not in blocked:
                continue
            row = await self.db.fetchrow(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? "
                f"AND {_NOT_BLOCKED} ORDER BY seq DESC LIMIT 1",
                message.conversation_id,
                user_id,
            )
            if row is None:
                del last[message_id]
            else:
                last[message_id] = _message(row)

    async def last_seq(self, conversation_id: str) -> int:
        row = await self.db.fetchrow(
            "SELECT last_seq FROM conversations WHERE id = ?", conversation_id
        )
        return int(row[0]) if row else 0

    # ---- messages ----------------------------------------------------------

    async def insert_batch(self, batch: Sequence[NewMessage]) -> list[tuple[StoredMessage, bool]]:
        """Store a batch in one transaction (group commit); return (message, created) per input.

        A message whose (sender, clientMsgId) was stored before comes back as that
        first message with created False, so a retried send never creates a duplicate.
        """
        try:
            return await self._insert_batch(batch)
        except IntegrityError:
            # Another process stored the same clientMsgId between our lookup and our
            # insert. Running again finds it and returns the first message.
            return await self._insert_batch(batch)

    async def _insert_batch(self, batch: Sequence[NewMessage]) -> list[tuple[StoredMessage, bool]]:
        # One trip to SQLite's writer thread for the whole transaction (storage/plan.py).
        return await self.db.run(self._insert_plan(batch))

    def _insert_plan(self, batch: Sequence[NewMessage]) -> Plan[list[tuple[StoredMessage, bool]]]:
        results: list[tuple[StoredMessage, bool] | None] = [None] * len(batch)
        now = now_ms()
        existing = yield from self._existing_plan(batch)
        fresh: dict[str, list[int]] = defaultdict(list)
        first_of_key: dict[tuple[str, str], int] = {}
        for index, new in enumerate(batch):
            if new.client_msg_id is not None:
                key = (new.sender_id, new.client_msg_id)
                if key in existing:
                    results[index] = (existing[key], False)
                    continue
                if key in first_of_key:
                    continue  # resolved below as the same message
                first_of_key[key] = index
            fresh[new.conversation_id].append(index)
        rows: list[tuple[Any, ...]] = []
        readers: list[tuple[int, str, str]] = []
        heads: list[tuple[int, int, str, str]] = []
        last_seqs = yield from self._lock_plan(sorted(fresh))
        for conversation_id, indexes in fresh.items():
            if conversation_id not in last_seqs:
                raise LookupError(f"conversation {conversation_id} does not exist")
            seq = last_seqs[conversation_id]
            for index in indexes:
                seq += 1
                new = batch[index]
                stored = StoredMessage(
                    id=message_id(now),
                    conversation_id=conversation_id,
                    seq=seq,
                    sender_id=new.sender_id,
                    content=new.content,
                    created_at=now,
                    client_msg_id=new.client_msg_id,
                    attachments=new.attachments,
                )
                results[index] = (stored, True)
                rows.append(
                    (
                        stored.id,
                        conversation_id,
                        seq,
                        stored.sender_id,
                        stored.content,
                        stored.client_msg_id,
                        json.dumps(stored.attachments) if stored.attachments else None,
                        now,
                    )
                )
                readers.append((seq, conversation_id, stored.sender_id))
            heads.append((seq, now, rows[-1][0], conversation_id))
        if heads:
            # One statement for every conversation of the batch: seq allocation costs
            # a constant number of statements per batch, not two per conversation.
            yield WriteMany(
                "UPDATE conversations SET last_seq = ?, last_activity_at = ?, "
                "last_message_id = ? WHERE id = ?",
                heads,
            )
        if rows:
            yield WriteMany(
                "INSERT INTO messages (id, conversation_id, seq, sender_id, content, "
                "client_msg_id, attachments, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            # Sending implies having read everything up to one's own message. Seqs rise
            # through the batch, so each sender's last one per conversation is all that
            # needs writing: one row update per sender, not one per message.
            newest = {(conv, user): seq for seq, conv, user in readers}
            yield WriteMany(
                "UPDATE participants SET read_seq = ? WHERE conversation_id = ? "
                "AND user_id = ? AND read_seq < ?",
                [(seq, conv, user, seq) for (conv, user), seq in newest.items()],
            )
            # Outgoing webhooks in the group commit itself: metadata only, never content.
            yield from record_events_plan(
                [
                    (
                        "message.created",
                        {
                            "messageId": row[0],
                            "conversationId": row[1],
                            "seq": row[2],
                            "senderId": row[3],
                        },
                    )
                    for row in rows
                ],
                now,
            )
        final: list[tuple[StoredMessage, bool]] = []
        for index, new in enumerate(batch):
            result = results[index]
            if result is None:
                # A repeat of a clientMsgId earlier in this same batch.
                assert new.client_msg_id is not None
                first = results[first_of_key[(new.sender_id, new.client_msg_id)]]
                assert first is not None
                result = (first[0], False)
            final.append(result)
        return final

    async def _lock_conversations(self, tx: Any, conversation_ids: list[str]) -> dict[str, int]:
        return await run_plan(tx, self._lock_plan(conversation_ids))

    def _lock_plan(self, conversation_ids: list[str]) -> Plan[dict[str, int]]:
        """The current last_seq of each conversation, locked until the transaction ends.

        SQLite: the transaction holds the database's write lock (BEGIN IMMEDIATE) already.
        PostgreSQL: FOR UPDATE, in id order so that concurrent writers never deadlock; a
        writer on another process waits here, then reads the seq the first one committed.
        """
        lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
        found: dict[str, int] = {}
        for start in range(0, len(conversation_ids), 400):
            chunk = conversation_ids[start : start + 400]
            marks = ", ".join("?" for _ in chunk)
            rows = yield Fetch(
                f"SELECT id, last_seq FROM conversations WHERE id IN ({marks}) ORDER BY id{lock}",
                chunk,
            )
            for conversation_id, last_seq in rows or ():
                found[conversation_id] = int(last_seq)
        return found

    def _existing_plan(
        self, batch: Sequence[NewMessage]
    ) -> Plan[dict[tuple[str, str], StoredMessage]]:
        keyed = [(m.sender_id, m.client_msg_id) for m in batch if m.client_msg_id is not None]
        found: dict[tuple[str, str], StoredMessage] = {}
        # Chunked to stay under SQLite's bound-parameter limit.
        for start in range(0, len(keyed), 400):
            chunk = keyed[start : start + 400]
            marks = " OR ".join("(sender_id = ? AND client_msg_id = ?)" for _ in chunk)
            args = [value for pair in chunk for value in pair]
            rows = yield Fetch(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {marks}", args)
            for row in rows or ():
                message = _message(row)
                found[(message.sender_id, message.client_msg_id or "")] = message
        return found

    async def messages(
        self,
        conversation_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 50,
        floor: int = 0,
        reader: str | None = None,
        viewer: str | None = None,
    ) -> list[StoredMessage]:
        """Messages in seq order. With `before` only, the newest `limit` before it.
        Nothing at or below `floor` (what a member added without history may not see), nor
        at or below `reader`'s joined_seq: read in the same query, so a history page is
        one round trip instead of two. With `viewer`, nothing from the people that user
        blocks."""
        clauses = ["conversation_id = ?"]
        args: list[Any] = [conversation_id]
        if viewer is not None:
            clauses.append(_NOT_BLOCKED)
            args.append(viewer)
        if floor:
            clauses.append("seq > ?")
            args.append(floor)
        if reader is not None:
            clauses.append(
                "seq > COALESCE((SELECT joined_seq FROM participants"
                " WHERE conversation_id = ? AND user_id = ?), 0)"
            )
            args += [conversation_id, reader]
        if after is not None:
            clauses.append("seq > ?")
            args.append(after)
        if before is not None:
            clauses.append("seq < ?")
            args.append(before)
        order = "ASC" if after is not None else "DESC"
        rows = await self.db.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(clauses)} "
            f"ORDER BY seq {order} LIMIT ?",
            *args,
            limit,
        )
        result = [_message(row) for row in rows]
        if order == "DESC":
            result.reverse()
        return result

    async def message(self, message_id: str) -> StoredMessage | None:
        row = await self.db.fetchrow(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", message_id
        )
        return _message(row) if row else None

    async def mark_read(self, user_id: str, message: StoredMessage) -> ReadPosition:
        """Move the user's read position forward to `message` (never backward)."""
        changed = await self.db.execute(
            "UPDATE participants SET read_seq = ? WHERE conversation_id = ? AND user_id = ? "
            "AND read_seq < ?",
            message.seq,
            message.conversation_id,
            user_id,
            message.seq,
        )
        return ReadPosition(
            conversation_id=message.conversation_id,
            user_id=user_id,
            message_id=message.id,
            seq=message.seq,
            changed=changed > 0,
        )

    # ---- changes: edits, deletions, members (each takes the next seq) --------------

    async def _take_seq(self, tx: Any, conversation_id: str, now: int) -> int:
        """The conversation's next seq, taken under its row lock (as a message's is)."""
        found = await self._lock_conversations(tx, [conversation_id])
        if conversation_id not in found:
            raise LookupError(f"conversation {conversation_id} does not exist")
        seq = found[conversation_id] + 1
        await tx.execute("UPDATE conversations SET last_seq = ? WHERE id = ?", seq, conversation_id)
        return seq

    async def _record(self, tx: Any, change: StoredChange) -> None:
        await tx.execute(
            "INSERT INTO conversation_changes (conversation_id, seq, kind, message_id, "
            "user_id, action, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            change.conversation_id,
            change.seq,
            change.kind,
            change.message_id,
            change.user_id,
            change.action,
            change.actor,
            change.created_at,
        )

    async def edit_message(self, message_id: str, content: str) -> StoredChange | None:
        """Replace a message's content; None if it is gone or deleted meanwhile."""
        now = now_ms()
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT conversation_id FROM messages WHERE id = ? AND deleted_at IS NULL",
                message_id,
            )
            if row is None:
                return None
            seq = await self._take_seq(tx, row[0], now)
            await tx.execute(
                "UPDATE messages SET content = ?, edited_at = ? WHERE id = ?",
                content,
                now,
                message_id,
            )
            change = StoredChange(row[0], seq, "edit", now, message_id=message_id)
            await self._record(tx, change)
            updated = await tx.fetchrow(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", message_id
            )
        assert updated is not None
        change.message = _message(updated)
        return change

    async def delete_message(self, message_id: str, actor: str) -> StoredChange | None:
        """Erase a message's content and attachments (the row stays as a tombstone, so
        seqs stay gap-free); None if it is gone or was deleted already."""
        now = now_ms()
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT conversation_id, attachments FROM messages "
                "WHERE id = ? AND deleted_at IS NULL",
                message_id,
            )
            if row is None:
                return None
            seq = await self._take_seq(tx, row[0], now)
            await _tombstone(tx, [(message_id, row[1])], now)
            change = StoredChange(row[0], seq, "delete", now, message_id=message_id, actor=actor)
            await self._record(tx, change)
            tombstone = await tx.fetchrow(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", message_id
            )
        # The tombstone names the sender: rooms filter the deletion for those who block them.
        change.message = _message(tombstone) if tombstone is not None else None
        return change

    async def erase_sent(self, sender_id: str, actor: str, limit: int) -> list[StoredChange]:
        """Delete up to `limit` of a sender's messages in one transaction, each as
        `delete_message` does (its own seq and change); [] when none is left."""
        now = now_ms()
        changes: list[StoredChange] = []
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT id, conversation_id, attachments FROM messages "
                "WHERE sender_id = ? AND deleted_at IS NULL ORDER BY id LIMIT ?",
                sender_id,
                limit,
            )
            if not rows:
                return []
            # Every conversation locked up front, in id order, as a batch of sends locks them.
            await self._lock_conversations(tx, sorted({row[1] for row in rows}))
            await _tombstone(tx, [(row[0], row[2]) for row in rows], now)
            for message_id, conversation_id, _ in rows:
                seq = await self._take_seq(tx, conversation_id, now)
                change = StoredChange(
                    conversation_id, seq, "delete", now, message_id=message_id, actor=actor
                )
                await self._record(tx, change)
                changes.append(change)
        return changes

    async def release_uploads(self, uploader_id: str) -> None:
        """Uploads of the user that no message took: unreachable at once, and old enough for
        the attachment sweeper to remove rows and bytes at its next round."""
        await self.db.execute(
            "UPDATE attachments SET uploaded_at = NULL, created_at = 0 "
            "WHERE uploader_id = ? AND kind = 'message' AND claimed_at IS NULL",
            uploader_id,
        )

    async def leave_all(self, user_id: str, actor: str, limit: int) -> list[StoredChange]:
        """Remove the user from up to `limit` conversations (a `member` change each, action
        `removed`); [] when they are in none. A direct conversation loses its key, so the
        same pair may open a new one later."""
        now = now_ms()
        changes: list[StoredChange] = []
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT conversation_id FROM participants WHERE user_id = ? "
                "ORDER BY conversation_id LIMIT ?",
                user_id,
                limit,
            )
            ids = [row[0] for row in rows]
            if not ids:
                return []
            await self._lock_conversations(tx, ids)
            for conversation_id in ids:
                seq = await self._take_seq(tx, conversation_id, now)
                await tx.execute(
                    "DELETE FROM participants WHERE conversation_id = ? AND user_id = ?",
                    conversation_id,
                    user_id,
                )
                await tx.execute(
                    "UPDATE conversations SET direct_key = NULL WHERE id = ?", conversation_id
                )
                change = StoredChange(
                    conversation_id,
                    seq,
                    "member",
                    now,
                    user_id=user_id,
                    action="removed",
                    actor=actor,
                )
                await self._record(tx, change)
                changes.append(change)
        return changes

    # ---- retention ----------------------------------------------------------------

    async def sweep_older_than(self, cutoff: int, limit: int) -> tuple[int, dict[str, int]]:
        """Erase up to `limit` messages created before `cutoff` (ms), as deletions without a
        change or event each; return how many, and {conversation id: highest seq erased}.
        Idempotent: a message already erased is skipped, so two sweepers at once do no harm
        (PostgreSQL sweepers also skip each other's locked rows)."""
        skip = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgres" else ""
        now = now_ms()
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT id, conversation_id, seq, attachments FROM messages "
                "WHERE deleted_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?" + skip,
                cutoff,
                limit,
            )
            if not rows:
                return 0, {}
            await _tombstone(tx, [(row[0], row[3]) for row in rows], now)
            highest: dict[str, int] = {}
            for _, conversation_id, seq, _ in rows:
                highest[conversation_id] = max(highest.get(conversation_id, 0), int(seq))
            await tx.executemany(
                "UPDATE conversations SET retained_after_seq = ? "
                "WHERE id = ? AND retained_after_seq < ?",
                [(seq, conversation_id, seq) for conversation_id, seq in highest.items()],
            )
        return len(rows), highest

    async def retained_after(self, conversation_id: str) -> int:
        """The highest seq the retention sweep erased here: replay cannot start below it."""
        row = await self.db.fetchrow(
            "SELECT retained_after_seq FROM conversations WHERE id = ?", conversation_id
        )
        return int(row[0]) if row else 0

    # ---- a user's data (export) -----------------------------------------------------

    async def conversations_of(self, user_id: str, after: str, limit: int) -> list[dict[str, Any]]:
        """The conversations a user is in, with when they joined and how far they read."""
        rows = await self.db.fetch(
            "SELECT c.id, c.title, c.created_at, c.direct_key IS NOT NULL, p.joined_at, "
            "p.read_seq FROM participants p JOIN conversations c ON c.id = p.conversation_id "
            "WHERE p.user_id = ? AND p.conversation_id > ? ORDER BY p.conversation_id LIMIT ?",
            user_id,
            after,
            limit,
        )
        return [
            {
                "id": r[0],
                "title": r[1],
                "createdAt": iso(int(r[2])),
                "direct": bool(r[3]),
                "joinedAt": iso(int(r[4])),
                "readSeq": int(r[5]),
            }
            for r in rows
        ]

    async def sent_by(self, sender_id: str, after: str, limit: int) -> list[StoredMessage]:
        """A sender's messages that still hold content, in id order from `after`."""
        rows = await self.db.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE sender_id = ? AND id > ? "
            "AND deleted_at IS NULL ORDER BY id LIMIT ?",
            sender_id,
            after,
            limit,
        )
        return [_message(row) for row in rows]

    async def conversation_info(self, conversation_id: str) -> ConversationInfo | None:
        row = await self.db.fetchrow(
            "SELECT created_by, direct_key FROM conversations WHERE id = ?", conversation_id
        )
        return ConversationInfo(created_by=row[0], direct=row[1] is not None) if row else None

    async def add_participants(
        self, conversation_id: str, user_ids: Sequence[str], actor: str, share_history: bool
    ) -> list[StoredChange]:
        """Add members (those already in are skipped), one `member` change each."""
        now = now_ms()
        changes: list[StoredChange] = []
        async with self.db.transaction() as tx:
            present = {
                r[0]
                for r in await tx.fetch(
                    "SELECT user_id FROM participants WHERE conversation_id = ?", conversation_id
                )
            }
            for user in user_ids:
                if user in present:
                    continue
                present.add(user)
                seq = await self._take_seq(tx, conversation_id, now)
                # Nothing before the join counts as unread; without shared history it is
                # not shown either.
                await tx.execute(
                    "INSERT INTO participants (conversation_id, user_id, joined_at, read_seq, "
                    "joined_seq) VALUES (?, ?, ?, ?, ?)",
                    conversation_id,
                    user,
                    now,
                    seq,
                    0 if share_history else seq,
                )
                change = StoredChange(
                    conversation_id, seq, "member", now, user_id=user, action="added", actor=actor
                )
                await self._record(tx, change)
                changes.append(change)
        return changes

    async def remove_participant(
        self, conversation_id: str, user_id: str, actor: str
    ) -> StoredChange | None:
        """Remove a member; None if they were not one."""
        now = now_ms()
        try:
            return await self._remove_participant(conversation_id, user_id, actor, now)
        except _NothingChanged:
            return None

    async def _remove_participant(
        self, conversation_id: str, user_id: str, actor: str, now: int
    ) -> StoredChange:
        async with self.db.transaction() as tx:
            seq = await self._take_seq(tx, conversation_id, now)
            removed = await tx.execute(
                "DELETE FROM participants WHERE conversation_id = ? AND user_id = ?",
                conversation_id,
                user_id,
            )
            if not removed:
                # Raising rolls the seq back: nothing changed, nothing takes a seq.
                raise _NothingChanged
            change = StoredChange(
                conversation_id,
                seq,
                "member",
                now,
                user_id=user_id,
                action="left" if actor == user_id else "removed",
                actor=actor,
            )
            await self._record(tx, change)
        return change

    async def joined_seq(self, conversation_id: str, user_id: str) -> int:
        """The seq a member's view of the conversation starts after (0: everything)."""
        row = await self.db.fetchrow(
            "SELECT joined_seq FROM participants WHERE conversation_id = ? AND user_id = ?",
            conversation_id,
            user_id,
        )
        return int(row[0]) if row else 0

    async def changes(
        self, conversation_id: str, *, after: int, before: int, limit: int
    ) -> list[StoredChange]:
        """Changes with after < seq < before, in seq order, edits with their message now."""
        rows = await self.db.fetch(
            "SELECT ch.conversation_id, ch.seq, ch.kind, ch.created_at, ch.message_id, "
            "ch.user_id, ch.action, ch.actor, "
            + ", ".join(f"m.{c.strip()}" for c in _MESSAGE_COLUMNS.split(","))
            + " FROM conversation_changes ch LEFT JOIN messages m ON m.id = ch.message_id "
            "WHERE ch.conversation_id = ? AND ch.seq > ? AND ch.seq < ? ORDER BY ch.seq LIMIT ?",
            conversation_id,
            after,
            before,
            limit,
        )
        return [
            StoredChange(
                conversation_id=r[0],
                seq=int(r[1]),
                kind=r[2],
                created_at=int(r[3]),
                message_id=r[4],
                user_id=r[5],
                action=r[6],
                actor=r[7],
                message=_message(r[8:]) if r[8] is not None else None,
            )
            for r in rows
        ]

    async def timeline(
        self, conversation_id: str, *, after: int, before: int, floor: int = 0
    ) -> list[StoredMessage | StoredChange]:
        """Everything with after < seq < before, messages and changes merged in seq order:
        what a replay sends. Nothing at or below `floor` (a member's join without history)."""
        after = max(after, floor)
        if before - after <= 1:
            return []
        limit = before - after - 1
        messages = await self.messages(conversation_id, after=after, before=before, limit=limit)
        changes = await self.changes(conversation_id, after=after, before=before, limit=limit)
        merged: list[StoredMessage | StoredChange] = [*messages, *changes]
        merged.sort(key=lambda item: item.seq)
        return merged

    async def unread_counts(self, user_id: str, conversation_ids: Sequence[str]) -> dict[str, int]:
        """Messages from others (not from people the user blocks), not deleted, after the
        user's read position.

        Counted rather than taken from last_seq - read_seq: edits, deletions and member
        changes take seqs too, and none of them is something to read.
        """
        if not conversation_ids:
            return {}
        marks = ", ".join("?" for _ in conversation_ids)
        rows = await self.db.fetch(
            "SELECT m.conversation_id, COUNT(*) FROM messages m JOIN participants p "
            "ON p.conversation_id = m.conversation_id AND p.user_id = ? "
            f"WHERE m.conversation_id IN ({marks}) AND m.seq > p.read_seq "
            "AND m.deleted_at IS NULL AND m.sender_id <> ? "
            f"AND m.{_NOT_BLOCKED} GROUP BY m.conversation_id",
            user_id,
            *conversation_ids,
            user_id,
            user_id,
        )
        return {r[0]: int(r[1]) for r in rows}


async def _tombstone(tx: Any, rows: Sequence[tuple[str, str | None]], now: int) -> None:
    """Erase the content and attachments of (message id, attachments JSON) rows; the rows
    stay as tombstones so seqs stay gap-free."""
    released = [
        (a["id"],) for _, attached in rows if attached for a in json.loads(attached) if "id" in a
    ]
    if released:
        # No longer downloadable (not uploaded) nor attached, and old enough for the
        # attachment sweeper, which removes the row and then the bytes.
        await tx.executemany(
            "UPDATE attachments SET uploaded_at = NULL, claimed_at = NULL, "
            "claim_ref = NULL, message_id = NULL, created_at = 0 "
            "WHERE id = ? AND kind = 'message'",
            released,
        )
    await tx.executemany(
        "UPDATE messages SET content = '', attachments = NULL, deleted_at = ? WHERE id = ?",
        [(now, message_id) for message_id, _ in rows],
    )


class BlockStore:
    """Who blocked whom."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def block(self, user_id: str, blocked_id: str, limit: int) -> bool:
        """Block, unless the user already blocks `limit` others; False if over the limit
        (blocking someone already blocked is not). Counted and inserted under a lock of the
        user (SQLite: the write lock; PostgreSQL: an advisory lock on the user), so requests
        racing each other cannot pass the limit together."""
        async with self.db.transaction() as tx:
            if self.db.dialect == "postgres":
                await tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", f"blocks:{user_id}")
            if await tx.fetchrow(
                "SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?", user_id, blocked_id
            ):
                return True
            count = await tx.fetchrow("SELECT COUNT(*) FROM blocks WHERE user_id = ?", user_id)
            if count is not None and int(count[0]) >= limit:
                return False
            await tx.execute(
                "INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, blocked_id) DO NOTHING",
                user_id,
                blocked_id,
                now_ms(),
            )
        return True

    async def unblock(self, user_id: str, blocked_id: str) -> None:
        await self.db.execute(
            "DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?", user_id, blocked_id
        )

    async def blocked(self, user_id: str) -> list[str]:
        rows = await self.db.fetch(
            "SELECT blocked_id FROM blocks WHERE user_id = ? ORDER BY blocked_id", user_id
        )
        return [row[0] for row in rows]

    async def is_blocked_by(self, user_id: str, others: Sequence[str]) -> bool:
        """True if any of `others` blocked `user_id`."""
        if not others:
            return False
        marks = ", ".join("?" for _ in others)
        row = await self.db.fetchrow(
            f"SELECT 1 FROM blocks WHERE blocked_id = ? AND user_id IN ({marks}) LIMIT 1",
            user_id,
            *others,
        )
        return row is not None

    async def blockers_of(self, user_id: str) -> list[str]:
        rows = await self.db.fetch(
            "SELECT user_id FROM blocks WHERE blocked_id = ? ORDER BY user_id", user_id
        )
        return [row[0] for row in rows]

    async def export_user(self, user_id: str) -> list[dict[str, Any]]:
        """The blocks a user made: whom and since when."""
        rows = await self.db.fetch(
            "SELECT blocked_id, created_at FROM blocks WHERE user_id = ? ORDER BY blocked_id",
            user_id,
        )
        return [{"userId": r[0], "createdAt": iso(int(r[1]))} for r in rows]

    async def erase_user(self, user_id: str) -> None:
        """Blocks made by the user and blocks of them: either row names them."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM blocks WHERE user_id = ?", user_id)
            await tx.execute("DELETE FROM blocks WHERE blocked_id = ?", user_id)


class _NothingChanged(Exception):
    pass


log = logging.getLogger("pitchey.storage")

# Deeper than any JSON_MAX_DEPTH allows (the setting stops at 64): such a row was stored
# before the bound existed, and one like it once broke every list that contained it.
_STORED_MAX_DEPTH = 64
# Conversations already reported, so a poisoned row is logged once, not on every list.
_reported: set[str] = set()
_REPORTED_MAX = 10_000


def _metadata(conversation_id: str, text: str | None) -> dict[str, Any] | None:
    """A conversation's metadata as stored, or None when it cannot be read or sent back."""
    if not text:
        return None
    try:
        value = json.loads(text)
        if not isinstance(value, dict) or _too_deep(value):
            raise ValueError("not an object, or nested too deeply")
        msgspec.json.encode(value)  # what the answer will do: fail here, not there
    except (ValueError, TypeError, RecursionError, msgspec.EncodeError) as exc:
        if conversation_id not in _reported and len(_reported) < _REPORTED_MAX:
            _reported.add(conversation_id)
            log.warning(
                "conversation %s: unreadable metadata shown as null (%s)",
                conversation_id,
                type(exc).__name__,
            )
        return None
    return value


def _too_deep(value: object) -> bool:
    """Nesting deeper than _STORED_MAX_DEPTH, found without recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Any
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > _STORED_MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
