"""What the real-time side holds about a user, as export sections and erasure steps.

`server.wiring` adds these Parts to the export and erasure (`delivery.privacy`). An
erasure runs the Parts in reverse order, so the list below is also the order of export.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from base.clock import iso
from rooms.service import Messaging
from storage.erasure import Part, Subject, listed

# Rows read per query while exporting: small pages keep each query short.
_PAGE = 200


def conversation_parts(messaging: Messaging) -> list[Part]:
    store = messaging.store

    async def conversations(subject: Subject) -> AsyncGenerator[Any, None]:
        after = ""
        while page := await store.conversations_of(subject.user_id, after, _PAGE):
            for item in page:
                yield item
            after = page[-1]["id"]

    async def read_positions(subject: Subject) -> AsyncGenerator[Any, None]:
        async for item in conversations(subject):
            yield {"conversationId": item["id"], "readSeq": item["readSeq"]}

    async def messages(subject: Subject) -> AsyncGenerator[Any, None]:
        after = ""
        while page := await store.sent_by(subject.user_id, after, _PAGE):
            for m in page:
                yield {
                    "id": m.id,
                    "conversationId": m.conversation_id,
                    "seq": m.seq,
                    "content": m.content,
                    "attachments": m.attachments or [],
                    "createdAt": iso(m.created_at),
                    "editedAt": iso(m.edited_at) if m.edited_at is not None else None,
                }
            after = page[-1].id

    async def leave(subject: Subject) -> None:
        await messaging.leave_everywhere(subject.user_id, subject.actor)

    async def erase_messages(subject: Subject) -> None:
        await messaging.erase_sent(subject.user_id, subject.actor)

    async def erase_blocks(subject: Subject) -> None:
        await messaging.erase_blocks(subject.user_id)

    return [
        # Membership and read positions go last: the deletions above are announced to
        # the conversations' members first.
        Part("conversations", conversations, leave),
        Part("readPositions", read_positions),
        Part("messages", messages, erase_messages),
        Part("blocks", listed(messaging.blocks.export_user), erase_blocks),
    ]
