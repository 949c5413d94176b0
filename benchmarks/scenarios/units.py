"""Unit costs for docs/capacity.md (issue 17): what one message and one connection cost.

Our server only, chat's shape (two-person conversations, both sides connected and sending,
each message stored and delivered to both), at a fixed rate well under every configuration's
ceiling, on four stacks: SQLite or PostgreSQL, without or with Redis (the broker, shared rate
limits, cache invalidation and presence go through it when REDIS_URL is set).

Per message, for our server process, redis-server and PostgreSQL's processes: CPU µs; Redis
commands (by command) and bytes in and out; PostgreSQL transactions, rows written and
database growth. Connecting, subscribing and set-up cost the same whatever the duration, so
each stack is driven twice on one server, a short and a long run, and every figure is the
difference of the two divided by the difference in stored messages: the fixed costs cancel.

Memory: 2,000 idle subscribed connections (1,000 with --quick) in rooms of 2 and in rooms of
1,000; per connection from the second, per room from the difference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec

from benchmarks.backends import (
    PG_ADMIN,
    REDIS_URL,
    fresh_postgres,
    postgres_available,
    redis_available,
    redis_prefix,
)
from benchmarks.harness import measure, measure_with, run_loadgen
from benchmarks.scenarios import Metric
from benchmarks.servers import Running
from benchmarks.spec import FanoutResult, Ladder, LoadSpec
from benchmarks.targets import JWT_SECRET, Target, prepare_chat

CONVERSATIONS = 500
QUICK_CONVERSATIONS = 100
# Sent msgs/s: a loaded process (group commits of several messages), under every stack's
# clean rate here. At low rates each message is a commit of its own and costs several times
# as much (the first run, at 500/s, is in the results too).
RATE_PER_S = 1_500
QUICK_RATE_PER_S = 200
SHORT_S, LONG_S = 3.0, 13.0
QUICK_SHORT_S, QUICK_LONG_S = 2.0, 6.0
# PostgreSQL backends report their counters when idle for 10 s at the latest (PG 15's
# PGSTAT_IDLE_INTERVAL); a snapshot waits that long after the load so nothing is missed.
PG_STATS_SETTLE_S = 11.0
STACKS = (("sqlite", False), ("sqlite", True), ("postgresql", False), ("postgresql", True))
MEMORY_CONNECTIONS = 2_000
QUICK_MEMORY_CONNECTIONS = 1_000
LARGE_ROOM = 1_000
FRAMES_PER_MESSAGE = 2
TOP_COMMANDS = 6

METRICS: list[Metric] = []  # our server only: nothing to divide by a peer


class Snapshot(msgspec.Struct):
    stored: float  # pitchey_messages_stored_total
    server_cpu_s: float
    redis_cpu_s: float | None = None
    redis_commands: dict[str, int] = {}
    redis_in_bytes: int = 0
    redis_out_bytes: int = 0
    pg_cpu_s: float | None = None
    pg_counters: dict[str, int] = {}


def _cpu_s(process: Any) -> float:
    # psutil is the bench extra: report.py and the tests import this module without it.
    import psutil

    with process.oneshot():
        times = process.cpu_times()
        total = float(times.user + times.system)
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return total


def _stored(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("pitchey_messages_stored_total"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _redis_snapshot(snap: Snapshot) -> None:
    import psutil
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    try:
        server = client.info("server")
        snap.redis_cpu_s = _cpu_s(psutil.Process(int(server["process_id"])))
        stats = client.info("stats")
        snap.redis_in_bytes = int(stats["total_net_input_bytes"])
        snap.redis_out_bytes = int(stats["total_net_output_bytes"])
        snap.redis_commands = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in client.info("commandstats").items()
        }
    finally:
        client.close()


PG_COUNTERS = ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched")


def _pg_snapshot(snap: Snapshot, database: str) -> None:
    """Counters of `database` from pg_stat_database, and its size on disk, through psql
    connected to another database (so the look itself counts in none of them)."""
    query = (
        f"SELECT {', '.join(PG_COUNTERS)}, pg_database_size(datname) FROM pg_stat_database "
        f"WHERE datname = '{database}'"
    )
    out = subprocess.run(
        [*PG_ADMIN[:-1], "-Atc", query], check=True, capture_output=True, timeout=30, text=True
    ).stdout.strip()
    values = [int(v) for v in out.split("|")]
    snap.pg_counters = dict(zip([*PG_COUNTERS, "database_bytes"], values, strict=True))
    snap.pg_cpu_s = _postgres_cpu_s()


def _postgres_cpu_s() -> float:
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
    return total


def snapshot(running: Running, redis_on: bool, database: str | None) -> Snapshot:
    import psutil

    if database is not None:
        time.sleep(PG_STATS_SETTLE_S)
    snap = Snapshot(stored=_stored(running.port), server_cpu_s=_cpu_s(psutil.Process(running.pid)))
    if redis_on:
        _redis_snapshot(snap)
    if database is not None:
        _pg_snapshot(snap, database)
    return snap


def _delta(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    commands = {k: v - a.redis_commands.get(k, 0) for k, v in b.redis_commands.items()}
    return {
        "stored": b.stored - a.stored,
        "server_cpu_s": b.server_cpu_s - a.server_cpu_s,
        "redis_cpu_s": None
        if a.redis_cpu_s is None or b.redis_cpu_s is None
        else b.redis_cpu_s - a.redis_cpu_s,
        "redis_commands": {k: v for k, v in commands.items() if v},
        "redis_in_bytes": b.redis_in_bytes - a.redis_in_bytes,
        "redis_out_bytes": b.redis_out_bytes - a.redis_out_bytes,
        "pg_cpu_s": None if a.pg_cpu_s is None or b.pg_cpu_s is None else b.pg_cpu_s - a.pg_cpu_s,
        "pg_counters": {k: v - a.pg_counters.get(k, 0) for k, v in b.pg_counters.items()},
    }


def per_message(short: dict[str, Any], long: dict[str, Any]) -> dict[str, Any]:
    """(long - short) / (messages stored in long - in short): the fixed costs cancel."""
    messages = long["stored"] - short["stored"]
    if messages <= 0:
        return {"messages": messages}

    def each(key: str, scale: float = 1.0) -> float | None:
        if long[key] is None or short[key] is None:
            return None
        return round(float(long[key] - short[key]) * scale / messages, 3)

    commands = {
        name: round((count - short["redis_commands"].get(name, 0)) / messages, 3)
        for name, count in long["redis_commands"].items()
    }
    pg = {
        name: round((value - short["pg_counters"].get(name, 0)) / messages, 3)
        for name, value in long["pg_counters"].items()
    }
    return {
        "messages": messages,
        "server_cpu_us": each("server_cpu_s", 1e6),
        "redis_cpu_us": each("redis_cpu_s", 1e6),
        "redis_commands_total": round(sum(commands.values()), 2) if commands else None,
        "redis_commands": dict(sorted(commands.items(), key=lambda kv: -kv[1])[:TOP_COMMANDS]),
        "redis_in_bytes": each("redis_in_bytes") if long["redis_cpu_s"] is not None else None,
        "redis_out_bytes": each("redis_out_bytes") if long["redis_cpu_s"] is not None else None,
        "pg_cpu_us": each("pg_cpu_s", 1e6),
        "pg": pg,
    }


@contextlib.contextmanager
def stack_target(
    target: Target, backend: str, redis_on: bool
) -> Iterator[tuple[Target, str | None]]:
    """Our target on `backend`, with Redis when `redis_on`; the PostgreSQL database name."""
    with contextlib.ExitStack() as stack:
        extra: dict[str, str] = {}
        database = None
        if backend == "postgresql":
            url = stack.enter_context(fresh_postgres())
            extra["DATABASE_URL"] = url
            database = url.rsplit("/", 1)[1]
        if redis_on:
            extra["REDIS_URL"] = REDIS_URL
            extra["REDIS_PREFIX"] = stack.enter_context(redis_prefix())
        base = target.env

        def env(workdir: Path) -> dict[str, str]:
            return {**base(workdir), **extra}

        yield dataclasses.replace(target, env=env), database


def measure_stack(
    target: Target, backend: str, redis_on: bool, quick: bool, stamp: str
) -> dict[str, Any]:
    conversations = QUICK_CONVERSATIONS if quick else CONVERSATIONS
    rate = QUICK_RATE_PER_S if quick else RATE_PER_S
    durations = (QUICK_SHORT_S, QUICK_LONG_S) if quick else (SHORT_S, LONG_S)
    tag = f"-{backend}{'-redis' if redis_on else ''}"
    with stack_target(target, backend, redis_on) as (chosen, database):

        def body(running: Running) -> msgspec.Struct:
            # Each run has conversations of its own, made before the first snapshot, so
            # both runs pay the same first-use costs and set-up is in neither.
            audiences = [
                prepare_chat(running.port, JWT_SECRET, conversations, prefix=f"run{n}")
                for n in range(len(durations))
            ]
            runs: list[dict[str, Any]] = []
            steps: list[Any] = []
            before = snapshot(running, redis_on, database)
            for seconds, audience in zip(durations, audiences, strict=True):
                spec = LoadSpec(
                    mode="chat",
                    port=running.port,
                    dialect=chosen.dialect,
                    server_pid=running.pid,
                    subscribers=conversations * 2,
                    rooms=list(audience.rooms),
                    room_size=audience.room_size,
                    subscriber_tokens=audience.subscriber_tokens,
                    publisher_token=audience.publisher_token,
                    # One step at `rate`: a ceiling equal to the start stops the doubling.
                    ladder=Ladder(start=rate, ceiling=rate, refine=0, step_seconds=seconds),
                    p99_limit_ms=50.0,
                )
                result = run_loadgen(spec)
                assert isinstance(result, FanoutResult)
                steps.extend(result.steps)
                after = snapshot(running, redis_on, database)
                runs.append(_delta(before, after))
                before = after
            return Stack(
                backend=backend,
                redis=redis_on,
                rate_per_s=rate,
                conversations=conversations,
                runs=runs,
                steps=[msgspec.to_builtins(s) for s in steps],
                per_message=per_message(runs[0], runs[1]),
            )

        return measure_with(chosen, "units", conversations * 2, stamp, body, tag=tag)


class Stack(msgspec.Struct):
    backend: str
    redis: bool
    rate_per_s: int
    conversations: int
    runs: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    per_message: dict[str, Any]


def run(targets: list[Target], quick: bool, stamp: str) -> dict[str, Any]:
    ours = [t for t in targets if t.name == "pitchey"]
    entries: list[dict[str, Any]] = []
    for target in ours:
        for backend, redis_on in STACKS:
            missing = postgres_available() if backend == "postgresql" else None
            missing = missing or (redis_available() if redis_on else None)
            label = f"{target.label}, {backend}{' + Redis' if redis_on else ''}"
            if missing:
                entries.append(
                    {
                        "target": target.name,
                        "label": label,
                        "subscribers": 0,
                        "status": "skipped",
                        "reason": missing,
                    }
                )
                continue
            entry = measure_stack(target, backend, redis_on, quick, stamp)
            entries.append({**entry, "label": label, "kind": "stack"})
        connections = QUICK_MEMORY_CONNECTIONS if quick else MEMORY_CONNECTIONS
        for room_size in (2, LARGE_ROOM):
            entry = measure(
                target,
                "idle",
                connections,
                Ladder(),
                stamp,
                tag=f"-rooms-of-{room_size}",
                room_size=room_size,
            )
            entries.append(
                {
                    **entry,
                    "label": f"{target.label}, rooms of {room_size:,}",
                    "kind": "memory",
                    "room_size": room_size,
                }
            )
    return {
        "settings": {
            "conversations": QUICK_CONVERSATIONS if quick else CONVERSATIONS,
            "rate_per_s": QUICK_RATE_PER_S if quick else RATE_PER_S,
            "durations_s": [QUICK_SHORT_S, QUICK_LONG_S] if quick else [SHORT_S, LONG_S],
            "memory_connections": QUICK_MEMORY_CONNECTIONS if quick else MEMORY_CONNECTIONS,
            "frames_per_message": FRAMES_PER_MESSAGE,
        },
        "entries": entries,
    }
