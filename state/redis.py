"""State shared by every process through Redis: caches, rate limits, presence,
connection counts and WebSocket tickets.

Chosen by `server.wiring` when REDIS_URL is set, on one Redis or a Redis Cluster (see
`Keys` for the names that keep keys used together in one slot). Every key starts with
REDIS_PREFIX. A Redis failure never reaches a room or a request (tickets aside: they
answer 503, the client connects with its token instead): caches miss,
rate limits fall back to this process's own count, presence to its own sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from base.errors import Unavailable
from base.failures import RepeatedFailure
from base.identity import Caller
from state.connections import MemoryConnectionCounter
from state.ratelimit import MemoryRateLimiter
from state.tickets import decode_caller, encode_caller, new_ticket, ticket_digest

log = logging.getLogger("pitchey.redis")

# Version keys outlive any cached entry (entries are capped below), so a version that
# expired and restarted at 0 can never reach an entry written under an old 0.
_VERSION_TTL_MS = 7 * 24 * 3600 * 1000
_ENTRY_TTL_CAP = 24 * 3600.0


def command_client(url: str) -> Redis:
    """A client for ordinary commands: fail fast, one quick retry, so a dead Redis costs little."""
    client: Redis = Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
    return client


def cluster_client(url: str) -> RedisCluster:
    """The same for a Redis Cluster: commands follow the slot map, refreshed on MOVED and on
    a node's failure, so a restarted or failed-over master is found again by itself."""
    client: RedisCluster = RedisCluster.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
    return client


# What the stores below call on: one Redis, or a Redis Cluster (the same commands).
AnyRedis = Redis | RedisCluster


class Keys:
    """The names of the keys that travel together.

    On one Redis a name is the prefix and the name. On a Redis Cluster, keys used in one
    script must share a slot, and so must keys that must be lost together when a master
    restarts without its data; a hash tag (`{...}`) names what decides the slot:
    - a conversation's presence hash is tagged like its pub/sub channel (`{c:<id>}`), so the
      shard whose restart loses the hash is the shard whose subscription drops, and the
      rooms' resubscription re-registers it;
    - the node registry (the `nodes` set, each node's heartbeat key and conversation set)
      shares one tag, `{nodes}`: a master that restarts empty loses all of it at once, so
      no sweep takes a live node for dead because its heartbeat alone was lost, and each
      node's next heartbeat registers it again. (It is small: a key or two per node and a
      write per heartbeat and per conversation a node starts serving.)
    Single-key families (cache entries, versions, rate limits, tickets, connection counts)
    need no tag: the whole key decides its slot.
    """

    def __init__(self, prefix: str, *, cluster: bool = False) -> None:
        self.prefix = prefix
        self.cluster = cluster

    def presence(self, conversation_id: str) -> str:
        if self.cluster:
            return f"{self.prefix}presence:{{c:{conversation_id}}}"
        return f"{self.prefix}presence:{conversation_id}"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}{{nodes}}" if self.cluster else f"{self.prefix}nodes"

    def node(self, node: str) -> str:
        if self.cluster:
            return f"{self.prefix}node:{{nodes}}{node}"
        return f"{self.prefix}node:{node}"

    def node_conversations(self, node: str) -> str:
        if self.cluster:
            return f"{self.prefix}nodeconvs:{{nodes}}{node}"
        return f"{self.prefix}nodeconvs:{node}"

    @property
    def node_prefix(self) -> str:
        """What scripts prepend to a node id to check its heartbeat key. Empty on a cluster:
        a script may touch only keys of its own slot, so there an entry counts until the
        sweep removes its node (presence) or the caller names the live nodes (connections)."""
        return "" if self.cluster else f"{self.prefix}node:"


# Called for each user a dead node's sweep removed from a conversation: the rooms
# announce them offline (the state layer knows nothing of frames or channels).
WentOffline = Callable[[str, str], Awaitable[None]]


