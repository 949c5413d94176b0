"""Stored rows -> wire shapes. Frames built here are encoded once per event."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from schemas.codec import encode
from schemas.frames import MessageFrame
from schemas.messages import Message
from storage.messages import StoredMessage


@lru_cache(maxsize=256)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC. strftime is costly and messages of one second
    share their prefix, so the prefix is cached per second."""
    seconds, millis = divmod(ms, 1000)
    return f"{_second(seconds)}{millis:03d}Z"


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
