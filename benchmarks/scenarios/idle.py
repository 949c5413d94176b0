"""Scenario 3, idle: N connections, each joined to a room (conversation) of up to 1,000.

Server RSS growth per connection (RSS after all joined and 2 s of settling, minus RSS
before the first connection, over N) and the connect+join rate the generator achieved.
"""

from __future__ import annotations

from typing import Any

from benchmarks.harness import measure
from benchmarks.scenarios import Metric
from benchmarks.spec import Ladder
from benchmarks.targets import Target

FULL_CONNECTIONS = 10_000
QUICK_CONNECTIONS = 1_000

METRICS = [
    Metric("rss_kb", "server RSS KB / connection", False, lambda r: r["rss_per_connection_kb"]),
    Metric("connect_per_s", "connect+join /s", True, lambda r: r["connect"]["per_s"]),
]


def run(targets: list[Target], quick: bool, stamp: str) -> dict[str, Any]:
    n = QUICK_CONNECTIONS if quick else FULL_CONNECTIONS
    peers = [t for t in targets if t.chat_backend is None]  # chat peers run in chat only
    entries = [measure(target, "idle", n, Ladder(), stamp) for target in peers]
    return {"settings": {"connections": n}, "entries": entries}