_BUMP = """
for _, key in ipairs(KEYS) do
    redis.call('INCR', key)
    redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS
"""


class RedisCache:
    """Entries under `cache:`, namespace versions under `ver:` bumped with INCR."""

    def __init__(self, redis: AnyRedis, prefix: str, *, cluster: bool = False) -> None:
        self._redis = redis
        self._prefix = prefix
        self._cluster = cluster
        self._bump = redis.register_script(_BUMP)
        self._bump_failures = RepeatedFailure(log, "cache invalidation failed", level=logging.ERROR)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(f"{self._prefix}cache:{key}")
        except Exception as exc:
            log.warning("cache get failed: %s", exc)
            return None
        return _bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        ms = max(1, int(min(ttl, _ENTRY_TTL_CAP) * 1000))
        try:
            await self._redis.set(f"{self._prefix}cache:{key}", value, px=ms)
        except Exception as exc:
            log.warning("cache set failed: %s", exc)

    async def version(self, namespace: str) -> int:
        try:
            value = await self._redis.get(f"{self._prefix}ver:{namespace}")
        except Exception as exc:
            log.warning("cache version read failed: %s", exc)
            # A version nobody ever used: the caller misses and reads the database.
            return -random.getrandbits(62) - 1
        return int(value) if value is not None else 0

    async def bump(self, namespaces: list[str]) -> None:
        if not namespaces:
            return
        keys = [f"{self._prefix}ver:{namespace}" for namespace in namespaces]
        try:
            if self._cluster:
                await self._bump_each(keys)
            else:
                # One script call for all of them: a message in a 1,000-member conversation
                # invalidates 1,000 lists, and 2,000 pipelined commands cost the server far
                # more client-side CPU than the message itself (seen in the scale-out
                # benchmark).
                await self._bump(keys=keys, args=[_VERSION_TTL_MS])
        except Exception as exc:
            # Other processes may serve a stale list until its TTL ends.
            self._bump_failures.failed(exc)
            return
        self._bump_failures.succeeded()

    async def _bump_each(self, keys: list[str]) -> None:
        # On a cluster the version keys of a conversation's members lie on every shard and a
        # script may touch one slot only: the cluster pipeline sends each shard its share
        # in one round trip (the CPU cost the script avoids on one Redis, paid here).
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.incr(key)
                pipe.pexpire(key, _VERSION_TTL_MS)
            await pipe.execute()


# The arithmetic of state.ratelimit.gcra, run inside Redis with Redis's own clock,
# so every process counts against one timestamp and no client clock matters.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]))
local start = now
if tat ~= nil and tat > now then start = tat end
local new_tat = start + interval
local excess = new_tat - now - window
if excess > 0 then return tostring(excess) end
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX',
           math.ceil((new_tat - now) * 1000) + 1)
return '0'
"""


class RedisRateLimiter:
    def __init__(self, redis: AnyRedis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_GCRA)
        # Without Redis each process limits on its own: limits stay, only looser.
        self._fallback = MemoryRateLimiter()
        self._failures = RepeatedFailure(
            log, "shared rate limit unavailable, counting in this process"
        )

    async def hit(self, key: str, limit: int, window: float) -> float:
        if limit <= 0:
            return 0.0
        try:
            result = await self._script(keys=[f"{self._prefix}rl:{key}"], args=[limit, window])
        except Exception as exc:
            self._failures.failed(exc)
            return await self._fallback.hit(key, limit, window)
        self._failures.succeeded()
        return float(result)


# Presence keys:
#   presence:<conversation>  hash "<node>|<user>" -> sessions' rooms on that node (0 is deleted)
#   node:<node>              exists while the node is alive (refreshed every ttl/3)
#   nodes                    set of nodes that may have presence entries
#   nodeconvs:<node>         conversations where the node has entries (for the sweep)
# A user is online in a conversation if some entry of theirs belongs to a live node.
_ONLINE_ELSEWHERE = """
local function online_elsewhere(hash, own, user, node_prefix)
  for _, f in ipairs(redis.call('HKEYS', hash)) do
    if f ~= own then
      local sep = string.find(f, '|', 1, true)
      if sep and string.sub(f, sep + 1) == user
         and (node_prefix == ''
              or redis.call('EXISTS', node_prefix .. string.sub(f, 1, sep - 1)) == 1) then
        return true
      end
    end
  end
  return false
