"""Stored rows -> wire shapes. Frames built here are encoded once per event."""

from __future__ import annotations

import msgspec

from base.clock import iso
from rooms.broker import Broker, conversation_channel
from schemas.codec import encode
from schemas.frames import MemberFrame, MessageDeleted, MessageFrame, MessageUpdated, PresenceChange
from schemas.messages import Message
from storage.messages import StoredChange, StoredMessage


def message_view(stored: StoredMessage) -> Message:
    return Message(
        id=stored.id,
        conversation_id=stored.conversation_id,
        seq=stored.seq,
        sender_id=stored.sender_id,
        content=stored.content,
        created_at=iso(stored.created_at),
        client_msg_id=stored.client_msg_id,
        attachments=stored.attachments,
        edited_at=iso(stored.edited_at) if stored.edited_at is not None else msgspec.UNSET,
        deleted=True if stored.deleted_at is not None else msgspec.UNSET,
    )


def message_frame(stored: StoredMessage) -> bytes:
    return encode(MessageFrame(message=message_view(stored)))


def change_frame(change: StoredChange) -> bytes:
    """The frame of a change, live or replayed. An edit shows the message as it is now:
    replaying an edit of a message deleted since shows the deletion, never the old text."""
    if change.kind == "edit" and change.message is not None:
        return encode(
            MessageUpdated(
                conversation_id=change.conversation_id,
                seq=change.seq,
                message=message_view(change.message),
            )
        )
    if change.kind in ("edit", "delete"):
        return encode(
            MessageDeleted(
                conversation_id=change.conversation_id,
                seq=change.seq,
                message_id=change.message_id or "",
                sender_id=change.message.sender_id if change.message else msgspec.UNSET,
            )
        )
    return encode(
        MemberFrame(
            conversation_id=change.conversation_id,
            seq=change.seq,
            user_id=change.user_id or "",
            action=change.action or "",
            by=change.actor or "",
        )
    )


def timeline_frame(item: StoredMessage | StoredChange) -> bytes:
    if isinstance(item, StoredChange):
        return change_frame(item)
    return message_frame(item)


def author(item: StoredMessage | StoredChange) -> str | None:
    """Whose words an item carries (a message, or an edit or deletion of one); None for
    member changes. A receiver who blocks the author gets a `skipped` frame instead."""
    if isinstance(item, StoredMessage):
        return item.sender_id
    if item.kind in ("edit", "delete") and item.message is not None:
        return item.message.sender_id
    return None


class OfflineAnnouncer:
    """Tells a conversation's rooms on every process that a user went offline.

    Handed to the Redis presence store, which finds users whose node died without saying
    goodbye; the rooms on the surviving nodes pass the frame to their sessions.
    """

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def __call__(self, conversation_id: str, user_id: str) -> None:
        frame = PresenceChange(conversation_id=conversation_id, user_id=user_id, online=False)
        await self._broker.publish(conversation_channel(conversation_id), encode(frame))
