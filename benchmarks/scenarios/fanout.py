"""Scenario 1, fan-out: one room, one open-loop publisher, ~100-byte messages.

For each target and room size, the highest delivered-messages-per-second (summed over
subscribers) at which nothing was lost and p99 latency stayed under 100 ms.
"""

from __future__ import annotations

from typing import Any

import msgspec

from benchmarks.harness import measure
from benchmarks.scenarios import Metric
from benchmarks.spec import Ladder
from benchmarks.targets import Target

SIZES = (1_000, 100)
FULL = Ladder(step_seconds=5.0, refine=3)
QUICK = Ladder(step_seconds=2.0, refine=2)

METRICS = [
    Metric("clean_per_s", "clean delivered msgs/s", True, lambda r: r["best_clean_per_s"]),
]


def run(targets: list[Target], quick: bool, stamp: str) -> dict[str, Any]:
    ladder = QUICK if quick else FULL
    peers = [t for t in targets if t.chat_backend is None]  # chat peers run in chat only
    entries = [measure(target, "fanout", size, ladder, stamp) for size in SIZES for target in peers]
    return {
        "settings": {"sizes": list(SIZES), "ladder": msgspec.to_builtins(ladder)},
        "entries": entries,
    }
