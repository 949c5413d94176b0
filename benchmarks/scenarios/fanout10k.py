"""Fan-out at 10,000 subscribers (issue 14): 10 rooms of 1,000, one publisher per room.

Publish i goes to room i % 10, so every room gets the same share of the offered rate; the
ladder counts delivered messages per second summed over all 10,000 subscribers. The pass
rule is scenario 1's: nothing lost and p99 < 100 ms over every delivery of the step. The
fan-out peers run beside ours exactly as in scenario 1, each room under its own name.
"""

from __future__ import annotations

from typing import Any

import msgspec

from benchmarks.harness import measure
from benchmarks.scenarios import Metric
from benchmarks.spec import Ladder
from benchmarks.targets import Target

ROOMS = 10
FULL_ROOM_SIZE = 1_000
QUICK_ROOM_SIZE = 100  # --quick: 1,000 connections in the same 10-room shape
# One publish reaches one room; 2,000/s is 2 publishes a second, the scenario's floor.
FULL = Ladder(start=2_000, step_seconds=5.0, refine=3)
QUICK = Ladder(start=2_000, step_seconds=2.0, refine=2)

METRICS = [
    Metric("clean_per_s", "clean delivered msgs/s", True, lambda r: r["best_clean_per_s"]),
]


def run(targets: list[Target], quick: bool, stamp: str) -> dict[str, Any]:
    ladder = QUICK if quick else FULL
    room_size = QUICK_ROOM_SIZE if quick else FULL_ROOM_SIZE
    subscribers = ROOMS * room_size
    peers = [t for t in targets if t.chat_backend is None]  # chat peers run in chat only
    entries = [
        measure(target, "fanout", subscribers, ladder, stamp, room_size=room_size, tag="-10rooms")
        for target in peers
    ]
    return {
        "settings": {
            "sizes": [subscribers],
            "rooms": ROOMS,
            "room_size": room_size,
            "ladder": msgspec.to_builtins(ladder),
        },
        "entries": entries,
    }
