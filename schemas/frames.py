"""WebSocket frames: one tagged union per direction (the `type` field is the tag).

Server frames that fan out are encoded once per event, never once per session.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from schemas.messages import ClientMsgId, Id, Message

# ---- client -> server -------------------------------------------------------


class ClientFrame(msgspec.Struct, tag_field="type", rename="camel", forbid_unknown_fields=True):
    pass


class Subscribe(ClientFrame, tag="subscribe", kw_only=True):
    conversation_id: Id
    since: Annotated[int, Meta(ge=0, le=2**53)] | None = None


class Unsubscribe(ClientFrame, tag="unsubscribe", kw_only=True):
    conversation_id: Id


class Send(ClientFrame, tag="send", kw_only=True):
    conversation_id: Id
    content: Annotated[str, Meta(min_length=1)]
    client_msg_id: ClientMsgId | None = None
    attachment_ids: list[Id] | None = None


class Typing(ClientFrame, tag="typing", kw_only=True):
    conversation_id: Id
    is_typing: bool


class Read(ClientFrame, tag="read", kw_only=True):
    conversation_id: Id
    message_id: Id


class Ping(ClientFrame, tag="ping"):
    pass


AnyClientFrame = Subscribe | Unsubscribe | Send | Typing | Read | Ping


# ---- server -> client -------------------------------------------------------


class ServerFrame(msgspec.Struct, tag_field="type", rename="camel"):
    pass


class Subscribed(ServerFrame, tag="subscribed", kw_only=True):
    conversation_id: str
    seq: int
    online: list[str]
    recovered: bool = True
    replayed: int = 0


class Unsubscribed(ServerFrame, tag="unsubscribed", kw_only=True):
    conversation_id: str
    # Only when the server ended the subscription: "removed" or "left" (membership ended).
    reason: str | msgspec.UnsetType = msgspec.UNSET


class MessageFrame(ServerFrame, tag="message", kw_only=True):
    message: Message


class MessageUpdated(ServerFrame, tag="message_updated", kw_only=True):
    """A message was edited; `seq` is the edit's own place in the conversation,
    `message` the message as it is now (its own `seq` unchanged)."""

    conversation_id: str
    seq: int
    message: Message


class MessageDeleted(ServerFrame, tag="message_deleted", kw_only=True):
    conversation_id: str
    seq: int
    message_id: str
    # Who wrote the deleted message: rooms leave the frame out for those who block them.
    sender_id: str | msgspec.UnsetType = msgspec.UNSET


class Skipped(ServerFrame, tag="skipped", kw_only=True):
    """Stands in for an event of `seq` the receiver does not get (a message, edit, deletion
    by someone they block), so their seqs stay gap-free: a gap still means loss."""

    conversation_id: str
    seq: int


class MemberFrame(ServerFrame, tag="member", kw_only=True):
    conversation_id: str
    seq: int
    user_id: str
    action: str  # "added" | "removed" | "left"
    by: str


class Ack(ServerFrame, tag="ack", kw_only=True):
    message_id: str
    seq: int
    conversation_id: str
    client_msg_id: str | None = None


class ReadFrame(ServerFrame, tag="read", kw_only=True):
    conversation_id: str
    user_id: str
    message_id: str
    seq: int


class TypingFrame(ServerFrame, tag="typing", kw_only=True):
    conversation_id: str
    user_id: str
    is_typing: bool


class PresenceFrame(ServerFrame, tag="presence", kw_only=True, omit_defaults=True):
    """What changed since the room's last presence frame (at most one per
    PRESENCE_FLUSH_INTERVAL). Above PRESENCE_BROADCAST_MAX_MEMBERS online, only the count."""

    conversation_id: str
    online_count: int
    joined: list[str] | None = None
    left: list[str] | None = None


class PresenceChange(ServerFrame, tag="presence_change", kw_only=True):
    """Between processes only (the broker): one user came online or went offline in a
    conversation. Rooms fold these into `presence` frames; clients never see them."""

    conversation_id: str
    user_id: str
    online: bool


class ErrorFrame(ServerFrame, tag="error", kw_only=True):
    code: str
    message: str
    ref: str | None = None
    # Seconds to wait before trying again; only on retryable failures (`unavailable`,
    # `storage_full`), left out of every other error frame.
    retry_after: float | msgspec.UnsetType = msgspec.UNSET


class Pong(ServerFrame, tag="pong"):
    pass


class EventHead(msgspec.Struct, rename="camel"):
    """What a room needs to route an event it received from the broker.

    Decoding only these fields leaves the rest of the frame untouched: the room
    forwards the broker payload itself to its sessions.
    """

    type: str
    conversation_id: str | None = None
    user_id: str | None = None
    is_typing: bool | None = None
    online: bool | None = None
    message: MessageHead | None = None
    # The seq of a change (message_updated, message_deleted, member); a message's is in
    # `message`.
    seq: int | None = None
    action: str | None = None
    # message_deleted: who wrote the deleted message.
    sender_id: str | None = None


class MessageHead(msgspec.Struct, rename="camel"):
    conversation_id: str
    seq: int
    sender_id: str = ""
