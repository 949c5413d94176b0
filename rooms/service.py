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
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import msgspec

from base.clock import iso
from base.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unavailable
from base.failures import RepeatedFailure
from base.identity import Caller
from rooms import metrics
from rooms.broker import MEMBERSHIP_CHANNEL, Broker, conversation_channel
from rooms.registry import RoomRegistry
from rooms.session import Session
from rooms.views import change_frame, message_view
from rooms.writer import MessageWriter
from schemas.codec import encode
from schemas.frames import ReadFrame, TypingFrame
from schemas.messages import (
    BlockList,
    Conversation,
    ConversationPage,
    Message,
    MessagePage,
    Presence,
)
from state.cache import Cache
from state.ratelimit import RateLimiter
from storage.db import DatabaseUnavailable
from storage.messages import (
    BlockStore,
    ConversationRow,
    MessageStore,
    NewMessage,
    StoredChange,
    StoredMessage,
    direct_key,
)
from storage.users import UserStore

log = logging.getLogger("pitchey.messaging")

T = TypeVar("T")

# Membership is cached until it changes: a change is published on MEMBERSHIP_CHANNEL and
# every process forgets that conversation (all of them after a broker reconnect, since
# such a notice may have been missed). The bound only caps memory.
_PARTICIPANT_CACHE = 100_000
_NO_BLOCKS: frozenset[str] = frozenset()


