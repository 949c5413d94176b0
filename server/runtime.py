"""The process's own health: garbage-collection pauses, event-loop lag, and the GC policy.

CPython's full collection walks every tracked object, so with 10,000 connections
(sessions, tasks, futures, frames) it stops the whole server for hundreds of
milliseconds. The policy keeps full collections rare and cheap: long-lived objects
(everything built at start-up, and the objects of each second of a burst of connections)
are moved out of the collector's reach with `gc.freeze()`, so collections walk only what
is new. Freezing is a constant-time splice of the collector's lists; no collection runs
with it while serving. Frozen objects are still freed by reference counting; only reference
cycles among them would outlive their use, which is why per-connection objects avoid cycles.

Both figures are exported as histograms and as the largest value seen, so a benchmark can
read the worst pause from /metrics after a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger("pitchey.runtime")

# How often connection bursts are checked for new objects to freeze (see _freeze_bursts).
FREEZE_CHECK_INTERVAL = 0.1

_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
gc_pause = Histogram(
    "pitchey_gc_pause_seconds", "Garbage-collection pauses", ["generation"], buckets=_PAUSE_BUCKETS
)
gc_pause_max = Gauge(
    "pitchey_gc_pause_max_seconds", "Longest garbage-collection pause seen", ["generation"]
)
loop_lag = Histogram(
    "pitchey_event_loop_lag_seconds",
    "How late the event loop ran a timer (time the loop could not serve anyone)",
    buckets=_PAUSE_BUCKETS,
)
loop_lag_max = Gauge("pitchey_event_loop_lag_max_seconds", "Largest event-loop lag seen")
gc_frozen = Gauge(
    "pitchey_gc_frozen_objects", "Objects moved out of the collector's reach at start-up"
)
# Not a count of objects: gc.get_freeze_count() walks every frozen object, which at 10,000
# connections took more CPU than the freezes themselves (gc.freeze() is constant time).
gc_freezes = Counter("pitchey_gc_freezes_total", "Freezes after bursts of new connections")


class GcWatch:
    """Times every collection through `gc.callbacks` (start and stop run on the same thread)."""

    def __init__(self) -> None:
        self._started = 0.0
        self._max = [0.0, 0.0, 0.0]

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = int(info.get("generation", 2))
        gc_pause.labels(str(generation)).observe(pause)
        if pause > self._max[generation]:
            self._max[generation] = pause
            gc_pause_max.labels(str(generation)).set(pause)


class Runtime:
    """Started and stopped by `server.wiring`; one per process."""

    def __init__(
        self,
        *,
        connections: Callable[[], int],
        freeze: bool,
        gen0_threshold: int,
        freeze_after_connections: int,
        lag_interval: float = 0.1,
    ) -> None:
        self._connections = connections
        self._freeze = freeze
        self._gen0_threshold = gen0_threshold
        self._freeze_after = freeze_after_connections
        self._lag_interval = lag_interval
        self._watch = GcWatch()
        self._tasks: list[asyncio.Task[None]] = []
        self._frozen_at_connections = 0
        self._lag_max = 0.0

    def start(self) -> None:
        _, gen1, gen2 = gc.get_threshold()
        # Young collections are cheap but frequent; at 10,000 connections the default 700
        # allocations trigger one every few frames. A larger gen0 makes them rarer.
        gc.set_threshold(self._gen0_threshold, gen1, gen2)
        if self._freeze:
            # Everything built at start-up (modules, settings, pools, templates) lives as
            # long as the process: take it out of every future collection. This one full
            # collection runs before the first connection is served, so it is not timed.
            gc.collect()
            gc.freeze()
            gc_frozen.set(gc.get_freeze_count())
            self._tasks.append(asyncio.create_task(self._freeze_bursts(), name="gc-freeze"))
        self._watch.install()
        self._tasks.append(asyncio.create_task(self._measure_lag(), name="loop-lag"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._watch.uninstall()

    def _freeze_now(self) -> None:
        # No collection first: while serving, any collection over a burst's objects is the
        # very pause to avoid (a young one over 10,000 connections took 353 ms). The price:
        # reference cycles that became garbage in the last second are kept, which is why
        # per-connection objects avoid cycles.
        gc.freeze()
        gc_freezes.inc()

    async def _freeze_bursts(self) -> None:
        """Whenever enough connections arrived, freeze what they built: waiting for the burst
        to settle let a full collection walk all of it (765 ms at 10,000). Looked at ten times
        a second: looking once a second let a second's connections (about 1,000, some 50,000
        objects) pile up in the young generations, and a generation-1 collection walking
        them took 63 ms during a 10,000-connection burst."""
        while True:
            await asyncio.sleep(FREEZE_CHECK_INTERVAL)
            now = self._connections()
            if now - self._frozen_at_connections >= self._freeze_after:
                started = time.perf_counter()
                self._freeze_now()
                log.info(
                    "froze new objects at %d connections (%.2f ms)",
                    now,
                    (time.perf_counter() - started) * 1000,
                )
                self._frozen_at_connections = now
            elif now < self._frozen_at_connections:
                # Connections left: the next burst is measured from here.
                self._frozen_at_connections = now

    async def _measure_lag(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self._lag_interval
        while True:
            expected = loop.time() + interval
            await asyncio.sleep(interval)
            lag = max(0.0, loop.time() - expected)
            loop_lag.observe(lag)
            if lag > self._lag_max:
                self._lag_max = lag
                loop_lag_max.set(lag)
