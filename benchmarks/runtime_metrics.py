"""Our server's GC pauses and event-loop lag, read from its /metrics text.

`server/runtime.py` exports both as histograms plus the largest value seen since start.
A step's own figures are the difference of two readings (one before, one after the step):
the histogram counts that arrived in between give the step's p99 lag and its longest pause
to the resolution of a bucket, and the maxima are exact whenever the step set a new
largest value for the process. Peers have no /metrics; they get no figures.
"""

from __future__ import annotations

import asyncio
import math
import sys

import msgspec

from benchmarks import http1

LAG = "pitchey_event_loop_lag_seconds"
GC = "pitchey_gc_pause_seconds"
SCRAPE_TIMEOUT_S = 10.0  # /metrics reads two queue depths from the database


class Histogram(msgspec.Struct):
    """Cumulative bucket counts by upper bound (seconds), as Prometheus writes them."""

    buckets: dict[float, float] = msgspec.field(default_factory=dict)
    count: float = 0.0


class Reading(msgspec.Struct):
    lag: Histogram
    lag_max_s: float
    gc: dict[str, Histogram]  # by generation "0", "1", "2"
    gc_max_s: dict[str, float]


class StepRuntime(msgspec.Struct, frozen=True):
    """What one step did to the server's event loop and collector.

    `*_exact` says whether the maximum is the measured value (the step set the process's
    new largest) or the upper bound of the highest histogram bucket the step reached."""

    loop_lag_p99_ms: float | None  # upper bound of the bucket holding the step's p99
    loop_lag_max_ms: float | None
    loop_lag_max_exact: bool
    gc_pause_max_ms: float | None
    gc_pause_max_exact: bool
    gc_collections: int
    gc_full_collections: int


def _labels(name: str) -> dict[str, str]:
    inside = name[name.index("{") + 1 : name.rindex("}")] if "{" in name else ""
    pairs = (item.split("=", 1) for item in inside.split(",") if "=" in item)
    return {key: value.strip('"') for key, value in pairs}


def _bound(text: str) -> float:
    return math.inf if text == "+Inf" else float(text)


def parse(text: str) -> Reading | None:
    """The runtime figures of one /metrics text; None when it has none (not our server)."""
    reading = Reading(lag=Histogram(), lag_max_s=0.0, gc={}, gc_max_s={})
    found = False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, raw = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if not base.startswith(("pitchey_event_loop_lag", "pitchey_gc_pause")):
            continue  # anything else, including a peer's 404 page, is not ours to read
        try:
            value = float(raw)
        except ValueError:
            continue
        labels = _labels(name)
        if base == f"{LAG}_bucket":
            reading.lag.buckets[_bound(labels["le"])] = value
        elif base == f"{LAG}_count":
            reading.lag.count = value
        elif base == "pitchey_event_loop_lag_max_seconds":
            reading.lag_max_s = value
            found = True
        elif base == f"{GC}_bucket":
            hist = reading.gc.setdefault(labels["generation"], Histogram())
            hist.buckets[_bound(labels["le"])] = value
        elif base == f"{GC}_count":
            reading.gc.setdefault(labels["generation"], Histogram()).count = value
        elif base == "pitchey_gc_pause_max_seconds":
            reading.gc_max_s[labels["generation"]] = value
    return reading if found else None


def _delta(after: Histogram, before: Histogram | None) -> dict[float, float]:
    old = before.buckets if before else {}
    return {bound: count - old.get(bound, 0.0) for bound, count in sorted(after.buckets.items())}


def _quantile_bound(cumulative: dict[float, float], q: float) -> float | None:
    total = max(cumulative.values(), default=0.0)
    if total <= 0:
        return None
    for bound, count in cumulative.items():
        if count >= q * total:
            return bound
    return None


def _top_bound(cumulative: dict[float, float]) -> float | None:
    """The upper bound of the highest bucket that gained an observation."""
    top, below = None, 0.0
    for bound, count in cumulative.items():
        if count > below:
            top = bound
        below = count
    return top


def _ms(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    return None if math.isinf(seconds) else round(seconds * 1000, 2)


def _max(
    after_max: float, before_max: float, cumulative: dict[float, float]
) -> tuple[float | None, bool]:
    if after_max > before_max:
        return after_max, True
    return _top_bound(cumulative), False


def between(before: Reading, after: Reading) -> StepRuntime:
    lag = _delta(after.lag, before.lag)
    lag_max, lag_exact = _max(after.lag_max_s, before.lag_max_s, lag)
    gc_max: float | None = None
    gc_exact = False
    collections = 0.0
    full = 0.0
    for generation, hist in after.gc.items():
        previous = before.gc.get(generation)
        made = hist.count - (previous.count if previous else 0.0)
        collections += made
        if generation == "2":
            full = made
        cumulative = _delta(hist, previous)
        value, exact = _max(
            after.gc_max_s.get(generation, 0.0), before.gc_max_s.get(generation, 0.0), cumulative
        )
        if value is not None and (gc_max is None or value > gc_max):
            gc_max, gc_exact = value, exact
    return StepRuntime(
        loop_lag_p99_ms=_ms(_quantile_bound(lag, 0.99)),
        loop_lag_max_ms=_ms(lag_max),
        loop_lag_max_exact=lag_exact,
        gc_pause_max_ms=_ms(gc_max),
        gc_pause_max_exact=gc_exact,
        gc_collections=round(collections),
        gc_full_collections=round(full),
    )


def combine(figures: list[StepRuntime]) -> StepRuntime | None:
    """Several processes (scale-out): the worst of each figure, collections summed."""
    if not figures:
        return None

    def worst(values: list[tuple[float | None, bool]]) -> tuple[float | None, bool]:
        known = [(v, e) for v, e in values if v is not None]
        return max(known, key=lambda item: item[0]) if known else (None, False)

    lag_max, lag_exact = worst([(f.loop_lag_max_ms, f.loop_lag_max_exact) for f in figures])
    gc_max, gc_exact = worst([(f.gc_pause_max_ms, f.gc_pause_max_exact) for f in figures])
    p99s = [f.loop_lag_p99_ms for f in figures if f.loop_lag_p99_ms is not None]
    return StepRuntime(
        loop_lag_p99_ms=max(p99s) if p99s else None,
        loop_lag_max_ms=lag_max,
        loop_lag_max_exact=lag_exact,
        gc_pause_max_ms=gc_max,
        gc_pause_max_exact=gc_exact,
        gc_collections=sum(f.gc_collections for f in figures),
        gc_full_collections=sum(f.gc_full_collections for f in figures),
    )


class Scraper:
    """Reads each server process's /metrics (the load generator's side), on a fresh
    connection every time: steps outlast the server's keep-alive timeout (5 s)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports

    async def read(self) -> list[Reading | None]:
        return [await self._one(port) for port in self.ports]

    async def _one(self, port: int) -> Reading | None:
        connection = http1.Connection(port)
        try:
            status, body = await asyncio.wait_for(
                connection.request("GET", "/metrics"), SCRAPE_TIMEOUT_S
            )
        except (OSError, TimeoutError, http1.HttpError, asyncio.IncompleteReadError) as exc:
            # A step without figures, not a failed run: the figures are secondary.
            print(f"/metrics on port {port}: {exc!r}", file=sys.stderr)
            return None
        finally:
            connection.close()
        return parse(body.decode()) if status == 200 else None


def step_figures(before: list[Reading | None], after: list[Reading | None]) -> StepRuntime | None:
    pairs = [between(b, a) for b, a in zip(before, after, strict=True) if b and a]
    return combine(pairs)
