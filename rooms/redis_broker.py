"""The Redis broker: one pub/sub channel per conversation and per user, across processes.

A process SUBSCRIBEs to a channel while it has a local handler for it and
UNSUBSCRIBEs when the last one goes: no pattern subscription and no global
channel, so a node decodes only the events of the rooms it serves.

Publishing delivers to local handlers at once and then to Redis, tagged with
this node's id; the reader skips its own node's payloads. So a local subscriber
gets each event exactly once, and local sessions keep being served while Redis
is away. After a reconnect every channel is subscribed again, and the
`on_resubscribed` hook given to `start` lets the rooms read from storage what they missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from rooms.broker import Handler, Resubscribed
from rooms.channels import LocalChannels
from rooms.pubsub import PubSubConnection
from state.redis import command_client

log = logging.getLogger("pitchey.redis")

# Channels per SUBSCRIBE command after a reconnect.
_SUBSCRIBE_CHUNK = 500


class RedisBroker:
    def __init__(self, url: str, prefix: str, redis: Redis | None = None) -> None:
        self.redis = redis or command_client(url)
        self.prefix = prefix
        self._local = LocalChannels("Redis")
        self.node = self._local.node
        self._reader = _Connection(url, prefix, self._local)

    # ---- lifecycle -------------------------------------------------------------

    async def start(self, on_resubscribed: Resubscribed | None = None) -> None:
        self._local.start(on_resubscribed)
        self._reader.start()
        # Start serving even if Redis is down: local sessions work and the reader keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reader.wait_up(), 3.0)
        if not self._reader.up:
            log.error("Redis is not reachable yet; serving local sessions, retrying")

    async def stop(self) -> None:
        await self._reader.stop()
        self._local.clear()
        await self.redis.aclose()

    async def ping(self) -> None:
        await self.redis.ping()
        if not self._reader.up:
            raise ConnectionError("pub/sub connection is down")

    @property
    def connected(self) -> bool:
        return self._reader.up

    # ---- publishing --------------------------------------------------------------

    async def publish(self, channel: str, payload: bytes) -> None:
        self._local.deliver(channel, payload)
        try:
            await self.redis.publish(self.prefix + channel, self._local.tagged(payload))
        except Exception as exc:
            self._local.publish_failed(exc)

    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        for channel, payload in items:
            self._local.deliver(channel, payload)
        if not items:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for channel, payload in items:
                    pipe.publish(self.prefix + channel, self._local.tagged(payload))
                await pipe.execute()
        except Exception as exc:
            self._local.publish_failed(exc)

    # ---- subscriptions ----------------------------------------------------------

    async def subscribe(self, channel: str, handler: Handler) -> None:
        if self._local.add(channel, handler):
            await self._reader.sync(channel)

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        if self._local.discard(channel, handler):
            await self._reader.sync(channel)


class _Connection(PubSubConnection):
    """The one pub/sub connection: every channel with a local handler is subscribed on it."""

    def __init__(self, url: str, prefix: str, local: LocalChannels) -> None:
        super().__init__(url, local, task="redis-broker", pinger="redis-broker-ping")
        self._prefix = prefix
        # Cuts our channel out of its name in Redis, "<prefix><channel>".
        self._channel_part = slice(len(prefix.encode()), None)
        self._local = local
        self._was_up = False

    async def sync(self, channel: str) -> None:
        """Make the Redis subscription match whether the channel has local handlers.

        Returns once Redis confirmed a SUBSCRIBE: from then on every event published
        anywhere reaches the handler. Without a connection it returns at once; the
        reconnect subscribes every channel and triggers a resync.
        """
        waiter: asyncio.Future[None] | None = None
        async with self._lock:
            conn = self._conn
            want = channel in self._local
            if conn is None or want == (channel in self._subscribed):
                return
            name = self._prefix + channel
            try:
                if want:
                    waiter = self._expect(channel)
                    self._subscribed.add(channel)
                    await conn.send_command("SUBSCRIBE", name, check_health=False)
                else:
                    self._subscribed.discard(channel)
                    await conn.send_command("UNSUBSCRIBE", name, check_health=False)
            except Exception as exc:
                log.warning("(un)subscribing %s failed: %s", channel, exc)
                return  # the reader sees the broken connection and reconnects
        await self._confirmation(waiter)

    async def _subscribe_all(self, conn: Any, channels: list[str]) -> None:
        for start in range(0, len(channels), _SUBSCRIBE_CHUNK):
            chunk = channels[start : start + _SUBSCRIBE_CHUNK]
            await conn.send_command(
                "SUBSCRIBE", *(self._prefix + c for c in chunk), check_health=False
            )

    def _came_up(self, channels: list[str]) -> bool:
        if self._was_up:
            log.warning("Redis pub/sub reconnected; %d channels subscribed", len(channels))
        self._was_up = True
        # The channels subscribed before the first connection returned unconfirmed too.
        return True

    def _lost(self, exc: Exception) -> None:
        log.error("Redis pub/sub connection lost (%s); serving local sessions", exc)

    def _frame(self, response: Any) -> str | None:
        kind = response[0]
        if kind == b"message":
            self._local.received(response[1], response[2], self._channel_part)
        elif kind == b"subscribe":
            channel: str = response[1][self._channel_part].decode()
            self._confirmed(channel)
            return channel
        return None

    def _announce(self, channels: list[str]) -> None:
        self._local.resubscribed(channels)
