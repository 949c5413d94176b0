"""Stored rows -> wire shapes. Frames built here are encoded once per event."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.codec import encode
from schemas.frames import MessageFrame
from schemas.messages import Message
from storage.messages import StoredMessage


def iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


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
