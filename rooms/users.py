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
        self._sessions: dict[str, dict[Session, None]] = {}
        self._handlers: dict[str, object] = {}

    async def connect(self, session: Session) -> None:
        sessions = self._sessions.get(session.user_id)
        if sessions is not None:
            sessions[session] = None
            return
        self._sessions[session.user_id] = {session: None}
        user_id = session.user_id

        def deliver(payload: bytes) -> None:
            if payload.startswith(_CLOSE):
                reason = payload[len(_CLOSE) :].decode(errors="replace")
                for target in list(self._sessions.get(user_id, ())):
                    target.close(CLOSE_POLICY, reason)
                return
            frame = Outgoing(payload)
            for target in self._sessions.get(user_id, ()):
                target.send(frame)

        self._handlers[user_id] = deliver
        await self._broker.subscribe(user_channel(user_id), deliver)

    async def disconnect(self, session: Session) -> None:
        sessions = self._sessions.get(session.user_id)
        if sessions is None:
            return
        sessions.pop(session, None)
        if sessions:
            return
        del self._sessions[session.user_id]
        handler = self._handlers.pop(session.user_id)
        try:
            await self._broker.unsubscribe(user_channel(session.user_id), handler)  # type: ignore[arg-type]
        except Exception:
            log.warning("unsubscribe from user channel %s failed", session.user_id)

    def sessions(self) -> int:
        return sum(len(s) for s in self._sessions.values())

    async def publish(self, user_id: str, payload: bytes) -> None:
        await self._broker.publish(user_channel(user_id), payload)

    async def close_sessions(self, user_id: str, reason: str) -> None:
        """Close every session of the user, on every process, with 1008 and `reason`."""
        await self._broker.publish(user_channel(user_id), _CLOSE + reason.encode())


# A payload on a user channel that starts with this closes the user's sessions instead of
# being forwarded (frames are JSON objects: none starts with a NUL byte).
_CLOSE = b"\x00close:"
