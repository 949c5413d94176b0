"""A room actor: one asyncio task and a mailbox per active conversation.

The room owns its conversation's local sessions, so it needs no locks. Every
event reaches it through the broker (its conversation's channel), whether it
was produced by this process or another one. Messages carry a gap-free `seq`:
the room forwards each exactly once and in order, reading storage when the
broker skipped one (another process, a Redis outage) and dropping repeats.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from base.errors import Unavailable
from rooms import metrics
from rooms.broker import Broker, conversation_channel
from rooms.frames import Outgoing
from rooms.online import OnlineUsers
from rooms.session import Session
from rooms.views import author, timeline_frame
from schemas.codec import encode, event_head_decoder
from schemas.frames import (
    PresenceChange,
    PresenceFrame,
    Skipped,
    Subscribed,
    TypingFrame,
    Unsubscribed,
)
from state.presence import PresenceTracker
from storage.messages import MessageStore, StoredChange

# Events that take a seq of their own: forwarded once each, in order, gaps read from storage.
_CHANGES = frozenset({"message_updated", "message_deleted", "member"})
# Member actions that end a user's membership: their sessions here stop receiving at once.
_ENDED = frozenset({"removed", "left"})

# How long a room trusts the retention mark it read: a reconnect storm into one room reads it
# once, not once per subscriber. A replay a sweep overtook in that second is still correct:
# it sends the swept messages as they are now (deleted), only not `recovered: false`.
_RETAINED_FRESH = 1.0

log = logging.getLogger("pitchey.rooms")

T = TypeVar("T")


@dataclass(slots=True)
class Join:
    """A subscribe. `done` is answered exactly once: a result, `Unavailable` or `RoomStopped`.
    The registry cancels it when it stops waiting; the room then skips the join."""

    session: Session
    since: int | None
    # A member added without shared history: nothing at or below this seq is replayed.
    floor: int = 0
    # Whom the subscriber blocks: their messages, edits and deletions reach it as `skipped`.
    blocked: frozenset[str] = frozenset()
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(slots=True)
class Leave:
    session: Session


@dataclass(slots=True)
class Event:
    payload: bytes


@dataclass(slots=True)
class Resync:
    """The broker reconnected: events published meanwhile may be missing."""


@dataclass(slots=True)
class Blocks:
    """Whom a user blocks now; the room applies it to that user's sessions, if it has any."""

    user_id: str
    blocked: frozenset[str]


Command = Join | Leave | Event | Resync | Blocks


