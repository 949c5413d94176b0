"""Scenario 7, scale-out: scenario 1 (one room of 1,000) on 2 server processes versus 1.

Both configurations use the same backends: Redis (REDIS_URL, a unique REDIS_PREFIX per
measurement, its keys deleted after) and a fresh PostgreSQL database (dropped after). With 2
processes the subscribers are split evenly between them (subscriber i on process i % 2) and
the publisher is on process 1, so half of every fan-out crosses Redis.

This machine has 2 cores. Pinning process 1 to core 0 and process 2 to core 1 would leave
the load generator no core of its own, and all three on core 0 measures nothing. So nothing
is pinned: 1 process versus 2 processes, the generator sharing the machine with them. The
figure is bounded by the 2-core machine (the generator takes most of a core at these rates)
and is not the issue's "one core per process" comparison; see benchmarks/README.md.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import msgspec

from benchmarks.backends import (
    REDIS_URL,
    fresh_postgres,
    postgres_available,
    redis_available,
    redis_prefix,
)
from benchmarks.harness import RAW_DIR, run_loadgen
from benchmarks.scenarios import Metric
from benchmarks.scenarios.fanout import FULL, QUICK
from benchmarks.servers import free_port, serve
from benchmarks.spec import Ladder, LoadSpec
from benchmarks.targets import JWT_SECRET, Target, pitchey_env, prepare_pitchey

SUBSCRIBERS = 1_000
PROCESSES = (1, 2)

METRICS = [
    Metric("clean_per_s", "clean delivered msgs/s", True, lambda r: r["best_clean_per_s"]),
]


def measure_procs(target: Target, procs: int, ladder: Ladder, stamp: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "target": f"pitchey-x{procs}",
        "label": f"Pitchey Comms, {procs} process{'es' if procs > 1 else ''} (unpinned)",
        "subscribers": SUBSCRIBERS,
        "processes": procs,
    }
    reason = target.available() or postgres_available() or redis_available()
    if reason:
        return {**entry, "status": "skipped", "reason": reason}
    print(f"[pitchey] scale-out, {procs} process(es), {SUBSCRIBERS} subscribers", file=sys.stderr)
    try:
        with (
            fresh_postgres() as database_url,
            redis_prefix() as prefix,
            tempfile.TemporaryDirectory(prefix="pitchey-bench-") as workdir,
            contextlib.ExitStack() as stack,
        ):
            env = pitchey_env(Path(workdir)) | {
                "DATABASE_URL": database_url,
                "REDIS_URL": REDIS_URL,
                "REDIS_PREFIX": prefix,
            }
            ports = [free_port() for _ in range(procs)]
            entry["server_commands"] = [shlex.join(target.argv(port)) for port in ports]
            running = [
                # One after the other: the first creates the schema in the fresh database.
                stack.enter_context(
                    serve(
                        target.argv(port),
                        env,
                        port,
                        RAW_DIR / f"{stamp}-scaleout-x{procs}-{k}.log",
                        cpu=None,
                    )
                )
                for k, port in enumerate(ports)
            ]
            audience = prepare_pitchey(ports[0], JWT_SECRET, SUBSCRIBERS, SUBSCRIBERS)
            spec = LoadSpec(
                mode="fanout",
                port=ports[0],
                dialect="pitchey",
                server_pid=running[0].pid,
                subscribers=SUBSCRIBERS,
                rooms=list(audience.rooms),
                room_size=audience.room_size,
                subscriber_tokens=audience.subscriber_tokens,
                publisher_token=audience.publisher_token,
                ladder=ladder,
                extra_ports=ports[1:],
                extra_pids=[r.pid for r in running[1:]],
            )
            result = run_loadgen(spec, pin=False)
    except (RuntimeError, OSError, ValueError, httpx.HTTPError) as exc:
        print(f"[pitchey] error: {exc}", file=sys.stderr)
        return {**entry, "status": "error", "reason": str(exc)}
    return {**entry, "status": "ok", "result": msgspec.to_builtins(result)}


def run(targets: list[Target], quick: bool, stamp: str) -> dict[str, Any]:
    ladder = QUICK if quick else FULL
    ours = [t for t in targets if t.name == "pitchey"]
    entries = [measure_procs(t, procs, ladder, stamp) for t in ours for procs in PROCESSES]
    ok = {e["processes"]: e["result"]["best_clean_per_s"] for e in entries if e["status"] == "ok"}
    speedup = round(ok[2] / ok[1], 3) if ok.get(1) and 2 in ok else None
    return {
        "settings": {
            "subscribers": SUBSCRIBERS,
            "processes": list(PROCESSES),
            "pinned": False,
            "backends": "Redis + PostgreSQL",
            "ladder": msgspec.to_builtins(ladder),
        },
        "entries": entries,
        "speedup_2_over_1": speedup,
    }
