"""Per-user delivery: every session of a user, on every process, gets events addressed to them.

Used for notifications and inbox counts. One broker channel per user with at
least one local session; the hub forwards the payload to each of them.
"""

from __future__ import annotations

import logging

from rooms.broker import Broker, user_channel
from rooms.frames import Outgoing
from rooms.session import CLOSE_POLICY, Session

log = logging.getLogger("pitchey.users")


class UserHub:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._users: dict[str, _UserSessions] = {}

    async def connect(self, session: Session) -> None:
        user = self._users.get(session.user_id)
        if user is not None:
            user.sessions[session] = None
            return
        user = self._users[session.user_id] = _UserSessions(session)
        await self._broker.subscribe(user_channel(session.user_id), user)

    async def disconnect(self, session: Session) -> None:
        user = self._users.get(session.user_id)
        if user is None:
            return
        user.sessions.pop(session, None)
        if user.sessions:
            return
        del self._users[session.user_id]
        try:
            await self._broker.unsubscribe(user_channel(session.user_id), user)
        except Exception:
            log.warning("unsubscribe from user channel %s failed", session.user_id)

    def sessions(self) -> int:
        return sum(len(user.sessions) for user in self._users.values())

    async def publish(self, user_id: str, payload: bytes) -> None:
        await self._broker.publish(user_channel(user_id), payload)

    async def close_sessions(self, user_id: str, reason: str) -> None:
        """Close every session of the user, on every process, with 1008 and `reason`."""
        await self._broker.publish(user_channel(user_id), _CLOSE + reason.encode())


class _UserSessions:
    """One user's local sessions, and the handler of their user channel: one small object
    per connected user (a closure, its cells and a second dict of handlers cost more)."""

    __slots__ = ("sessions",)

    def __init__(self, first: Session) -> None:
        self.sessions: dict[Session, None] = {first: None}

    def __call__(self, payload: bytes) -> None:
        if payload.startswith(_CLOSE):
            reason = payload[len(_CLOSE) :].decode(errors="replace")
            for target in list(self.sessions):
                target.close(CLOSE_POLICY, reason)
            return
        frame = Outgoing(payload)
        for target in self.sessions:
            target.send(frame)


# A payload on a user channel that starts with this closes the user's sessions instead of
# being forwarded (frames are JSON objects: none starts with a NUL byte).
_CLOSE = b"\x00close:"
