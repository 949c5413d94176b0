"""One pub/sub connection to one Redis server, kept up: the reader both Redis brokers share.

The single-Redis broker keeps one (SUBSCRIBE), the cluster broker one per master
(SSUBSCRIBE). Both need the same from it: reconnect with jittered backoff, a ping that
unmasks a half-open connection, every channel subscribed again on a new connection, and
the confirmations a subscribe waits for. That loop is the same step for step, so it is a
base class; a subclass says only what differs: how it subscribes its channels, what a
frame means, what it logs, and what it does between attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Collection
from typing import Any

from redis.asyncio import ConnectionPool

log = logging.getLogger("pitchey.redis")

# The reader pings this often; a connection silent for three pings is treated as dead
# (a half-open TCP connection would otherwise look like a quiet Redis forever).
PING_EVERY = 5.0
# A subscriber waits this long for Redis to confirm a subscription before going on
# (a lost confirmation means a lost connection, which ends in a resync anyway).
CONFIRM_TIMEOUT = 5.0
# Reconnect backoff: doubles from the first delay up to the cap, with jitter so that a
# fleet does not reconnect in lockstep after a Redis restart.
_BACKOFF_FIRST = 0.1
_BACKOFF_CAP = 5.0


class Backoff:
    def __init__(self) -> None:
        self._delay = _BACKOFF_FIRST

    def reset(self) -> None:
        self._delay = _BACKOFF_FIRST

    async def wait(self) -> None:
        await asyncio.sleep(random.uniform(self._delay / 2, self._delay))
        self._delay = min(_BACKOFF_CAP, self._delay * 2)


class PubSubConnection(ABC):
    def __init__(self, url: str, wanted: Collection[str], *, task: str, pinger: str) -> None:
        """`wanted`: the channels every new connection subscribes; `task`, `pinger`: the
        names of the reader's and the pinger's tasks."""
        self._pool = ConnectionPool.from_url(
            url, socket_connect_timeout=2, socket_timeout=3 * PING_EVERY, socket_keepalive=True
        )
        self._wanted_channels = wanted
        # Channels subscribed (or being subscribed) on the current connection.
        self._subscribed: set[str] = set()
        self._confirm: dict[str, deque[asyncio.Future[None]]] = {}
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._connected = asyncio.Event()
        # Set once the first connection attempt ended, either way.
        self._tried = asyncio.Event()
        self._task_name = task
        self._pinger_name = pinger
        self._task: asyncio.Task[None] | None = None

    # ---- what differs ----------------------------------------------------------------

    @abstractmethod
    async def _subscribe_all(self, conn: Any, channels: list[str]) -> None:
        """Send the commands that subscribe `channels` on a new connection (under the lock,
        their confirmations already expected)."""

    @abstractmethod
    def _came_up(self, channels: list[str]) -> bool:
        """A connection came up with `channels` subscribed, unconfirmed yet: log what is to be
        logged and say whether to announce them (`_announce`) once all are confirmed."""

    @abstractmethod
    def _lost(self, exc: Exception) -> None:
        """The connection that was up broke."""

    @abstractmethod
    def _frame(self, response: Any) -> str | None:
        """Handle a frame Redis pushed; the channel whose subscription it confirmed, if so."""

    @abstractmethod
    def _announce(self, channels: list[str]) -> None:
        """Every channel of a new connection is confirmed."""

    async def _idle(self) -> None:
        """Called before each connection attempt: returns when a connection is needed."""
        return None

    async def _retrying(self) -> None:
        """Called after the backoff that follows a failed or broken connection."""
        return None

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._pool.disconnect()

    @property
    def up(self) -> bool:
        return self._connected.is_set()

    async def wait_up(self) -> None:
        await self._connected.wait()

    # ---- confirmations ---------------------------------------------------------------

    def _expect(self, channel: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirm.setdefault(channel, deque()).append(future)
        return future

    def _confirmed(self, channel: str) -> None:
        # One confirmation per subscribe sent: it answers the oldest waiter only.
        waiters = self._confirm.get(channel)
        if waiters:
            future = waiters.popleft()
            if not waiters:
                del self._confirm[channel]
            if not future.done():
                future.set_result(None)

    @staticmethod
    async def _confirmation(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), CONFIRM_TIMEOUT)

    # ---- the reader ------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            await self._idle()
            conn: Any = self._pool.make_connection()  # type: ignore[no-untyped-call]
            try:
                await conn.connect()
                channels = await self._resubscribe(conn)
                self._connected.set()
                announce = self._came_up(channels)
                backoff.reset()
                self._tried.set()
                await self._read(conn, channels, announce)
            except asyncio.CancelledError:
                await self._drop(conn)
                raise
            except Exception as exc:
                if self._connected.is_set():
                    self._lost(exc)
                await self._drop(conn)
            # A subscribe that waited for a first connection returns now (a resync follows).
            self._tried.set()
            await backoff.wait()
            await self._retrying()

    async def _resubscribe(self, conn: Any) -> list[str]:
        async with self._lock:
            self._conn = conn
            self._subscribed = set(self._wanted_channels)
            channels = sorted(self._subscribed)
            for channel in channels:
                self._expect(channel)
            await self._subscribe_all(conn, channels)
        return channels

    async def _drop(self, conn: Any) -> None:
        async with self._lock:
            self._connected.clear()
            if self._conn is conn:
                self._conn = None
            self._subscribed.clear()
            for waiters in self._confirm.values():
                for future in waiters:
                    if not future.done():
                        future.set_result(None)
            self._confirm.clear()
        with contextlib.suppress(Exception):
            await conn.disconnect(nowait=True)

    async def _read(self, conn: Any, channels: list[str], announce: bool) -> None:
        pinger = asyncio.create_task(self._ping(conn), name=self._pinger_name)
        pending = set(channels)
        try:
            if not pending and announce:
                self._announce(channels)
            while True:
                # push_request: hiredis hands pub/sub frames over as "push" responses. An
                # error reply (MOVED, CLUSTERDOWN) raises here: the connection is made again.
                response = await conn.read_response(timeout=3 * PING_EVERY, push_request=True)
                channel = self._frame(response)
                if channel is not None and pending:
                    pending.discard(channel)
                    if not pending and announce:
                        self._announce(channels)
        finally:
            pinger.cancel()

    async def _ping(self, conn: Any) -> None:
        while True:
            await asyncio.sleep(PING_EVERY)
            async with self._lock:
                with contextlib.suppress(Exception):
                    await conn.send_command("PING", check_health=False)
