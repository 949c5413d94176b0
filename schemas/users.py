"""A user's data: the export document and the answer to an erasure request."""

from __future__ import annotations

from typing import Any

import msgspec


class Base(msgspec.Struct, rename="camel", kw_only=True):
    pass


class UserExport(Base):
    """GET /api/users/{id}/export, written in pieces as it is read. Every section is a list,
    empty when nothing is stored (after an erasure: all of them). `complete` is false when
    USER_EXPORT_TIMEOUT cut the export off; the sections after the one cut are absent."""

    user_id: str
    exported_at: str
    profile: list[dict[str, Any]] = []
    conversations: list[dict[str, Any]] = []
    read_positions: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    preferences: list[dict[str, Any]] = []
    emails: list[dict[str, Any]] = []
    push_subscriptions: list[dict[str, Any]] = []
    complete: bool = True


class ErasureAccepted(Base):
    """DELETE /api/users/{id}: the request is stored; the erasure follows in the background."""

    user_id: str
    status: str
    requested_at: str
