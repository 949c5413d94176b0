"""REST bodies and responses of the messaging API (camelCase on the wire)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from schemas.bounds import FreeJson

Id = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]
ClientMsgId = Annotated[str, Meta(min_length=1, max_length=128)]


class Base(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    pass


class Message(Base, kw_only=True):
    id: str
    conversation_id: str
    seq: int
    sender_id: str
    content: str
    created_at: str
    client_msg_id: str | None = None
    attachments: list[dict[str, Any]] | None = None
    # Left out of messages never edited or deleted, so their shape is as it always was.
    edited_at: str | msgspec.UnsetType = msgspec.UNSET
    deleted: bool | msgspec.UnsetType = msgspec.UNSET


class Conversation(Base, kw_only=True):
    id: str
    title: str | None
    participant_ids: list[str]
    created_at: str
    last_message: Message | None = None
    unread_count: int = 0
    metadata: dict[str, Any] | None = None


class CreateConversation(Base, kw_only=True):
    participant_ids: Annotated[list[Id], Meta(min_length=1, max_length=5000)]
    title: Annotated[str, Meta(max_length=200)] | None = None
    metadata: FreeJson | None = None


class SendMessage(Base, kw_only=True):
    conversation_id: Id
    content: Annotated[str, Meta(min_length=1)]
    sender_id: Id | None = None
    client_msg_id: ClientMsgId | None = None
    attachment_ids: list[Id] | None = None


class EditMessage(Base, kw_only=True, forbid_unknown_fields=True):
    content: Annotated[str, Meta(min_length=1)]


class AddParticipants(Base, kw_only=True, forbid_unknown_fields=True):
    user_ids: Annotated[list[Id], Meta(min_length=1, max_length=5000)]
    # False: the new members see the conversation from their join on.
    share_history: bool = False


class BlockUser(Base, kw_only=True, forbid_unknown_fields=True):
    user_id: Id


class BlockList(Base, kw_only=True):
    items: list[str]


class ReadReceipt(Base, kw_only=True):
    conversation_id: str
    user_id: str
    message_id: str
    seq: int


class Page(Base, kw_only=True):
    items: list[Any]
    next_cursor: str | None = None


class ConversationPage(Base, kw_only=True):
    items: list[Conversation]
    next_cursor: str | None = None


class MessagePage(Base, kw_only=True):
    items: list[Message]
    next_cursor: str | None = None


class Presence(Base, kw_only=True):
    conversation_id: str
    online: list[str]
    online_count: int


class ErrorBody(Base):
    code: str
    message: str


class Error(Base):
    error: ErrorBody