class Messaging:
    def __init__(
        self,
        *,
        store: MessageStore,
        directory: UserStore,
        blocks: BlockStore,
        batch_max: int,
        rooms: RoomRegistry,
        broker: Broker,
        cache: Cache,
        limiter: RateLimiter,
        rate_per_minute: int,
        max_chars: int,
        list_ttl: float,
        create_rate_per_minute: int = 0,
        max_participants: int = 1000,
        typing_interval: float = 0.0,
        edit_window: float = 172_800.0,
        max_blocks: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.directory = directory
        self.blocks = blocks
        # Whether a conversation is direct never changes: cached for good (bounded).
        self._direct: OrderedDict[str, bool] = OrderedDict()
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
        self.create_rate_per_minute = create_rate_per_minute
        self.max_participants = max_participants
        self.typing_interval = typing_interval
        self.edit_window = edit_window
        self.max_blocks = max_blocks
        self._clock = clock
        # (user, conversation) -> when its last typing frame was relayed, oldest first.
        self._typing_relayed: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._members: OrderedDict[str, frozenset[str]] = OrderedDict()
        # user -> whom they block; see _blocks.
        self._blocks_of: OrderedDict[str, frozenset[str]] = OrderedDict()
        # Bumped whenever a user's blocks are forgotten: a read that began before must not
        # put its older answer back into the cache.
        self._blocks_epoch = 0
        # Users whose sessions here need their blocks reloaded and handed to their rooms.
        self._stale_blocks: set[str] = set()
        self._blocks_waiting = asyncio.Event()
        self._blocks_task: asyncio.Task[None] | None = None
        self._blocks_failures = RepeatedFailure(log, "blocks not reloaded for the rooms, retrying")
        self._known_users: dict[str, tuple[str | None, str | None]] = {}
        self._pending_users: dict[str, tuple[str | None, str | None]] = {}
        self._users_waiting = asyncio.Event()
        self._users_task: asyncio.Task[None] | None = None
        self._next_flush: asyncio.Future[None] | None = None
        # Retried every second while the database is away: one story, not a line a second.
        self._users_failures = RepeatedFailure(log, "user directory not updated, retrying")

    def start(self) -> None:
        self.writer.start()
        self._users_task = asyncio.create_task(self._write_users(), name="user-directory")
        self._blocks_task = asyncio.create_task(self._push_blocks(), name="blocks-to-rooms")

    async def listen(self) -> None:
        """Hear of membership changes made on any process (after the broker started)."""
        await self.broker.subscribe(MEMBERSHIP_CHANNEL, self._on_membership_changed)

    def _on_membership_changed(self, payload: bytes) -> None:
        if payload.startswith(_BLOCKS_PREFIX):
            user_id, blocked = _blocks_notice(payload[len(_BLOCKS_PREFIX) :])
            self._forget_blocks(user_id)
            if blocked is not None:
                # At once, before any event published after the notice reaches the rooms
                # (one broker connection delivers in order); the reload queued above
                # settles changes made at the same moment on two processes.
                self.rooms.set_blocks(user_id, blocked)
            return
        self._members.pop(payload.decode(errors="replace"), None)

    def forget_members(self) -> None:
        """After a broker reconnect: a membership notice may have been missed meanwhile."""
        self._members.clear()
        self._blocks_of.clear()
        self._blocks_epoch += 1
        self._stale_blocks.update(self.rooms.users())
        self._blocks_waiting.set()

    async def stop(self) -> None:
        # The writer first: it flushes what is queued, so every acknowledged message is stored.
        await self.writer.stop()
        for task in (self._users_task, self._blocks_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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
                self._users_failures.failed(exc)
                await asyncio.sleep(1.0)
                self._users_waiting.set()
                continue
            self._users_failures.succeeded()

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

    async def _membership_changed(self, conversation_id: str) -> None:
        self._members.pop(conversation_id, None)
        try:
            await self.broker.publish(MEMBERSHIP_CHANNEL, conversation_id.encode())
        except Exception:
            # Stored is what counts; the other processes' rooms still hear the member event.
            log.warning("membership change of %s not announced", conversation_id)

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
        if len(people) > self.max_participants:
            raise Invalid(
                f"a conversation has at most {self.max_participants} participants"
                f" (you included); {len(people)} given"
            )
        if self.create_rate_per_minute:
            retry_after = await self.limiter.hit(
                f"conv:{caller.user_id}", self.create_rate_per_minute, 60.0
            )
            if retry_after:
                metrics.rate_limited.labels("conversations").inc()
                raise RateLimited(
                    f"more than {self.create_rate_per_minute} conversations created per minute",
                    retry_after,
                )
        key = direct_key(people[0], people[1]) if len(people) == 2 and not title else None
        if key is not None and await self._blocked_by_any(caller.user_id, people):
            raise Forbidden("you cannot open a conversation with this user", code="blocked")
        conversation_id, created = await self.store.create_conversation(
            caller.user_id, people, title, dict(metadata) if metadata else None, key
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
        # A member added without shared history sees the conversation from their join on
        # (the reader's joined_seq, applied by the same query). Messages of people the
        # caller blocks are left out (seqs keep their gaps).
        rows = await self.store.messages(
            conversation_id,
            after=after,
            before=before,
            limit=limit + 1,
            reader=caller.user_id,
            viewer=caller.user_id,
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
        members = await self.require_member(caller.user_id, conversation_id)
        if await self._is_direct(conversation_id) and await self._blocked_by_any(
            caller.user_id, sorted(members - {caller.user_id})
        ):
            raise Forbidden("you cannot write to this user", code="blocked")
        await self._charge_message(caller)
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
        if not self._typing_due(caller.user_id, conversation_id):
            # Dropped without an answer: a typing frame is a hint, and the indicator
            # already relayed lasts TYPING_TTL (a message ends it anyway).
            return
        frame = TypingFrame(
            conversation_id=conversation_id, user_id=caller.user_id, is_typing=is_typing
        )
        await self.broker.publish(conversation_channel(conversation_id), encode(frame))

    def _typing_due(self, user_id: str, conversation_id: str) -> bool:
        """True at most once per `typing_interval` per user and conversation (this process)."""
        if self.typing_interval <= 0:
            return True
        now = self._clock()
        key = (user_id, conversation_id)
        last = self._typing_relayed.get(key)
        if last is not None and now - last < self.typing_interval:
            return False
        self._typing_relayed[key] = now
        self._typing_relayed.move_to_end(key)
        # Entries older than the interval decide nothing: drop them from the old end.
        while self._typing_relayed:
            oldest_key, oldest = next(iter(self._typing_relayed.items()))
            if now - oldest < self.typing_interval:
                break
            del self._typing_relayed[oldest_key]
        return True

    async def _charge_message(self, caller: Caller) -> None:
        """One unit of the caller's MESSAGE_RATE_LIMIT_PER_MINUTE; RateLimited past it."""
        if not self.rate_per_minute:
            return
        retry_after = await self.limiter.hit(f"msg:{caller.user_id}", self.rate_per_minute, 60.0)
        if retry_after:
            metrics.rate_limited.labels("messages").inc()
            raise RateLimited(f"more than {self.rate_per_minute} messages per minute", retry_after)

    async def _is_direct(self, conversation_id: str) -> bool:
        direct = self._direct.get(conversation_id)
        if direct is None:
            try:
                info = await self.store.conversation_info(conversation_id)
            except DatabaseUnavailable as exc:
                raise Unavailable("storage unavailable") from exc
            direct = info is not None and info.direct
            self._direct[conversation_id] = direct
            if len(self._direct) > _PARTICIPANT_CACHE:
                self._direct.popitem(last=False)
        return direct

    # ---- blocks ---------------------------------------------------------------------

    async def _blocks(self, user_id: str) -> frozenset[str]:
        """Whom `user_id` blocks. Every direct send and every subscribe asks, so it is
        cached in the process until the user changes it (announced on MEMBERSHIP_CHANNEL,
        like membership)."""
        blocked = self._blocks_of.get(user_id)
        if blocked is not None:
            return blocked
        epoch = self._blocks_epoch
        try:
            # Most users block nobody: they share one empty set instead of one each.
            blocked = frozenset(await self.blocks.blocked(user_id)) or _NO_BLOCKS
        except DatabaseUnavailable as exc:
            raise Unavailable("storage unavailable") from exc
        if epoch == self._blocks_epoch:
            self._blocks_of[user_id] = blocked
            if len(self._blocks_of) > _PARTICIPANT_CACHE:
                self._blocks_of.popitem(last=False)
        return blocked

    async def _blocked_by_any(self, user_id: str, others: Sequence[str]) -> bool:
        """Whether any of `others` blocks `user_id`."""
        for other in others:
            if other != user_id and user_id in await self._blocks(other):
                return True
        return False

    def _forget_blocks(self, user_id: str) -> None:
        """The user's blocks changed (here or on another process): reload them, and hand
        them to the rooms where the user has sessions, which filter by them."""
        self._blocks_of.pop(user_id, None)
        self._blocks_epoch += 1
        if self.rooms.hosts(user_id):
            self._stale_blocks.add(user_id)
            self._blocks_waiting.set()

    async def _push_blocks(self) -> None:
        """One user at a time, in the order their changes were heard: a room never gets an
        older answer after a newer one."""
        while True:
            await self._blocks_waiting.wait()
            self._blocks_waiting.clear()
            while self._stale_blocks:
                user_id = self._stale_blocks.pop()
                epoch = self._blocks_epoch
                try:
                    blocked = await self._blocks(user_id)
                except Unavailable as exc:
                    self._blocks_failures.failed(exc)
                    self._stale_blocks.add(user_id)
                    await asyncio.sleep(1.0)
                    continue
                self._blocks_failures.succeeded()
                if epoch != self._blocks_epoch:
                    # Some blocks changed while this was read: it may be older than what
                    # a room was told meanwhile. Read again rather than send it.
                    self._stale_blocks.add(user_id)
                    continue
                self.rooms.set_blocks(user_id, blocked)

    async def _blocks_changed(self, user_id: str) -> None:
        """Before the answer, every process hears whom the user blocks now (the notice
        carries it): whatever the blocker's sessions receive after the answer is filtered."""
        self._forget_blocks(user_id)
        notice = encode([user_id, None])
        with contextlib.suppress(Unavailable):
            blocked = await self._blocks(user_id)
            self.rooms.set_blocks(user_id, blocked)
            notice = encode([user_id, sorted(blocked)])
        # Their conversation list shows other last messages and unread counts now.
        with contextlib.suppress(Exception):
            await self._invalidate_lists([user_id])
        with contextlib.suppress(Exception):
            await self.broker.publish(MEMBERSHIP_CHANNEL, _BLOCKS_PREFIX + notice)

    async def block(self, caller: Caller, user_id: str) -> None:
        if user_id == caller.user_id:
            raise Invalid("you cannot block yourself")
        try:
            done = await self.blocks.block(caller.user_id, user_id, self.max_blocks)
        except DatabaseUnavailable as exc:
            raise Unavailable("storage unavailable, block not stored") from exc
        if not done:
            raise Conflict(
                f"you already block {self.max_blocks} users; unblock one first",
                code="too_many_blocks",
            )
        await self._blocks_changed(caller.user_id)

    async def unblock(self, caller: Caller, user_id: str) -> None:
        await self.blocks.unblock(caller.user_id, user_id)
        await self._blocks_changed(caller.user_id)

    async def blocked(self, caller: Caller) -> BlockList:
        return BlockList(items=await self.blocks.blocked(caller.user_id))

    # ---- edits and deletions -------------------------------------------------------

    async def _own_message(self, caller: Caller, message_id: str) -> StoredMessage:
        """The message, if the caller may see it; 404 otherwise (as for outsiders)."""
        try:
            message = await self.store.message(message_id)
        except DatabaseUnavailable as exc:
            raise Unavailable("storage unavailable") from exc
        if message is None:
            raise NotFound("message not found")
        if caller.role != "admin":
            members = await self.members(message.conversation_id)
            if caller.user_id not in members:
                raise NotFound("message not found")
        return message

    async def edit(self, caller: Caller, message_id: str, content: str) -> Message:
        if len(content) > self.max_chars:
            raise Invalid(f"content is longer than {self.max_chars} characters")
        if not content.strip():
            raise Invalid("content must not be blank")
        if "\x00" in content:
            raise Invalid("content must not contain NUL characters")
        message = await self._own_message(caller, message_id)
        if message.sender_id != caller.user_id:
            raise Forbidden("only the sender may edit a message")
        if message.deleted_at is not None:
            raise Conflict("the message was deleted", code="message_deleted")
        if self.edit_window and time.time() * 1000 - message.created_at > self.edit_window * 1000:
            raise Conflict(
                f"messages can be edited for {self.edit_window:g} seconds after sending",
                code="edit_window_closed",
            )
        # Edits fan out like messages: the same budget.
        await self._charge_message(caller)
        change = await self._write(self.store.edit_message(message_id, content))
        if change is None or change.message is None:
            raise Conflict("the message was deleted", code="message_deleted")
        await self._announce(change)
        return message_view(change.message)

    async def delete(self, caller: Caller, message_id: str) -> None:
        """The sender or an admin; deleting twice is not an error (the first one counted)."""
        message = await self._own_message(caller, message_id)
        if message.sender_id != caller.user_id and caller.role != "admin":
            raise Forbidden("only the sender or an admin may delete a message")
        if message.deleted_at is not None:
            return
        change = await self._write(self.store.delete_message(message_id, caller.user_id))
        if change is not None:
            await self._announce(change)

    async def _write(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except LookupError as exc:
            raise NotFound("conversation not found") from exc
        except DatabaseUnavailable as exc:
            raise Unavailable("storage unavailable, change not stored") from exc

    async def _announce(self, change: StoredChange) -> None:
        """After the commit: lists (last message, unread) are stale, rooms hear the event."""
        members = await self.members(change.conversation_id)
        users = set(members)
        if change.user_id:
            users.add(change.user_id)
        await self._invalidate_lists(sorted(users))
        try:
            await self.broker.publish(
                conversation_channel(change.conversation_id), change_frame(change)
            )
        except Exception:
            # Rooms that miss it find the gap at the next event and read storage.
            log.warning("change %d of %s not published", change.seq, change.conversation_id)

    # ---- erasure and retention ---------------------------------------------------

    async def erase_sent(self, user_id: str, actor: str, batch: int = 200) -> None:
        """Every message the user sent becomes a deletion, as DELETE /api/messages/{id}
        makes one (its own seq, a `message_deleted` event), `batch` per transaction; their
        uploads no message took go too."""
        while changes := await self._write(self.store.erase_sent(user_id, actor, batch)):
            for change in changes:
                await self._announce(change)
        await self._write(self.store.release_uploads(user_id))

    async def leave_everywhere(self, user_id: str, actor: str, batch: int = 200) -> None:
        """The user is removed from every conversation (a `member` event each: their
        sessions are unsubscribed on every node); their read positions go with them."""
        while changes := await self._write(self.store.leave_all(user_id, actor, batch)):
            for change in changes:
                await self._membership_changed(change.conversation_id)
                await self._announce(change)
        await self._invalidate_lists([user_id])

    async def erase_blocks(self, user_id: str) -> None:
        """Blocks the user made and blocks of them; every process forgets its copies."""
        blockers = await self.blocks.blockers_of(user_id)
        await self.blocks.erase_user(user_id)
        for blocker in (user_id, *blockers):
            await self._blocks_changed(blocker)

    async def swept(self, conversation_ids: Sequence[str]) -> None:
        """After the retention sweep: lists show last messages, now erased."""
        users: set[str] = set()
        for conversation_id in conversation_ids:
            users.update(await self.members(conversation_id))
        await self._invalidate_lists(sorted(users))

    # ---- members ------------------------------------------------------------------

    async def add_participants(
        self, caller: Caller, conversation_id: str, user_ids: Sequence[str], share_history: bool
    ) -> Conversation:
        members = await self.require_member(caller.user_id, conversation_id)
        info = await self.store.conversation_info(conversation_id)
        if info is None:
            raise NotFound("conversation not found")
        if info.direct:
            raise Conflict(
                "a direct conversation cannot gain members; create a group conversation",
                code="direct_conversation",
            )
        new = sorted(set(user_ids) - members)
        if len(members) + len(new) > self.max_participants:
            raise Invalid(
                f"a conversation has at most {self.max_participants} participants;"
                f" {len(members) + len(new)} with these"
            )
        if new:
            changes = await self._write(
                self.store.add_participants(conversation_id, new, caller.user_id, share_history)
            )
            await self._membership_changed(conversation_id)
            for change in changes:
                await self._announce(change)
        row = await self.store.conversation(conversation_id, caller.user_id)
        if row is None:
            raise NotFound("conversation not found")
        return _conversation(row)

    async def remove_participant(self, caller: Caller, conversation_id: str, user_id: str) -> None:
        """Leave (yourself) or remove someone (the conversation's creator only)."""
        members = await self.require_member(caller.user_id, conversation_id)
        info = await self.store.conversation_info(conversation_id)
        if info is None:
            raise NotFound("conversation not found")
        if user_id != caller.user_id and info.created_by != caller.user_id:
            raise Forbidden("only the conversation's creator may remove others")
        if user_id not in members:
            raise NotFound("not a participant of this conversation")
        if info.direct:
            raise Conflict("nobody can leave a direct conversation", code="direct_conversation")
        change = await self._write(
            self.store.remove_participant(conversation_id, user_id, caller.user_id)
        )
        await self._membership_changed(conversation_id)
        if change is not None:
            await self._announce(change)

    # ---- subscriptions --------------------------------------------------------

    async def subscribe(self, session: Session, conversation_id: str, since: int | None) -> None:
        await self.require_member(session.user_id, conversation_id)
        floor = 0
        if since is not None:
            try:
                floor = await self.store.joined_seq(conversation_id, session.user_id)
            except DatabaseUnavailable as exc:
                raise Unavailable("storage unavailable") from exc
        blocked = await self._blocks(session.user_id)
        await self.rooms.join(conversation_id, session, since, floor, blocked)
        if session.user_id not in await self.members(conversation_id):
            # Removed while joining, after the room forwarded the removal: the membership
            # notice precedes the member event, so this check catches what the room missed.
            self.rooms.leave(conversation_id, session)
            raise NotFound("conversation not found")
        if self._blocks_of.get(session.user_id) != blocked:
            # The blocks changed while joining, and the rooms were told before this one
            # had the session: tell it (after the others, in order).
            self._stale_blocks.add(session.user_id)
            self._blocks_waiting.set()

    async def presence(self, caller: Caller, conversation_id: str) -> Presence:
        """Who is online now (members only); the list a large room's frames leave out."""
        await self.require_member(caller.user_id, conversation_id)
        try:
            online = await self.rooms.online(conversation_id)
        except Exception as exc:
            raise Unavailable("presence unavailable") from exc
        return Presence(conversation_id=conversation_id, online=online, online_count=len(online))

    async def unsubscribe(self, session: Session, conversation_id: str) -> None:
        if conversation_id not in session.subscriptions:
            raise NotFound("not subscribed to this conversation")
        self.rooms.leave(conversation_id, session)


# A notice on MEMBERSHIP_CHANNEL with this prefix names a user whose blocks changed
# (conversation ids are UUIDs: none starts with it): a JSON array [user, blocked or null].
_BLOCKS_PREFIX = b"blocks:"
_blocks_notice_decoder = msgspec.json.Decoder(tuple[str, list[str] | None])


def _blocks_notice(body: bytes) -> tuple[str, frozenset[str] | None]:
    """(user, whom they block now, if the notice says). A bare user id is what processes
    of the previous release send during a rolling upgrade: only "reload"."""
    try:
        user_id, blocked = _blocks_notice_decoder.decode(body)
    except msgspec.DecodeError:
        return body.decode(errors="replace"), None
    return user_id, frozenset(blocked) if blocked is not None else None


def _lists_ns(user_id: str) -> str:
    return f"lists:{user_id}"


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id,
        title=row.title,
        participant_ids=row.participant_ids,
        created_at=iso(row.created_at),
        last_message=message_view(row.last_message) if row.last_message else None,
        unread_count=row.unread,
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
