"""Stored rows -> wire shapes. Frames built here are encoded once per event."""

from __future__ import annotations

from base.clock import iso
from rooms.broker import Broker, conversation_channel
from schemas.codec import encode
from schemas.frames import MessageFrame, PresenceChange
from schemas.messages import Message
from storage.messages import StoredMessage


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
    )


def message_frame(stored: StoredMessage) -> bytes:
    return encode(MessageFrame(message=message_view(stored)))


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