end
"""
# KEYS: presence hash, nodeconvs (absent on a cluster: another slot); ARGV: node, user,
# node key prefix ('' on a cluster: every entry counts), count, conversation. Returns 1 if
# the user's online state changed everywhere (came online / went offline).
_SET_COUNT = (
    _ONLINE_ELSEWHERE
    + """
local own = ARGV[1] .. '|' .. ARGV[2]
local count = tonumber(ARGV[4])
local before = tonumber(redis.call('HGET', KEYS[1], own) or '0')
if count > 0 then
  redis.call('HSET', KEYS[1], own, count)
  if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[5]) end
else
  redis.call('HDEL', KEYS[1], own)
end
if (before > 0) == (count > 0) then return 0 end
if online_elsewhere(KEYS[1], own, ARGV[2], ARGV[3]) then return 0 end
return 1
"""
)
# KEYS: presence hash; ARGV: node key prefix ('' on a cluster: every entry counts).
# Users with an entry on a live node.
_ONLINE = """
local users = {}
local alive = {}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local sep = string.find(f, '|', 1, true)
  if sep then
    local node = string.sub(f, 1, sep - 1)
    if alive[node] == nil then
      alive[node] = ARGV[1] == '' or redis.call('EXISTS', ARGV[1] .. node) == 1
    end
    if alive[node] then users[string.sub(f, sep + 1)] = true end
  end
end
local out = {}
for user, _ in pairs(users) do table.insert(out, user) end
return out
"""
# KEYS: presence hash; ARGV: dead node, node key prefix. Removes the dead node's entries;
# returns the users who are now offline everywhere.
_FORGET_NODE = (
    _ONLINE_ELSEWHERE
    + """