class Room:
    def __init__(
        self,
        conversation_id: str,
        *,
        store: MessageStore,
        broker: Broker,
        presence: PresenceTracker,
        max_replay: int,
        typing_ttl: float,
        presence_flush_interval: float,
        presence_broadcast_max: int,
        fanout_slice: int,
        io_timeout: float,
        on_stop: Callable[[Room], None],
    ) -> None:
        self.conversation_id = conversation_id
        self.channel = conversation_channel(conversation_id)
        self._store = store
        self._broker = broker
        self._presence = presence
        self._max_replay = max_replay
        self._typing_ttl = typing_ttl
        self._io_timeout = io_timeout
        self._on_stop = on_stop
        self.sessions: dict[Session, None] = {}
        self._local_users: Counter[str] = Counter()
        # Local users who block anyone -> whom; and its inverse, author -> the local users
        # who block them. Both empty in most rooms, so the fan-out's fast path checks one
        # dict's truth and nothing per session.
        self._blocks: dict[str, frozenset[str]] = {}
        self._blocked_by: dict[str, set[str]] = {}
        # Who is online in this conversation, on any node: loaded once when the room
        # starts (and after a broker reconnect), then kept current by presence events.
        self._online = OnlineUsers()
        self._typing: dict[str, float] = {}
        # Presence goes out coalesced: what sessions were last told, and when the next
        # frame is due. A thousand joins make a few frames, not a frame per join per member.
        self._flush_interval = presence_flush_interval
        self._broadcast_max = presence_broadcast_max
        self._fanout_slice = fanout_slice
        self._announced: set[str] = set()
        self._flush_at: float | None = None
        self._last_flush = float("-inf")
        self.last_seq = 0
        # The retention sweep's mark (see _expired_since) and when it was last read.
        self._retained = 0
        self._retained_read_at = float("-inf")
        self._mailbox: asyncio.Queue[Command] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.stopped = False
        # Set when the room could not start (storage or broker down) or was cancelled: pending
        # joins are answered with it instead of being retried on a new room.
        self._refusal: Unavailable | None = None

    # ---- called from outside the actor (never awaits the room) ----------------

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"room:{self.conversation_id}")

    def post(self, command: Command) -> None:
        self._mailbox.put_nowait(command)

    def _on_broker(self, payload: bytes) -> None:
        self._mailbox.put_nowait(Event(payload))

    def hosts(self, user_id: str) -> bool:
        """Whether a session of this user is subscribed here."""
        return user_id in self._local_users

    def users(self) -> list[str]:
        """The users with a session subscribed here."""
        return list(self._local_users)

    # ---- the actor ---------------------------------------------------------------

    async def _bounded(self, call: Awaitable[T]) -> T:
        # Every storage and broker call of a room has a deadline: one that hangs (a database
        # behind a dead connection) must not hang the room and every session waiting on it.
        return await asyncio.wait_for(call, self._io_timeout)

    async def _run(self) -> None:
        command: Command | None = None
        try:
            if not await self._start():
                return
            while True:
                command = await self._next()
                if command is None:
                    await self._expire_typing()
                else:
                    await self._handle(command)
                    command = None
                # Checked after every command too: a busy mailbox never lets _next time out.
                if self._flush_at is not None and time.monotonic() >= self._flush_at:
                    await self._flush_presence()
                if not self.sessions and self._mailbox.empty():
                    break
        except asyncio.CancelledError:
            self._refusal = Unavailable("conversation closed; try again")
        except Exception:
            log.exception("room %s crashed", self.conversation_id)
            for session in self.sessions:
                session.close(1011, "internal error")
        finally:
            if isinstance(command, Join) and not command.done.done():
                # Never leave a subscribe waiting: after a crash the registry retries it.
                command.done.set_exception(self._refusal or RoomStopped())
            self.stopped = True
            # Synchronously, before any await: a Join posted from now on spawns a new room.
            self._on_stop(self)
            self._fail_pending()
            await self._cleanup()

    async def _start(self) -> bool:
        try:
            await self._bounded(self._broker.subscribe(self.channel, self._on_broker))
            # After subscribing: any message stored later arrives as an event, and
            # any event for a seq at or below this one is a repeat.
            self.last_seq = await self._bounded(self._store.last_seq(self.conversation_id))
        except Exception as exc:
            # An outage, not a bug: no traceback, and the joins waiting are told to retry later.
            log.warning("room %s could not start: %s", self.conversation_id, _describe(exc))
            self._refusal = Unavailable("conversation temporarily unavailable; try again")
            return False
        await self._load_online()
        self._announced = self._online.as_set()
        return True

    async def _next(self) -> Command | None:
        deadlines = list(self._typing.values())
        if self._flush_at is not None:
            deadlines.append(self._flush_at)
        if not deadlines:
            return await self._mailbox.get()
        timeout = max(0.0, min(deadlines) - time.monotonic())
        try:
            return await asyncio.wait_for(self._mailbox.get(), timeout)
        except TimeoutError:
            return None

    async def _handle(self, command: Command) -> None:
        match command:
            case Event(payload):
                await self._event(payload)
            case Join():
                await self._join(command)
            case Leave(session):
                await self._leave(session)
            case Resync():
                await self._catch_up(None)
                await self._load_online()
                self._schedule_flush()
            case Blocks(user_id, blocked):
                if user_id in self._local_users:
                    self._set_blocks(user_id, blocked)

    def _set_blocks(self, user_id: str, blocked: frozenset[str]) -> None:
        for other in self._blocks.pop(user_id, ()):
            blockers = self._blocked_by[other]
            blockers.discard(user_id)
            if not blockers:
                del self._blocked_by[other]
        if blocked:
            self._blocks[user_id] = blocked
            for other in blocked:
                self._blocked_by.setdefault(other, set()).add(user_id)

    def _skipped(self, seq: int) -> Outgoing:
        return Outgoing(encode(Skipped(conversation_id=self.conversation_id, seq=seq)))

    async def _join(self, join: Join) -> None:
        session = join.session
        if join.done.done():
            return  # the subscriber stopped waiting (timeout or disconnect)
        if session.closed:
            join.done.set_result(None)
            return
        new = session not in self.sessions
        replay: list[Outgoing] = []
        recovered = True
        if join.since is not None and join.since < self.last_seq:
            missing = self.last_seq - join.since
            if missing > self._max_replay or await self._expired_since(join):
                recovered = False
            else:
                # Bounded by last_seq: anything newer reaches this session as a live event.
                try:
                    stored = await self._bounded(
                        self._store.timeline(
                            self.conversation_id,
                            after=join.since,
                            before=self.last_seq + 1,
                            floor=join.floor,
                        )
                    )
                except Exception as exc:
                    # This subscriber alone is told; the room and its other sessions go on.
                    log.warning(
                        "replay for %s in %s failed: %s",
                        session.user_id,
                        self.conversation_id,
                        _describe(exc),
                    )
                    if not join.done.done():
                        join.done.set_exception(
                            Unavailable("messages cannot be replayed now; subscribe again later")
                        )
                    return
                if join.done.done():
                    return  # abandoned while we read
                # Messages and changes (edits, deletions, members) in seq order; those by
                # someone the subscriber blocks as `skipped`, so the replay has no gap.
                replay = [
                    self._skipped(m.seq)
                    if join.blocked and author(m) in join.blocked
                    else Outgoing(timeline_frame(m))
                    for m in stored
                ]
                if not session.can_take(len(replay), sum(len(f.payload) for f in replay)):
                    # Sending it would overflow the session's queue and disconnect it:
                    # the client pages this gap over REST instead.
                    replay = []
                    recovered = False
        # The latest word on whom the user blocks, for all of their sessions here.
        self._set_blocks(session.user_id, join.blocked)
        if new:
            self.sessions[session] = None
            session.subscriptions.append(self.conversation_id)
            self._local_users[session.user_id] += 1
            if self._local_users[session.user_id] == 1:
                self._online.add(session.user_id)
                if await self._presence_change(session.user_id, joined=True):
                    await self._publish_presence(session.user_id, True)
        subscribed = Subscribed(
            conversation_id=self.conversation_id,
            seq=self.last_seq,
            # The room's own view, kept current by presence events: asking the tracker
            # (Redis) on every join made a big room's joins quadratic in round trips.
            online=self._online.sorted(),
            recovered=recovered,
            replayed=len(replay),
        )
        session.send(Outgoing(encode(subscribed)))
        for frame in replay:
            session.send(frame)
        if not join.done.done():
            join.done.set_result(None)

    async def _expired_since(self, join: Join) -> bool:
        """Whether the retention sweep erased messages after `since`: they were erased without
        events, so a replay would miss them; the client pages history instead. A failed read
        says so too (the client pages either way)."""
        now = time.monotonic()
        if now - self._retained_read_at > _RETAINED_FRESH:
            try:
                self._retained = await self._bounded(
                    self._store.retained_after(self.conversation_id)
                )
            except Exception as exc:
                log.warning("retention of %s unreadable: %s", self.conversation_id, _describe(exc))
                return True
            self._retained_read_at = now
        return join.since is not None and join.since < self._retained

    async def _leave(self, session: Session) -> None:
        if session not in self.sessions:
            return
        del self.sessions[session]
        if self.conversation_id in session.subscriptions:
            session.subscriptions.remove(self.conversation_id)
        user = session.user_id
        self._local_users[user] -= 1
        if self._local_users[user] <= 0:
            del self._local_users[user]
            self._set_blocks(user, frozenset())
            if await self._presence_change(user, joined=False):
                await self._publish_presence(user, False)

    async def _load_online(self) -> None:
        try:
            self._online = OnlineUsers(
                await self._bounded(self._presence.online(self.conversation_id))
            )
        except Exception:
            log.warning("presence of %s unavailable; listing local users", self.conversation_id)
        for user in self._local_users:
            self._online.add(user)

    async def _presence_change(self, user_id: str, *, joined: bool) -> bool:
        """Tell the tracker; True if the user's online state changed. Never raises:
        a presence backend failure must not take the room (and its sessions) down."""
        try:
            if joined:
                return await self._bounded(self._presence.join(self.conversation_id, user_id))
            return await self._bounded(self._presence.leave(self.conversation_id, user_id))
        except Exception:
            log.warning("presence update for %s in %s failed", user_id, self.conversation_id)
            return False

    async def _publish_presence(self, user_id: str, online: bool) -> None:
        frame = encode(
            PresenceChange(conversation_id=self.conversation_id, user_id=user_id, online=online)
        )
        try:
            await self._bounded(self._broker.publish(self.channel, frame))
        except Exception:
            log.warning("presence for %s in %s not published", user_id, self.conversation_id)

    async def _event(self, payload: bytes) -> None:
        try:
            head = event_head_decoder.decode(payload)
        except msgspec.DecodeError:
            log.warning("undecodable event on %s dropped", self.channel)
            return
        seq: int | None = None
        # Whose words the event carries: receivers who block them are spared it.
        by: str | None = None
        if head.type == "message" and head.message is not None:
            seq = head.message.seq
            by = head.message.sender_id
        elif head.type in _CHANGES:
            seq = head.seq
            if head.type == "message_updated" and head.message is not None:
                by = head.message.sender_id
            elif head.type == "message_deleted":
                by = head.sender_id
        if seq is not None:
            if seq <= self.last_seq:
                return  # already forwarded (a repeat from replay or another path)
            if seq > self.last_seq + 1:
                await self._catch_up(seq - 1)
                if seq <= self.last_seq:
                    return
            self.last_seq = seq
            if head.type == "message" and head.message is not None:
                # A message ends its sender's typing state.
                self._typing.pop(head.message.sender_id, None)
            elif head.type == "member" and head.user_id and head.action in _ENDED:
                await self._end_membership(head.user_id, head.action)
        elif head.type == "presence_change":
            if head.user_id is not None:
                if head.online:
                    self._online.add(head.user_id)
                elif head.user_id not in self._local_users:
                    self._online.discard(head.user_id)
                self._schedule_flush()
            return  # folded into the next `presence` frame, not forwarded one by one
        elif head.type == "typing" and head.user_id is not None:
            by = head.user_id
            if head.is_typing:
                self._typing[head.user_id] = time.monotonic() + self._typing_ttl
            else:
                self._typing.pop(head.user_id, None)
        await self._fanout(Outgoing(payload), by, seq)

    async def _catch_up(self, up_to: int | None) -> None:
        """Forward stored messages after last_seq (up to `up_to`, or all) from storage."""
        try:
            if up_to is None:
                up_to = await self._bounded(self._store.last_seq(self.conversation_id))
            if up_to <= self.last_seq:
                return
            stored = await self._bounded(
                self._store.timeline(self.conversation_id, after=self.last_seq, before=up_to + 1)
            )
        except Exception:
            log.warning("room %s could not read missed messages", self.conversation_id)
            return
        for item in stored:
            if item.seq == self.last_seq + 1:
                self.last_seq = item.seq
                if (
                    isinstance(item, StoredChange)
                    and item.kind == "member"
                    and item.user_id
                    and item.action in _ENDED
                ):
                    await self._end_membership(item.user_id, item.action)
                await self._fanout(Outgoing(timeline_frame(item)), author(item), item.seq)

    async def _end_membership(self, user_id: str, action: str) -> None:
        """A member was removed (or left): their sessions here are unsubscribed before the
        event goes out, so nothing of the conversation reaches them from this seq on."""
        frame = Outgoing(encode(Unsubscribed(conversation_id=self.conversation_id, reason=action)))
        for session in [s for s in self.sessions if s.user_id == user_id]:
            await self._leave(session)
            session.send(frame)

    async def _fanout(self, frame: Outgoing, by: str | None = None, seq: int | None = None) -> None:
        # One encoded frame for every session; a full queue closes that session only.
        started = time.perf_counter()
        sessions = self.sessions
        count = len(sessions)
        step = self._fanout_slice
        if count <= step:
            self._send(sessions, frame, by, seq)
        else:
            # Slices, with the event loop running between them: handing a frame to 1,000
            # sessions and writing it out is about 11 ms of work, which every timer and every
            # other connection's frame would otherwise wait behind. The room's next event
            # waits for the last slice (the actor is busy), so the room's order holds.
            everyone = list(sessions)
            for start in range(0, count, step):
                if start:
                    await asyncio.sleep(0)
                self._send(everyone[start : start + step], frame, by, seq)
        metrics.frames_out.inc(count)
        metrics.fanout_seconds.observe(time.perf_counter() - started)

    def _send(
        self, sessions: Iterable[Session], frame: Outgoing, by: str | None, seq: int | None
    ) -> None:
        blockers = self._blocked_by.get(by) if by is not None and self._blocked_by else None
        if blockers:
            # Those who block the author get `skipped` (an event with a seq) or nothing.
            instead = self._skipped(seq) if seq is not None else None
            for session in sessions:
                if session.user_id not in blockers:
                    session.send(frame)
                elif instead is not None:
                    session.send(instead)
        else:
            for session in sessions:
                session.send(frame)

    def _schedule_flush(self) -> None:
        if self._flush_at is None:
            self._flush_at = max(time.monotonic(), self._last_flush + self._flush_gap())

    def _flush_gap(self) -> float:
        # Each frame goes to every session here. Above the list threshold, spacing frames in
        # proportion to the sessions bounds a room's presence traffic on a node at
        # PRESENCE_BROADCAST_MAX_MEMBERS / PRESENCE_FLUSH_INTERVAL frames per second, whatever
        # its size: 10 rooms of 1,000 joining at once sent 40,000 count frames a second.
        sessions = len(self.sessions)
        if sessions <= self._broadcast_max:
            return self._flush_interval
        return self._flush_interval * sessions / self._broadcast_max

    async def _flush_presence(self) -> None:
        """One `presence` frame with what changed since the last one (or only the count)."""
        self._flush_at = None
        self._last_flush = time.monotonic()
        joined = self._online.difference(self._announced)
        left = {user for user in self._announced if user not in self._online}
        if not joined and not left:
            return
        self._announced = self._online.as_set()
        if len(self._online) > self._broadcast_max:
            frame = PresenceFrame(
                conversation_id=self.conversation_id, online_count=len(self._online)
            )
        else:
            frame = PresenceFrame(
                conversation_id=self.conversation_id,
                online_count=len(self._online),
                joined=sorted(joined) or None,
                left=sorted(left) or None,
            )
        await self._fanout(Outgoing(encode(frame)))

    async def _expire_typing(self) -> None:
        now = time.monotonic()
        for user, expires in list(self._typing.items()):
            if expires <= now:
                del self._typing[user]
                stopped = TypingFrame(
                    conversation_id=self.conversation_id, user_id=user, is_typing=False
                )
                await self._fanout(Outgoing(encode(stopped)), user)

    def _fail_pending(self) -> None:
        # Joins that arrived after the room decided to stop are re-posted by the registry.
        while not self._mailbox.empty():
            command = self._mailbox.get_nowait()
            if isinstance(command, Join) and not command.done.done():
                command.done.set_exception(self._refusal or RoomStopped())

    async def _cleanup(self) -> None:
        try:
            await self._bounded(self._broker.unsubscribe(self.channel, self._on_broker))
        except Exception:
            log.warning("unsubscribe from %s failed", self.channel)
        for user in list(self._local_users):
            try:
                if await self._bounded(self._presence.leave(self.conversation_id, user)):
                    await self._publish_presence(user, False)
            except Exception:
                log.warning("presence leave for %s failed", user)
        self._local_users.clear()
        self.sessions.clear()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


class RoomStopped(Exception):
    """The room stopped before handling the command; the caller retries on a new room."""
