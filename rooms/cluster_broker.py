"""The broker on a Redis Cluster: sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis >= 7).

A channel is `<prefix>{<name>}`: the whole name is the hash tag, so a conversation's
channel `{c:<id>}` lives in the slot of its presence hash (state.redis.Keys), and channels
spread over the shards with the conversations. SPUBLISH reaches only the subscribers of
the shard that owns the slot, so this process keeps one subscription connection per master
that owns one of its channels, each read by its own task (the single-Redis broker's
reader, once per shard).

Publishing works as on one Redis: local handlers first, then SPUBLISH tagged with this
node's id, and the readers skip our own payloads. A shard whose connection drops is
reconnected with backoff after the slot map is read again (the master may have been
replaced by its replica, or restarted); channels whose slot now lives elsewhere move to
that master's connection. Every channel subscribed again (after a reconnect or a move) is
handed to the `on_resubscribed` hook, so rooms read from storage what they missed.

redis-py's asyncio ClusterPubSub polls its per-node connections from one generator and
has no confirmation or reconnect hook; this module keeps the single-Redis broker's
guarantees (a subscribe returns once Redis confirmed it; a reconnect triggers a resync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio.cluster import RedisCluster

from base.failures import RepeatedFailure
from rooms.broker import Handler, Resubscribed
from rooms.channels import LocalChannels
from rooms.pubsub import CONFIRM_TIMEOUT, Backoff, PubSubConnection

log = logging.getLogger("pitchey.redis")


class ClusterBroker:
    def __init__(self, url: str, prefix: str, redis: RedisCluster) -> None:
        self.redis = redis
        self.prefix = prefix
        # Cuts our channel out of its name in Redis, "<prefix>{<channel>}".
        self.channel_part = slice(len(prefix) + 1, -1)
        self._url = urlsplit(url)
        self.local = LocalChannels("Redis Cluster")
        self.node = self.local.node
        # Which shard (by "host:port") each subscribed channel is assigned to.
        self._owner: dict[str, str] = {}
        self._shards: dict[str, _Shard] = {}
        self._refresh_lock = asyncio.Lock()
        self._refreshed_at = 0.0
        self._mapped = False
        self._map_task: asyncio.Task[None] | None = None
        # Every shard's reconnect attempt reads the map: an outage is one story in the log.
        self._map_failures = RepeatedFailure(log, "Redis Cluster slot map unavailable")

    # ---- lifecycle -------------------------------------------------------------

    async def start(self, on_resubscribed: Resubscribed | None = None) -> None:
        self.local.start(on_resubscribed)
        # Serving starts even if the cluster is unreachable: local sessions work meanwhile.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.refresh(), 3.0)
        if not self._mapped:
            log.error("Redis Cluster is not reachable yet; serving local sessions, retrying")
            self._map_task = asyncio.create_task(self._map(), name="redis-cluster-map")

    async def _map(self) -> None:
        backoff = Backoff()
        while not self._mapped:
            await backoff.wait()
            await self.refresh()

    async def stop(self) -> None:
        if self._map_task is not None:
            self._map_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._map_task
        for shard in list(self._shards.values()):
            await shard.stop()
        self._shards.clear()
        self.local.clear()
        self._owner.clear()
        await self.redis.aclose()

    async def ping(self) -> None:
        # The masters: a replica down costs no capacity until its master fails too.
        await self.redis.execute_command("PING", target_nodes=RedisCluster.PRIMARIES)
        down = [name for name, shard in self._shards.items() if shard.wanted and not shard.up]
        if down or not self._mapped:
            raise ConnectionError(f"pub/sub connection down: {', '.join(down) or 'slot map'}")

    @property
    def connected(self) -> bool:
        return self._mapped and all(s.up for s in self._shards.values() if s.wanted)

    # ---- publishing --------------------------------------------------------------

    def channel_name(self, channel: str) -> str:
        return f"{self.prefix}{{{channel}}}"

    async def publish(self, channel: str, payload: bytes) -> None:
        self.local.deliver(channel, payload)
        try:
            await self.redis.execute_command(
                "SPUBLISH", self.channel_name(channel), self.local.tagged(payload)
            )
        except Exception as exc:
            self.local.publish_failed(exc)

    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        for channel, payload in items:
            self.local.deliver(channel, payload)
        if not items:
            return
        try:
            # The cluster pipeline sends each master its share in order, one round trip each.
            async with self.redis.pipeline(transaction=False) as pipe:
                for channel, payload in items:
                    pipe.execute_command(
                        "SPUBLISH", self.channel_name(channel), self.local.tagged(payload)
                    )
                await pipe.execute()
        except Exception as exc:
            self.local.publish_failed(exc)
            # One master down must not silence the others: publish the rest one by one (a
            # payload that went out twice is dropped by the rooms, which skip repeated seqs).
            for channel, payload in items:
                with contextlib.suppress(Exception):
                    await self.redis.execute_command(
                        "SPUBLISH", self.channel_name(channel), self.local.tagged(payload)
                    )

    # ---- subscriptions ----------------------------------------------------------

    async def subscribe(self, channel: str, handler: Handler) -> None:
        if not self.local.add(channel, handler):
            return
        # Without a slot map (the cluster unreachable since start) this returns at once: the
        # refresh that gets one subscribes the channel and has its room resync.
        shard = self._assign(channel)
        if shard is not None:
            await shard.add(channel)

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        if not self.local.discard(channel, handler):
            return
        owner = self._owner.pop(channel, None)
        if owner is not None and channel not in self.local:
            await self._shards[owner].remove(channel)

    def _assign(self, channel: str) -> _Shard | None:
        """The shard that owns the channel's slot now, remembered as its owner."""
        try:
            node = self.redis.get_node_from_key(self.channel_name(channel))
        except Exception:
            return None  # no slot map yet: the refresh that gets one assigns it
        if node is None:
            return None
        self._owner[channel] = node.name
        return self._shard(node.host, int(node.port))

    def _shard(self, host: str, port: int) -> _Shard:
        name = f"{host}:{port}"
        shard = self._shards.get(name)
        if shard is None:
            netloc = self._url.netloc.rsplit("@", 1)
            auth = f"{netloc[0]}@" if len(netloc) == 2 else ""
            url = urlunsplit((self._url.scheme, f"{auth}{host}:{port}", "/0", "", ""))
            shard = self._shards[name] = _Shard(self, name, url)
        return shard

    async def refresh(self) -> None:
        """Read the slot map again and move every channel whose slot changed master."""
        asked = time.monotonic()
        async with self._refresh_lock:
            # A burst of shards failing at once reads the map once: a refresh that started
            # after this call was made answers it.
            if self._refreshed_at > asked:
                return
            try:
                if not self._mapped:
                    # The client's own first initialization also prepares its command parser;
                    # later ones re-read the slot map only.
                    await self.redis.initialize()
                else:
                    await self.redis.nodes_manager.initialize()
            except Exception as exc:
                self._map_failures.failed(exc)
                return
            self._map_failures.succeeded()
            self._refreshed_at = asked
            if not self._mapped:
                self._mapped = True
                log.info("Redis Cluster slot map read")
            moved: list[str] = []
            for channel in list(self.local):
                before = self._owner.get(channel)
                shard = self._assign(channel)
                if shard is None or shard.name == before:
                    continue
                if before is not None:
                    await self._shards[before].remove(channel)
                moved.append(channel)
                # Unassigned (no map at its subscribe) or moved: it may have missed events.
                await shard.add(channel, resync=True)
            if moved:
                log.warning("Redis Cluster slots moved: %d channels follow them", len(moved))


