"""The broker carries events between processes: one channel per conversation and per user.

The memory broker is the embedded default (one process); the Redis broker
(rooms.redis_broker) is chosen when REDIS_URL is set, the sharded one
(rooms.cluster_broker) when it names a Redis Cluster.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol

# A handler runs synchronously in the event loop and must not block: rooms put
# the payload in their mailbox and return.
Handler = Callable[[bytes], None]


# Called with the channels' names after a reconnect, so their owners can look for
# events they may have missed while the broker was away.
Resubscribed = Callable[[Sequence[str]], None]


class Broker(Protocol):
    async def start(self, on_resubscribed: Resubscribed | None = None) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, channel: str, payload: bytes) -> None: ...
    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Publish in order; the order of payloads on one channel is kept."""
        ...

    async def subscribe(self, channel: str, handler: Handler) -> None: ...
    async def unsubscribe(self, channel: str, handler: Handler) -> None: ...


def conversation_channel(conversation_id: str) -> str:
    return f"c:{conversation_id}"


def conversation_of(channel: str) -> str | None:
    """The conversation a channel carries, or None for a user or node-wide channel."""
    return channel[2:] if channel.startswith("c:") else None


def user_channel(user_id: str) -> str:
    return f"u:{user_id}"


# Every process listens here: a conversation id published on it means "its members changed,
# forget what you cached".
MEMBERSHIP_CHANNEL = "members"


class MemoryBroker:
    """In-process fan-out: a dict of sets of handlers (as encode/broadcaster's memory backend)."""

    def __init__(self) -> None:
        self._handlers: dict[str, set[Handler]] = defaultdict(set)

    async def start(self, on_resubscribed: Resubscribed | None = None) -> None:
        # One process never loses its subscriptions: nothing to resubscribe.
        return None

    async def stop(self) -> None:
        self._handlers.clear()

    async def publish(self, channel: str, payload: bytes) -> None:
        self._deliver(channel, payload)

    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        for channel, payload in items:
            self._deliver(channel, payload)

    def _deliver(self, channel: str, payload: bytes) -> None:
        handlers = self._handlers.get(channel)
        if handlers:
            for handler in tuple(handlers):
                handler(payload)

    async def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers[channel].add(handler)

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if handlers is not None:
            handlers.discard(handler)
            if not handlers:
                del self._handlers[channel]
