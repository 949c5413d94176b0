"""What attachments need of messaging, declared here so that `attachments` imports no room code.

`rooms.service.Messaging` satisfies it; `server.wiring` hands it over.
"""

from __future__ import annotations

from typing import Protocol

from base.identity import Caller
from schemas.messages import Message


class Conversations(Protocol):
    async def members(self, conversation_id: str) -> frozenset[str]: ...

    async def require_member(self, user_id: str, conversation_id: str) -> frozenset[str]:
        """The members; NotFound when the user is not one of them."""
        ...

    async def send(
        self,
        caller: Caller,
        conversation_id: str,
        content: str,
        client_msg_id: str | None,
        attachments: list[dict[str, object]] | None = None,
    ) -> Message: ...