class _Shard(PubSubConnection):
    """One subscription connection to one master, and the channels assigned to it."""

    def __init__(self, broker: ClusterBroker, name: str, url: str) -> None:
        self.channels: set[str] = set()
        super().__init__(
            url, self.channels, task=f"redis-shard-{name}", pinger=f"redis-shard-ping-{name}"
        )
        self.broker = broker
        self.name = name
        # Channels we asked to leave: any other SUNSUBSCRIBE means the slot moved.
        self._leaving: set[str] = set()
        # Channels that moved here: announced to the rooms once confirmed.
        self._resync: set[str] = set()
        self._following: set[asyncio.Task[None]] = set()
        self._wanted = asyncio.Event()
        self.start()

    @property
    def wanted(self) -> bool:
        return bool(self.channels)

    async def stop(self) -> None:
        for task in self._following:
            task.cancel()
        await super().stop()

    async def add(self, channel: str, *, resync: bool = False) -> None:
        """Returns once the master confirmed the SSUBSCRIBE (or at once while disconnected:
        the reconnect subscribes it and announces a resync)."""
        self.channels.add(channel)
        self._wanted.set()
        if resync:
            self._resync.add(channel)
        # A subscribe on a new shard waits for its first connection attempt, instead of
        # returning unconfirmed and costing the room a resync.
        if not self._tried.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tried.wait(), CONFIRM_TIMEOUT)
        waiter: asyncio.Future[None] | None = None
        async with self._lock:
            conn = self._conn
            if conn is None:
                return
            if channel in self._subscribed:
                # Sent by the (re)connect: wait for its confirmation like our own.
                waiting = self._confirm.get(channel)
                waiter = waiting[-1] if waiting else None
            else:
                waiter = self._expect(channel)
                self._subscribed.add(channel)
                try:
                    await conn.send_command(
                        "SSUBSCRIBE", self.broker.channel_name(channel), check_health=False
                    )
                except Exception as exc:
                    log.warning("subscribing %s failed: %s", channel, exc)
                    return  # the reader sees the broken connection and reconnects
        await self._confirmation(waiter)

    async def remove(self, channel: str) -> None:
        self.channels.discard(channel)
        self._resync.discard(channel)
        async with self._lock:
            if self._conn is None or channel not in self._subscribed:
                return
            self._subscribed.discard(channel)
            self._leaving.add(channel)
            with contextlib.suppress(Exception):
                await self._conn.send_command(
                    "SUNSUBSCRIBE", self.broker.channel_name(channel), check_health=False
                )

    # ---- the reader ----------------------------------------------------------------

    async def _idle(self) -> None:
        if not self.channels:
            # Nothing to serve here (yet, or any more: the slots moved away).
            self._wanted.clear()
            await self._wanted.wait()

    async def _retrying(self) -> None:
        # The master may have been replaced or restarted with other slots: follow the map.
        await self.broker.refresh()

    async def _subscribe_all(self, conn: Any, channels: list[str]) -> None:
        self._leaving.clear()  # a new connection leaves nothing
        # One SSUBSCRIBE per channel: the channels of one command must share a slot.
        commands = [("SSUBSCRIBE", self.broker.channel_name(c)) for c in channels]
        if commands:
            await conn.send_packed_command(conn.pack_commands(commands), check_health=False)

    def _came_up(self, channels: list[str]) -> bool:
        # After an earlier attempt, failed or broken, the rooms resync what they may have
        # missed; the first connection's subscribers wait for their confirmations instead.
        again = self._tried.is_set()
        if again:
            log.warning(
                "Redis shard %s reconnected; %d channels subscribed", self.name, len(channels)
            )
        return again

    def _lost(self, exc: Exception) -> None:
        log.error("Redis shard %s pub/sub lost (%s); serving local sessions", self.name, exc)

    def _frame(self, response: Any) -> str | None:
        kind = response[0]
        if kind == b"smessage":
            self.broker.local.received(response[1], response[2], self.broker.channel_part)
        elif kind == b"ssubscribe":
            channel: str = response[1][self.broker.channel_part].decode()
            self._confirmed(channel)
            if channel in self._resync:
                self._resync.discard(channel)
                self.broker.local.resubscribed([channel])
            return channel
        elif kind == b"sunsubscribe":
            channel = response[1][self.broker.channel_part].decode()
            if channel in self._leaving:
                self._leaving.discard(channel)
            elif channel in self.channels:
                # Its slot moved to another master (resharding, failover).
                self._subscribed.discard(channel)
                self._follow(channel)
        return None

    def _announce(self, channels: list[str]) -> None:
        self._resync.difference_update(channels)
        self.broker.local.resubscribed(channels)

    def _follow(self, channel: str) -> None:
        task = asyncio.get_running_loop().create_task(self._refollow(channel))
        self._following.add(task)
        task.add_done_callback(self._following.discard)

    async def _refollow(self, channel: str) -> None:
        await self.broker.refresh()
        # Moved by the refresh to its new master; or the map we read still names this
        # master: subscribe here again (a MOVED answer then reconnects after a refresh).
        if channel in self.channels and channel not in self._subscribed:
            await self.add(channel, resync=True)
