"""The Redis broker: one pub/sub channel per conversation and per user, across processes.

A process SUBSCRIBEs to a channel while it has a local handler for it and
UNSUBSCRIBEs when the last one goes: no pattern subscription and no global
channel, so a node decodes only the events of the rooms it serves.

Publishing delivers to local handlers at once and then to Redis, tagged with
this node's id; the reader skips its own node's payloads. So a local subscriber
gets each event exactly once, and local sessions keep being served while Redis
is away. After a reconnect every channel is subscribed again and
The `on_resubscribed` hook given to `start` lets the rooms read from storage what they missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis.asyncio import ConnectionPool, Redis

from rooms.broker import Handler, Resubscribed
from state.redis import command_client

log = logging.getLogger("pitchey.redis")

# Node ids are 16 hex characters: a fixed-size tag in front of every payload.
_NODE_TAG = 16
# The reader pings this often; a connection silent for three pings is treated as dead
# (a half-open TCP connection would otherwise look like a quiet Redis forever).
_PING_EVERY = 5.0
# Reconnect backoff: doubles from the first delay up to the cap, with jitter so that a
# fleet does not reconnect in lockstep after a Redis restart.
_BACKOFF_FIRST = 0.1
_BACKOFF_CAP = 5.0
# A subscriber waits this long for Redis to confirm a SUBSCRIBE before going on
# (a lost confirmation means a lost connection, which ends in a resync anyway).
_CONFIRM_TIMEOUT = 5.0
# Channels per SUBSCRIBE command after a reconnect.
_SUBSCRIBE_CHUNK = 500


class RedisBroker:
    def __init__(self, url: str, prefix: str, redis: Redis | None = None) -> None:
        self.redis = redis or command_client(url)
        self._sub_pool = ConnectionPool.from_url(
            url, socket_connect_timeout=2, socket_timeout=3 * _PING_EVERY, socket_keepalive=True
        )
        self.prefix = prefix
        self._prefix_bytes = prefix.encode()
        self.node = uuid.uuid4().hex[:_NODE_TAG]
        self._tag = self.node.encode()
        self._handlers: dict[str, set[Handler]] = {}
        # Channels subscribed (or being subscribed) on the current connection.
        self._subscribed: set[str] = set()
        self._confirm: dict[str, deque[asyncio.Future[None]]] = {}
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._last_publish_error = 0.0
        self._on_resubscribed: Resubscribed | None = None

    # ---- lifecycle -------------------------------------------------------------

    async def start(self, on_resubscribed: Resubscribed | None = None) -> None:
        self._on_resubscribed = on_resubscribed
        self._task = asyncio.create_task(self._run(), name="redis-broker")
        # Start serving even if Redis is down: local sessions work and the reader keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 3.0)
        if not self._connected.is_set():
            log.error("Redis is not reachable yet; serving local sessions, retrying")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._handlers.clear()
        await self._sub_pool.disconnect()
        await self.redis.aclose()

    async def ping(self) -> None:
        await self.redis.ping()
        if not self._connected.is_set():
            raise ConnectionError("pub/sub connection is down")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ---- publishing --------------------------------------------------------------

    async def publish(self, channel: str, payload: bytes) -> None:
        self._deliver(channel, payload)
        try:
            await self.redis.publish(self.prefix + channel, self._tag + payload)
        except Exception as exc:
            self._publish_failed(exc)

    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        for channel, payload in items:
            self._deliver(channel, payload)
        if not items:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for channel, payload in items:
                    pipe.publish(self.prefix + channel, self._tag + payload)
                await pipe.execute()
        except Exception as exc:
            self._publish_failed(exc)

    def _publish_failed(self, exc: Exception) -> None:
        # Local sessions have it already; other nodes resync from storage when their own
        # connection comes back. Logged at most once a second: an outage is one story.
        now = time.monotonic()
        if now - self._last_publish_error > 1.0:
            self._last_publish_error = now
            log.warning("publish to Redis failed (%s); delivered locally only", exc)

    def _deliver(self, channel: str, payload: bytes) -> None:
        handlers = self._handlers.get(channel)
        if not handlers:
            return
        for handler in tuple(handlers):
            try:
                handler(payload)
            except Exception:
                log.exception("handler for %s failed", channel)

    # ---- subscriptions ----------------------------------------------------------

    async def subscribe(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if handlers:
            handlers.add(handler)
            return
        self._handlers[channel] = {handler}
        await self._sync(channel)

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if handlers is None:
            return
        handlers.discard(handler)
        if not handlers:
            del self._handlers[channel]
            await self._sync(channel)

    async def _sync(self, channel: str) -> None:
        """Make the Redis subscription match whether the channel has local handlers.

        Returns once Redis confirmed a SUBSCRIBE: from then on every event published
        anywhere reaches the handler. Without a connection it returns at once; the
        reconnect subscribes every channel and triggers a resync.
        """
        waiter: asyncio.Future[None] | None = None
        async with self._lock:
            conn = self._conn
            want = channel in self._handlers
            if conn is None or want == (channel in self._subscribed):
                return
            name = self.prefix + channel
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
        if waiter is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), _CONFIRM_TIMEOUT)

    def _expect(self, channel: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirm.setdefault(channel, deque()).append(future)
        return future

    def _confirmed(self, channel: str) -> None:
        # One confirmation per SUBSCRIBE sent: it answers the oldest waiter only.
        waiters = self._confirm.get(channel)
        if waiters:
            future = waiters.popleft()
            if not waiters:
                del self._confirm[channel]
            if not future.done():
                future.set_result(None)

    def _release_waiters(self) -> None:
        for waiters in self._confirm.values():
            for future in waiters:
                if not future.done():
                    future.set_result(None)
        self._confirm.clear()

    # ---- the reader ----------------------------------------------------------------

    async def _run(self) -> None:
        delay = _BACKOFF_FIRST
        first = True
        while True:
            conn: Any = self._sub_pool.make_connection()  # type: ignore[no-untyped-call]
            try:
                await conn.connect()
                channels = await self._resubscribe(conn)
                self._connected.set()
                if not first:
                    log.warning("Redis pub/sub reconnected; %d channels subscribed", len(channels))
                delay = _BACKOFF_FIRST
                first = False
                await self._read(conn, channels)
            except asyncio.CancelledError:
                await self._drop(conn)
                raise
            except Exception as exc:
                if self._connected.is_set():
                    log.error("Redis pub/sub connection lost (%s); serving local sessions", exc)
                await self._drop(conn)
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(_BACKOFF_CAP, delay * 2)

    async def _resubscribe(self, conn: Any) -> list[str]:
        async with self._lock:
            self._conn = conn
            self._subscribed = set(self._handlers)
            channels = sorted(self._subscribed)
            for start in range(0, len(channels), _SUBSCRIBE_CHUNK):
                chunk = channels[start : start + _SUBSCRIBE_CHUNK]
                for channel in chunk:
                    self._expect(channel)
                await conn.send_command(
                    "SUBSCRIBE", *(self.prefix + c for c in chunk), check_health=False
                )
        return channels

    async def _drop(self, conn: Any) -> None:
        async with self._lock:
            self._connected.clear()
            if self._conn is conn:
                self._conn = None
            self._subscribed.clear()
            self._release_waiters()
        with contextlib.suppress(Exception):
            await conn.disconnect(nowait=True)

    async def _read(self, conn: Any, channels: list[str]) -> None:
        pinger = asyncio.create_task(self._ping(conn), name="redis-broker-ping")
        pending = set(channels)
        try:
            if not pending:
                self._resubscribed(channels)
            while True:
                # push_request: hiredis hands pub/sub frames over as "push" responses.
                response = await conn.read_response(timeout=3 * _PING_EVERY, push_request=True)
                kind = response[0]
                if kind == b"message":
                    self._dispatch(response[1], response[2])
                elif kind == b"subscribe":
                    channel = response[1][len(self._prefix_bytes) :].decode()
                    self._confirmed(channel)
                    if pending:
                        pending.discard(channel)
                        if not pending:
                            self._resubscribed(channels)
        finally:
            pinger.cancel()

    def _resubscribed(self, channels: list[str]) -> None:
        # Every channel is confirmed: what was published while we were away is in storage.
        if self._on_resubscribed is not None and channels:
            try:
                self._on_resubscribed(channels)
            except Exception:
                log.exception("resubscribe hook failed")

    async def _ping(self, conn: Any) -> None:
        while True:
            await asyncio.sleep(_PING_EVERY)
            async with self._lock:
                with contextlib.suppress(Exception):
                    await conn.send_command("PING", check_health=False)

    def _dispatch(self, raw_channel: bytes, data: bytes) -> None:
        if data[:_NODE_TAG] == self._tag:
            return  # published here, and delivered locally at publish time
        channel = raw_channel[len(self._prefix_bytes) :].decode()
        self._deliver(channel, data[_NODE_TAG:])
