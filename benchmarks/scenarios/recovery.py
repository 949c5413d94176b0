"""Scenario 4, recovery storm: every subscriber of one conversation reconnects at once.

A publisher sends at a steady rate; after `STORM_AFTER_S` every subscriber drops its socket
and reconnects with ``subscribe {since: lastSeq}`` (paging REST when the server answers
``recovered: false``). Figures: time until all are subscribed again, time until every client
holds every message up to what the server had when it resubscribed (caught up), and lost /
duplicated messages, which must both be zero. Only our server: no peer has `since`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from benchmarks.harness import measure_with, run_generator
from benchmarks.scenarios import Metric
from benchmarks.servers import Running
from benchmarks.spec import RecoveryResult, RecoverySpec
from benchmarks.targets import JWT_SECRET, Target, prepare_pitchey

FULL_SUBSCRIBERS = 1_000
QUICK_SUBSCRIBERS = 200
# 20 publishes/s is 20,000 deliveries/s at 1,000 subscribers: well under the fan-out
# ceiling, so the storm (not the steady traffic) is what is measured.
RATE_PER_S = 20.0
STORM_AFTER_S = 3.0
PUBLISH_AFTER_S = 7.0  # messages keep flowing while everyone reconnects and catches up
GENERATOR_BOUND_S = 600.0

METRICS = [
    Metric("caught_up_s", "caught up s", False, lambda r: r["caught_up_s"]),
]


def run(targets: list[Target], quick: bool, stamp: str) -> dict[str, Any]:
    n = QUICK_SUBSCRIBERS if quick else FULL_SUBSCRIBERS

    def body(running: Running) -> RecoveryResult:
        audience = prepare_pitchey(running.port, JWT_SECRET, n, n)
        spec = RecoverySpec(
            port=running.port,
            server_pid=running.pid,
            conversation=str(audience.rooms[0]),
            subscriber_tokens=audience.subscriber_tokens or [],
            publisher_token=audience.publisher_token or "",
            rate_per_s=RATE_PER_S,
            storm_after_s=STORM_AFTER_S,
            publish_after_s=PUBLISH_AFTER_S,
        )
        out = run_generator("loadgen_recovery", spec, GENERATOR_BOUND_S)
        return msgspec.json.decode(out, type=RecoveryResult)

    entries = [
        measure_with(target, "recovery", n, stamp, body)
        for target in targets
        if target.name == "pitchey"
    ]
    settings = {
        "subscribers": n,
        "rate_per_s": RATE_PER_S,
        "storm_after_s": STORM_AFTER_S,
        "publish_after_s": PUBLISH_AFTER_S,
    }
    return {"settings": settings, "entries": entries}
