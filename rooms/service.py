"""The messaging service: what REST routes and WebSocket frames both call.

One path for a message whichever way it arrives: check access and limits,
store it through the group-commit writer, and let the broker carry it to the rooms.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence

from base.clock import iso
from base.errors import Invalid, NotFound, RateLimited, Unavailable
from base.identity import Caller
from rooms import metrics
from rooms.broker import Broker, conversation_channel
from rooms.registry import RoomRegistry
from rooms.session import Session
from rooms.views import message_view
from rooms.writer import MessageWriter
from schemas.codec import encode
from schemas.frames import ReadFrame, TypingFrame
from schemas.messages import Conversation, ConversationPage, Message, MessagePage
from state.cache import Cache
from state.ratelimit import RateLimiter
from storage.db import DatabaseUnavailable
from storage.messages import ConversationRow, MessageStore, NewMessage, StoredMessage
from storage.users import UserStore

log = logging.getLogger("pitchey.messaging")

# Participants never change after creation, so membership can be cached for good;
# the bound only caps memory.
_PARTICIPANT_CACHE = 100_000


class Messaging:
    def __init__(
        self,
        *,
        store: MessageStore,
        directory: UserStore,
        batch_max: int,
        rooms: RoomRegistry,
        broker: Broker,
        cache: Cache,
        limiter: RateLimiter,
        rate_per_minute: int,
        max_chars: int,
        list_ttl: float,
    ) -> None:
        self.store = store
        self.directory = directory
        # The writer reports each committed batch back here (list invalidation, unread
        # counts), so the service owns it rather than being linked to it after the fact.
        self.writer = MessageWriter(
            store, broker, batch_max=batch_max, after_commit=self.after_commit
        )
        self.rooms = rooms
        self.broker = broker
        self.cache = cache
        self.limiter = limiter
        self.rate_per_minute = rate_per_minute
        self.max_chars = max_chars
        self.list_ttl = list_ttl
        self._members: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._known_users: dict[str, tuple[str | None, str | None]] = {}
        self._pending_users: dict[str, tuple[str | None, str | None]] = {}
        self._users_waiting = asyncio.Event()
        self._users_task: asyncio.Task[None] | None = None
        self._next_flush: asyncio.Future[None] | None = None

    def start(self) -> None:
        self.writer.start()
        self._users_task = asyncio.create_task(self._write_users(), name="user-directory")

    async def stop(self) -> None:
        # The writer first: it flushes what is queued, so every acknowledged message is stored.
        await self.writer.stop()
        if self._users_task is not None:
            self._users_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._users_task
        with contextlib.suppress(Exception):
            await self._flush_users()

    # ---- people ------------------------------------------------------------------

    def remember(self, caller: Caller) -> asyncio.Future[None] | None:
        """Keep the user directory current from token claims, writing only on change.

        Written in the background, many users per transaction: a connection storm
        must not cost one commit (and one fsync) per connecting user. Returns the
        future of the write that will include this profile (None if nothing changed),
        for callers that need the directory current before they go on.
        """
        profile = (caller.email, caller.name)
        if self._known_users.get(caller.user_id) == profile:
            return None
        self._known_users[caller.user_id] = profile
        self._pending_users[caller.user_id] = profile
        if self._next_flush is None:
            self._next_flush = asyncio.get_running_loop().create_future()
            # WebSocket connects do not wait on it; its failure is logged by the writer.
            self._next_flush.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._users_waiting.set()
        return self._next_flush

    async def _write_users(self) -> None:
        while True:
            await self._users_waiting.wait()
            self._users_waiting.clear()
            try:
                await self._flush_users()
            except Exception as exc:
                log.warning("user directory not updated, retrying: %s", exc)
                await asyncio.sleep(1.0)
                self._users_waiting.set()

    async def _flush_users(self) -> None:
        pending, self._pending_users = self._pending_users, {}
        done, self._next_flush = self._next_flush, None
        if not pending:
            return
        try:
            await self.directory.remember([(u, e, n) for u, (e, n) in pending.items()])
        except BaseException as exc:
            # Kept for the next write, unless a newer profile arrived meanwhile; whoever
            # waited on this write hears that it failed.
            self._pending_users = {**pending, **self._pending_users}
            if done is not None and not done.done():
                done.set_exception(Unavailable(f"user directory not written: {exc}"))
            raise
        if done is not None and not done.done():
            done.set_result(None)

    # ---- membership -------------------------------------------------------------

    async def members(self, conversation_id: str) -> frozenset[str]:
        members = self._members.get(conversation_id)
        if members is None:
            try:
                members = frozenset(await self.store.participants(conversation_id))
            except DatabaseUnavailable as exc:
                raise Unavailable("storage unavailable") from exc
            if members:
                self._members[conversation_id] = members
                if len(self._members) > _PARTICIPANT_CACHE:
                    self._members.popitem(last=False)
        return members

    async def require_member(self, user_id: str, conversation_id: str) -> frozenset[str]:
        members = await self.members(conversation_id)
        if user_id not in members:
            # 404, not 403: whether a conversation exists is itself not for outsiders.
            raise NotFound("conversation not found")
        return members

    # ---- conversations ----------------------------------------------------------

    async def create_conversation(
        self,
        caller: Caller,
        participant_ids: Sequence[str],
        title: str | None,
        metadata: dict[str, object] | None,
    ) -> tuple[Conversation, bool]:
        people = sorted({*participant_ids, caller.user_id})
        direct_key = "|".join(people) if len(people) == 2 and not title else None
        conversation_id, created = await self.store.create_conversation(
            caller.user_id, people, title, dict(metadata) if metadata else None, direct_key
        )
        if created:
            await self._invalidate_lists(people)
        row = await self.store.conversation(conversation_id, caller.user_id)
        assert row is not None
        return _conversation(row), created

    async def list_conversations(self, caller: Caller, cursor: str | None, limit: int) -> bytes:
        """The caller's conversation list page, encoded; served from cache when unchanged."""
        version = await self.cache.version(_lists_ns(caller.user_id))
        key = f"convlist:{caller.user_id}:{version}:{cursor or ''}:{limit}"
        cached = await self.cache.get(key)
        if cached is not None:
            return cached
        before = _decode_cursor(cursor) if cursor else None
        rows = await self.store.list_conversations(caller.user_id, before, limit + 1)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = _encode_cursor(last.last_activity_at, last.id)
        body = encode(
            ConversationPage(items=[_conversation(r) for r in rows], next_cursor=next_cursor)
        )
        await self.cache.set(key, body, self.list_ttl)
        return body

    async def _invalidate_lists(self, user_ids: Sequence[str]) -> None:
        await self.cache.bump([_lists_ns(user) for user in user_ids])

    async def after_commit(self, messages: Sequence[StoredMessage]) -> None:
        """Every stored message changes its participants' lists (last message, unread)."""
        users: set[str] = set()
        for conversation_id in {m.conversation_id for m in messages}:
            users.update(await self.members(conversation_id))
        await self._invalidate_lists(sorted(users))

    # ---- messages -----------------------------------------------------------------

    async def history(
        self,
        caller: Caller,
        conversation_id: str,
        before: int | None,
        after: int | None,
        limit: int,
    ) -> MessagePage:
        await self.require_member(caller.user_id, conversation_id)
        rows = await self.store.messages(
            conversation_id, after=after, before=before, limit=limit + 1
        )
        more = len(rows) > limit
        if more:
            # Forward pages drop the newest extra row, backward pages the oldest.
            rows = rows[:limit] if after is not None else rows[1:]
        next_cursor = None
        if more and rows:
            next_cursor = str(rows[-1].seq if after is not None else rows[0].seq)
        return MessagePage(items=[message_view(r) for r in rows], next_cursor=next_cursor)

    async def send(
        self,
        caller: Caller,
        conversation_id: str,
        content: str,
        client_msg_id: str | None,
        attachments: list[dict[str, object]] | None = None,
    ) -> Message:
        if len(content) > self.max_chars:
            raise Invalid(f"content is longer than {self.max_chars} characters")
        if not content.strip() and not attachments:
            raise Invalid("content must not be blank")
        if "\x00" in content:
            # PostgreSQL text cannot hold NUL; refused the same way on every backend.
            raise Invalid("content must not contain NUL characters")
        await self.require_member(caller.user_id, conversation_id)
        if self.rate_per_minute:
            retry_after = await self.limiter.hit(
                f"msg:{caller.user_id}", self.rate_per_minute, 60.0
            )
            if retry_after:
                metrics.rate_limited.labels("messages").inc()
                raise RateLimited(
                    f"more than {self.rate_per_minute} messages per minute", retry_after
                )
        stored = await self.writer.submit(
            NewMessage(
                conversation_id=conversation_id,
                sender_id=caller.user_id,
                content=content,
                client_msg_id=client_msg_id,
                attachments=attachments,  # type: ignore[arg-type]
            )
        )
        if stored.conversation_id != conversation_id:
            # The clientMsgId was used before, in another conversation.
            raise Invalid("clientMsgId was already used for another message")
        return message_view(stored)

    async def mark_read(
        self, caller: Caller, message_id: str, conversation_id: str | None = None
    ) -> ReadFrame:
        try:
            message = await self.store.message(message_id)
        except DatabaseUnavailable as exc:
            raise Unavailable("storage unavailable") from exc
        if message is None or (conversation_id and message.conversation_id != conversation_id):
            raise NotFound("message not found")
        members = await self.members(message.conversation_id)
        if caller.user_id not in members:
            raise NotFound("message not found")
        position = await self.store.mark_read(caller.user_id, message)
        receipt = ReadFrame(
            conversation_id=message.conversation_id,
            user_id=caller.user_id,
            message_id=message.id,
            seq=message.seq,
        )
        if position.changed:
            await self._invalidate_lists([caller.user_id])
            await self.broker.publish(
                conversation_channel(message.conversation_id), encode(receipt)
            )
        return receipt

    async def typing(self, caller: Caller, conversation_id: str, is_typing: bool) -> None:
        await self.require_member(caller.user_id, conversation_id)
        frame = TypingFrame(
            conversation_id=conversation_id, user_id=caller.user_id, is_typing=is_typing
        )
        await self.broker.publish(conversation_channel(conversation_id), encode(frame))

    # ---- subscriptions --------------------------------------------------------

    async def subscribe(self, session: Session, conversation_id: str, since: int | None) -> None:
        await self.require_member(session.user_id, conversation_id)
        await self.rooms.join(conversation_id, session, since)

    async def unsubscribe(self, session: Session, conversation_id: str) -> None:
        if conversation_id not in session.subscriptions:
            raise NotFound("not subscribed to this conversation")
        self.rooms.leave(conversation_id, session)


def _lists_ns(user_id: str) -> str:
    return f"lists:{user_id}"


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id,
        title=row.title,
        participant_ids=row.participant_ids,
        created_at=iso(row.created_at),
        last_message=message_view(row.last_message) if row.last_message else None,
        unread_count=max(0, row.last_seq - row.read_seq),
        metadata=row.metadata,
    )


def _encode_cursor(activity: int, conversation_id: str) -> str:
    return base64.urlsafe_b64encode(f"{activity}:{conversation_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        activity, conversation_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        return int(activity), conversation_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid("cursor is not valid") from exc