local gone = {}
local head = ARGV[1] .. '|'
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, #head) == head then
    redis.call('HDEL', KEYS[1], f)
    local user = string.sub(f, #head + 1)
    if not online_elsewhere(KEYS[1], f, user, ARGV[2]) then table.insert(gone, user) end
  end
end
return gone
"""
)


class RedisPresence:
    """Presence across processes with a heartbeat: a dead node stops counting within `ttl`.

    This process's own counts are kept locally too: they are re-registered if Redis
    lost them (a restart, or our node key expired), and they answer while Redis is down.
    """

    def __init__(
        self,
        redis: AnyRedis,
        prefix: str,
        *,
        ttl: float,
        node: str | None = None,
        went_offline: WentOffline | None = None,
        cluster: bool = False,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._keys = Keys(prefix, cluster=cluster)
        self._ttl = ttl
        self._went_offline = went_offline
        self.node = node or f"{random.getrandbits(64):016x}"
        self._node_key = self._keys.node(self.node)
        self._node_convs = self._keys.node_conversations(self.node)
        self._local: dict[str, Counter[str]] = {}
        # Cluster only: conversations already in our node's set (a separate command there).
        self._registered: set[str] = set()
        # Nodes whose heartbeat the last sweep saw (and this one): on a cluster, what the
        # connection counter's script is told, since it cannot look at other slots.
        self._live: frozenset[str] = frozenset({self.node})
        # Conversations whose restore failed (a master back but its cluster not ok yet):
        # the heartbeat tries them again.
        self._unrestored: set[str] = set()
        self._set_count = redis.register_script(_SET_COUNT)
        self._online = redis.register_script(_ONLINE)
        self._forget = redis.register_script(_FORGET_NODE)
        self._task: asyncio.Task[None] | None = None

    def _hash(self, conversation_id: str) -> str:
        return self._keys.presence(conversation_id)

    def live_nodes(self) -> frozenset[str]:
        return self._live

    async def start(self) -> None:
        with contextlib.suppress(Exception):
            await self._heartbeat()
            if self._keys.cluster:
                await self._sweep()
        self._task = asyncio.create_task(self._beat(), name="presence-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Goodbye: our entries go now instead of after the TTL.
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for conversation_id, counts in self._local.items():
                    for user in counts:
                        pipe.hdel(self._hash(conversation_id), f"{self.node}|{user}")
                pipe.delete(self._node_key)
                pipe.delete(self._node_convs)
                pipe.srem(self._keys.nodes, self.node)
                await pipe.execute()
        except Exception as exc:
            log.warning("presence goodbye failed (%s); entries expire with the node key", exc)
        self._local.clear()

    async def join(self, conversation_id: str, user_id: str) -> bool:
        counts = self._local.setdefault(conversation_id, Counter())
        counts[user_id] += 1
        return await self._store(conversation_id, user_id, counts[user_id], counts[user_id] == 1)

    async def leave(self, conversation_id: str, user_id: str) -> bool:
        counts = self._local.get(conversation_id)
        if counts is None or counts[user_id] <= 0:
            return False
        counts[user_id] -= 1
        count = counts[user_id]
        if count == 0:
            del counts[user_id]
            if not counts:
                del self._local[conversation_id]
        return await self._store(conversation_id, user_id, count, count == 0)

    async def _store(
        self, conversation_id: str, user_id: str, count: int, local_change: bool
    ) -> bool:
        keys = [self._hash(conversation_id)]
        try:
            if not self._keys.cluster:
                keys.append(self._node_convs)
            elif count > 0 and conversation_id not in self._registered:
                # Before the entry: a sweep after our death must find the conversation.
                await self._redis.sadd(self._node_convs, conversation_id)
                self._registered.add(conversation_id)
            changed = await self._set_count(
                keys=keys,
                args=[self.node, user_id, self._keys.node_prefix, count, conversation_id],
            )
        except Exception as exc:
            log.warning("presence update failed (%s); answering from this process", exc)
            return local_change
        return bool(changed)

    async def online(self, conversation_id: str) -> list[str]:
        try:
            users = await self._online(
                keys=[self._hash(conversation_id)], args=[self._keys.node_prefix]
            )
        except Exception as exc:
            log.warning("presence read failed (%s); answering from this process", exc)
            return sorted(self._local.get(conversation_id, ()))
        return sorted(_text(u) for u in users)

    # ---- heartbeat and sweep ------------------------------------------------------

    async def _beat(self) -> None:
        period = self._ttl / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self._heartbeat()
                await self._sweep()
            except Exception as exc:
                log.warning("presence heartbeat failed: %s", exc)

    async def _heartbeat(self) -> None:
        ms = max(1, int(self._ttl * 1000))
        previous = await self._redis.set(self._node_key, b"1", px=ms, get=True)
        if previous is not None:
            if self._unrestored:
                await self.restore(list(self._unrestored))
            return
        # First beat, or Redis forgot us (restart, or our key expired and a sweep removed
        # our entries): register everything this process knows.
        await self._register(list(self._local), node=True)
        self._unrestored.clear()

    async def restore(self, conversation_ids: Sequence[str]) -> None:
        """Write this process's entries of these conversations again.

        On a cluster a master that restarted without its data lost the presence hashes of
        its slots, while our heartbeat key (on another shard) lived on: the broker's
        resubscription to that shard names the conversations to register again.
        """
        known = [c for c in conversation_ids if c in self._local]
        self._unrestored.difference_update(conversation_ids)
        if not known:
            return
        try:
            await self._register(known, node=False)
        except Exception as exc:
            self._unrestored.update(known)
            log.warning("presence restore failed (%s); the next heartbeat tries again", exc)

    async def _register(self, conversation_ids: list[str], *, node: bool) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            if node:
                pipe.sadd(self._keys.nodes, self.node)
            for conversation_id in conversation_ids:
                for user, count in self._local[conversation_id].items():
                    pipe.hset(self._hash(conversation_id), f"{self.node}|{user}", count)
                pipe.sadd(self._node_convs, conversation_id)
            await pipe.execute()
        if node:
            self._registered = set(conversation_ids)

    async def _sweep(self) -> None:
        """Remove the entries of nodes whose key expired and announce who went offline."""
        nodes_key = self._keys.nodes
        live = {self.node}
        for raw in await self._redis.smembers(nodes_key):
            node = _text(raw)
            if node == self.node or await self._redis.exists(self._keys.node(node)):
                live.add(node)
                continue
            # SREM answers 1 to one sweeper only: that one cleans up and announces.
            if not await self._redis.srem(nodes_key, node):
                continue
            log.warning("node %s stopped its heartbeat; removing its presence", node)
            convs_key = self._keys.node_conversations(node)
            for raw_conv in await self._redis.smembers(convs_key):
                await self._forget_conversation(node, _text(raw_conv))
            await self._redis.delete(convs_key)
        self._live = frozenset(live)

    async def _forget_conversation(self, node: str, conversation_id: str) -> None:
        gone: list[Any] = await self._forget(
            keys=[self._hash(conversation_id)], args=[node, self._keys.node_prefix]
        )
        if self._went_offline is None:
            return
        for raw_user in gone:
            await self._went_offline(conversation_id, _text(raw_user))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


# Connection counts: conns:<user> is a hash node -> that node's open sockets of the user.
# A node's entry counts while its heartbeat key (node:<node>, kept by RedisPresence) lives,
# so a node that died stops counting within PRESENCE_TTL. Each node writes its own local
# count (HSET, not HINCRBY): a lost or stale entry is corrected by the node's next change.
# KEYS: conns hash; ARGV: node, node key prefix, limit, local count with the new one,
# key TTL (ms). Returns 1 if the connection was counted, 0 if it would pass the limit.
_ACQUIRE = """
local own = ARGV[1]
local total = tonumber(ARGV[4])
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local node = entries[i]
  if node ~= own then
    if redis.call('EXISTS', ARGV[2] .. node) == 1 then
      total = total + tonumber(entries[i + 1])
    else
      redis.call('HDEL', KEYS[1], node)
    end
  end
end
if total > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], own, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""
# The same on a Redis Cluster, where the script cannot read other slots' heartbeat keys:
# the caller names the nodes it knows alive and those it found dead (space-separated).
# KEYS: conns hash; ARGV: node, limit, local count with the new one, key TTL (ms), live
# nodes, dead nodes. An entry of a node in neither list changes nothing: the script
# answers the list of such nodes, for the caller to look at their heartbeats and ask again.
_ACQUIRE_CLUSTER = """
local own = ARGV[1]
local total = tonumber(ARGV[3])
local live, dead, unknown = {}, {}, {}
for n in string.gmatch(ARGV[5], '%S+') do live[n] = true end
for n in string.gmatch(ARGV[6], '%S+') do dead[n] = true end
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local node = entries[i]
  if node ~= own then
    if live[node] then
      total = total + tonumber(entries[i + 1])
    elseif dead[node] then
      redis.call('HDEL', KEYS[1], node)
    else
      table.insert(unknown, node)
    end
  end
end
if #unknown > 0 then return unknown end
if total > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], own, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""
# KEYS: conns hash; ARGV: node, local count after.
_RELEASE = """
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
"""
# Longest a user's hash outlives its last change: long enough for any connection to be
# counted, short enough that entries of vanished deployments do not pile up.
_CONNS_TTL_MS = 7 * 24 * 3600 * 1000


class RedisConnectionCounter:
    """Per-user connection counts across nodes; this node's counts are also kept locally
    (the truth it writes to Redis, and the answer while Redis is down)."""

    def __init__(
        self,
        redis: AnyRedis,
        prefix: str,
        *,
        node: str,
        live_nodes: Callable[[], Collection[str]] | None = None,
    ) -> None:
        """`live_nodes` (a cluster): the nodes the last presence sweep saw alive. An entry
        of another node makes this process look at that node's heartbeat before counting,
        so a node started since the sweep is counted, and a dead one's entry removed."""
        self._redis = redis
        self._prefix = prefix
        self.node = node
        self._live_nodes = live_nodes
        self._keys = Keys(prefix, cluster=live_nodes is not None)
        self._local = MemoryConnectionCounter()
        self._acquire = redis.register_script(_ACQUIRE)
        self._acquire_cluster = redis.register_script(_ACQUIRE_CLUSTER)
        self._release = redis.register_script(_RELEASE)

    def _key(self, user_id: str) -> str:
        return f"{self._prefix}conns:{user_id}"

    async def acquire(self, user_id: str, limit: int) -> bool:
        # Reserved here first, so concurrent handshakes on this node cannot pass the limit
        # together while they wait for Redis.
        if not await self._local.acquire(user_id, limit):
            return False
        try:
            if self._live_nodes is None:
                counted = await self._acquire(
                    keys=[self._key(user_id)],
                    args=[
                        self.node,
                        f"{self._prefix}node:",
                        limit,
                        self._local.open(user_id),
                        _CONNS_TTL_MS,
                    ],
                )
            else:
                counted = await self._count_on_cluster(user_id, limit, self._live_nodes())
        except Exception as exc:
            log.warning("shared connection count unavailable (%s); counting in this node", exc)
            return True
        if not counted:
            await self.release(user_id)
            return False
        return True

    async def _count_on_cluster(self, user_id: str, limit: int, live: Collection[str]) -> bool:
        args: list[Any] = [self.node, limit, self._local.open(user_id), _CONNS_TTL_MS]
        result = await self._acquire_cluster(
            keys=[self._key(user_id)], args=[*args, " ".join(live), ""]
        )
        if not isinstance(result, list):
            return bool(result)
        # Nodes the sweep has not seen yet (or never will: dead): their heartbeats decide.
        unknown = [_text(n) for n in result]
        async with self._redis.pipeline(transaction=False) as pipe:
            for node in unknown:
                pipe.exists(self._keys.node(node))
            beating = await pipe.execute()
        alive = [n for n, up in zip(unknown, beating, strict=True) if up]
        dead = [n for n, up in zip(unknown, beating, strict=True) if not up]
        result = await self._acquire_cluster(
            keys=[self._key(user_id)], args=[*args, " ".join([*live, *alive]), " ".join(dead)]
        )
        # A node that appeared between the two calls: counted next time.
        return bool(result) if not isinstance(result, list) else True

    async def release(self, user_id: str) -> None:
        await self._local.release(user_id)
        try:
            await self._release(
                keys=[self._key(user_id)], args=[self.node, self._local.open(user_id)]
            )
        except Exception as exc:
            log.warning("shared connection count not updated (%s)", exc)


class RedisTicketStore:
    """Tickets under `ticket:<sha256>` with a TTL; redeemed with GETDEL, so exactly once."""

    def __init__(self, redis: AnyRedis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def issue(self, caller: Caller, ttl: float) -> str:
        ticket = new_ticket()
        try:
            await self._redis.set(
                f"{self._prefix}ticket:{ticket_digest(ticket)}",
                encode_caller(caller),
                px=max(1, int(ttl * 1000)),
            )
        except Exception as exc:
            raise Unavailable("ticket store unavailable; connect with a token") from exc
        return ticket

    async def redeem(self, ticket: str) -> Caller | None:
        try:
            raw = await self._redis.getdel(f"{self._prefix}ticket:{ticket_digest(ticket)}")
        except Exception as exc:
            raise Unavailable("ticket store unavailable; connect with a token") from exc
        return decode_caller(_bytes(raw)) if raw is not None else None
