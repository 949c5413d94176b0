"""This process's side of a Redis broker: its handlers per channel, and the node tag.

Both Redis brokers (rooms.redis_broker, rooms.cluster_broker) keep the same table and
deliver the same way; they differ only in where a channel is subscribed (the one
connection, or the connection to the master that owns its slot). So the table is a
helper each broker holds rather than a base class: it tells its broker when a channel
gains its first handler or loses its last, and knows nothing of connections.

Every payload a node publishes carries the node's id in front, so that its readers skip
what Redis hands back to them: local handlers had it at publish time already.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

from rooms.broker import Handler, Resubscribed

log = logging.getLogger("pitchey.redis")

# Node ids are 16 hex characters: a fixed-size tag in front of every payload.
_NODE_TAG = 16


class LocalChannels:
    def __init__(self, redis: str) -> None:
        """`redis`: what the publish warning names ("Redis", "Redis Cluster")."""
        self.node = uuid.uuid4().hex[:_NODE_TAG]
        self._tag = self.node.encode()
        self._redis = redis
        self._handlers: dict[str, set[Handler]] = {}
        self._last_publish_error = 0.0
        self._on_resubscribed: Resubscribed | None = None

    def start(self, on_resubscribed: Resubscribed | None) -> None:
        self._on_resubscribed = on_resubscribed

    # ---- the handler table -------------------------------------------------------

    def add(self, channel: str, handler: Handler) -> bool:
        """True when it is the channel's first handler: the broker subscribes it."""
        handlers = self._handlers.get(channel)
        if handlers:
            handlers.add(handler)
            return False
        self._handlers[channel] = {handler}
        return True

    def discard(self, channel: str, handler: Handler) -> bool:
        """True when it was the channel's last handler: the broker unsubscribes it."""
        handlers = self._handlers.get(channel)
        if handlers is None:
            return False
        handlers.discard(handler)
        if handlers:
            return False
        del self._handlers[channel]
        return True

    def clear(self) -> None:
        self._handlers.clear()

    def __contains__(self, channel: object) -> bool:
        return channel in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)

    # ---- payloads ------------------------------------------------------------------

    def tagged(self, payload: bytes) -> bytes:
        return self._tag + payload

    def deliver(self, channel: str, payload: bytes) -> None:
        handlers = self._handlers.get(channel)
        if not handlers:
            return
        for handler in tuple(handlers):
            try:
                handler(payload)
            except Exception:
                log.exception("handler for %s failed", channel)

    def received(self, raw_channel: bytes, data: bytes, name: slice) -> None:
        """A payload Redis handed over; `name` cuts our channel out of Redis's channel name."""
        if data[:_NODE_TAG] == self._tag:
            return  # published here, and delivered locally at publish time
        self.deliver(raw_channel[name].decode(), data[_NODE_TAG:])

    def publish_failed(self, exc: Exception) -> None:
        # Local sessions have it already; other nodes resync from storage when their own
        # connection comes back. Logged at most once a second: an outage is one story.
        now = time.monotonic()
        if now - self._last_publish_error > 1.0:
            self._last_publish_error = now
            log.warning("publish to %s failed (%s); delivered locally only", self._redis, exc)

    def resubscribed(self, channels: list[str]) -> None:
        # Every channel is confirmed: what was published while we were away is in storage.
        if self._on_resubscribed is not None and channels:
            try:
                self._on_resubscribed(channels)
            except Exception:
                log.exception("resubscribe hook failed")
