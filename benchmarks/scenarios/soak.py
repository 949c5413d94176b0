"""Soak (issue 13): steady chat traffic for ten minutes; is p99 as low at the end?

During a 5-minute soak (1,000 connections, about 300 msgs/s, SQLite) p99 end-to-end
latency rose from 15-20 ms to 57-61 ms after 4 minutes. This scenario holds 1,000
connections in 500 two-person conversations, sends 300 msgs/s open loop for 600 s (each
message stored, then delivered to both sides) and reports every 30-s window: p50 / p99 / max
latency, the server's loop lag p99 and longest GC pause (from /metrics), its RSS and the
SQLite WAL's size. Verdict "flat" when the last window's p99 is within 1.5x of the first's.
Ours only, on SQLite (the issue's configuration); pinned like the other scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from benchmarks.harness import measure_with, run_generator
from benchmarks.loadgen_soak import FLAT_P99_GROWTH
from benchmarks.scenarios import Metric
from benchmarks.servers import Running
from benchmarks.spec import SoakResult, SoakSpec
from benchmarks.targets import JWT_SECRET, Target, prepare_chat

CONNECT_BOUND_S = 600.0  # only stops a hang


@dataclass(frozen=True, slots=True)
class Options:
    """`python -m benchmarks run soak --duration S --rate R --connections N --window W`."""

    duration_s: float = 600.0  # issue 13: keep p99 flat over a 10-minute soak
    rate_per_s: float = 300.0
    connections: int = 1_000
    window_s: float = 30.0


QUICK = Options(duration_s=60.0)

METRICS = [
    Metric("p99_growth", "last / first window p99", False, lambda r: r["p99_growth"]),
]


def run(
    targets: list[Target], quick: bool, stamp: str, options: Options | None = None
) -> dict[str, Any]:
    chosen = options or (QUICK if quick else Options())
    conversations = max(1, chosen.connections // 2)

    def body(running: Running) -> SoakResult:
        audience = prepare_chat(running.port, JWT_SECRET, conversations)
        spec = SoakSpec(
            port=running.port,
            server_pid=running.pid,
            conversations=[str(room) for room in audience.rooms],
            tokens=audience.subscriber_tokens or [],
            rate_per_s=chosen.rate_per_s,
            duration_s=chosen.duration_s,
            window_s=chosen.window_s,
        )
        bound = CONNECT_BOUND_S + chosen.duration_s * 1.5
        out = run_generator("loadgen_soak", spec, bound)
        return msgspec.json.decode(out, type=SoakResult)

    entries = [
        measure_with(target, "soak", conversations * 2, stamp, body)
        for target in targets
        if target.name == "pitchey"
    ]
    settings = {
        "connections": conversations * 2,
        "conversations": conversations,
        "rate_per_s": chosen.rate_per_s,
        "duration_s": chosen.duration_s,
        "window_s": chosen.window_s,
        "flat_p99_growth": FLAT_P99_GROWTH,
        "backend": "sqlite",
    }
    return {"settings": settings, "entries": entries}
