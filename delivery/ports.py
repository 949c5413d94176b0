"""What delivery needs from the real-time side, declared here so `delivery` imports no room code.

`rooms.users.UserHub` satisfies `UserFrames` and `UserSessions`; `server.wiring` hands it over.
"""

from __future__ import annotations

from typing import Protocol


class UserFrames(Protocol):
    async def publish(self, user_id: str, payload: bytes) -> None:
        """Send an encoded frame to every session of the user, on every process."""
        ...


class ConversationPresence(Protocol):
    async def online(self, conversation_id: str) -> list[str]:
        """Users with a live session in the conversation, on any process (the same test the
        unread-message email uses: someone looking at the conversation needs no nudge)."""


class UserSessions(Protocol):
    async def close_sessions(self, user_id: str, reason: str) -> None:
        """Close every session of the user, on every process."""
        ...
