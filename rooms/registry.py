"""Rooms by conversation id: spawned on first join, gone when their last session leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from base.errors import Unavailable
from rooms import metrics
from rooms.actor import Blocks, Join, Leave, Resync, Room, RoomStopped
from rooms.broker import Broker
from rooms.session import Session
from state.presence import PresenceTracker
from storage.messages import MessageStore


class RoomRegistry:
    def __init__(
        self,
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
        join_timeout: float,
    ) -> None:
        self._store = store
        self._broker = broker
        self._presence = presence
        self._max_replay = max_replay
        self._typing_ttl = typing_ttl
        self._presence_flush_interval = presence_flush_interval
        self._presence_broadcast_max = presence_broadcast_max
        self._fanout_slice = fanout_slice
        self._io_timeout = io_timeout
        self._join_timeout = join_timeout
        self.rooms: dict[str, Room] = {}
        metrics.rooms_active.set_function(lambda: len(self.rooms))

    def _room(self, conversation_id: str) -> Room:
        room = self.rooms.get(conversation_id)
        if room is None or room.stopped:
            room = Room(
                conversation_id,
                store=self._store,
                broker=self._broker,
                presence=self._presence,
                max_replay=self._max_replay,
                typing_ttl=self._typing_ttl,
                presence_flush_interval=self._presence_flush_interval,
                presence_broadcast_max=self._presence_broadcast_max,
                fanout_slice=self._fanout_slice,
                io_timeout=self._io_timeout,
                on_stop=self._forget,
            )
            self.rooms[conversation_id] = room
            room.start()
        return room

    def _forget(self, room: Room) -> None:
        if self.rooms.get(room.conversation_id) is room:
            del self.rooms[room.conversation_id]

    async def join(
        self,
        conversation_id: str,
        session: Session,
        since: int | None,
        floor: int = 0,
        blocked: frozenset[str] = frozenset(),
    ) -> None:
        """Subscribe a session; returns once `subscribed` (and any replay) is queued.

        Raises `Unavailable` when the room cannot answer (storage down) or does not answer
        within the join timeout; never waits longer than that.
        """
        deadline = asyncio.get_running_loop().time() + self._join_timeout
        for _ in range(3):
            join = Join(session, since, floor, blocked)
            self._room(conversation_id).post(join)
            try:
                # On timeout this cancels `join.done`, which tells the room to skip the join.
                async with asyncio.timeout_at(deadline):
                    await join.done
                return
            except RoomStopped:
                continue  # the room stopped as we posted: the next attempt spawns a new one
            except TimeoutError:
                raise Unavailable("conversation did not answer in time; try again") from None
        raise Unavailable("conversation temporarily unavailable; try again")

    def leave(self, conversation_id: str, session: Session) -> None:
        room = self.rooms.get(conversation_id)
        if room is not None:
            room.post(Leave(session))

    def leave_all(self, session: Session) -> None:
        for conversation_id in tuple(session.subscriptions):
            self.leave(conversation_id, session)

    def hosts(self, user_id: str) -> bool:
        """Whether any room here has a session of this user."""
        return any(room.hosts(user_id) for room in self.rooms.values())

    def users(self) -> set[str]:
        """Every user with a session in some room here."""
        return {user for room in self.rooms.values() for user in room.users()}

    def set_blocks(self, user_id: str, blocked: frozenset[str]) -> None:
        """Whom the user blocks now, for every room with a session of theirs. Rare (a
        block or unblock), so every room is told and those without the user ignore it."""
        for room in self.rooms.values():
            if room.hosts(user_id):
                room.post(Blocks(user_id, blocked))

    async def online(self, conversation_id: str) -> list[str]:
        """Who is online in the conversation, on every process (the presence tracker's view)."""
        return await self._presence.online(conversation_id)

    def resync(self, channels: Sequence[str]) -> None:
        """After a broker reconnect every room checks storage for messages it missed."""
        del channels  # every room resubscribed; each checks its own conversation
        for room in self.rooms.values():
            room.post(Resync())

    async def stop_all(self) -> None:
        rooms = list(self.rooms.values())
        for room in rooms:
            if room.task is not None:
                room.task.cancel()
        await asyncio.gather(*(r.task for r in rooms if r.task is not None), return_exceptions=True)
        self.rooms.clear()
