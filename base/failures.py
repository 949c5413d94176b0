"""A failure that repeats (a dependency down) is logged as a story, not as a flood.

Once when it starts, then one line per interval with how many times it happened
meanwhile, and once when it ends, with how long it lasted. During a Redis or database
outage a busy node otherwise logs hundreds of identical lines a second. The log is a story;
the metric `pitchey_repeated_failures_total{failure}` counts every occurrence.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter

# Labelled by what failed: each RepeatedFailure is created once, with a fixed text, so the
# label set is small and known at start.
occurrences = Counter(
    "pitchey_repeated_failures_total",
    "Occurrences of a repeated failure (a dependency down), logged or not",
    ["failure"],
)


class RepeatedFailure:
    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        interval: float = 10.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._what = what
        self._interval = interval
        self._level = level
        self._clock = clock
        self._occurrences = occurrences.labels(what)
        self._started: float | None = None
        self._reported = 0.0
        self._unreported = 0
        self.count = 0  # occurrences of the current run, logged or not

    def failed(self, detail: object) -> None:
        now = self._clock()
        self._occurrences.inc()
        self.count += 1
        if self._started is None:
            self._started = self._reported = now
            self._unreported = 0
            self.count = 1
            self._log.log(self._level, "%s: %s", self._what, detail)
            return
        self._unreported += 1
        if now - self._reported >= self._interval:
            self._log.log(
                self._level,
                "%s: %d more times in %.0f s (latest: %s)",
                self._what,
                self._unreported,
                now - self._reported,
                detail,
            )
            self._reported = now
            self._unreported = 0

    def succeeded(self) -> None:
        if self._started is None:
            return
        self._log.warning(
            "%s: recovered after %.1f s and %d failures",
            self._what,
            self._clock() - self._started,
            self.count,
        )
        self._started = None
        self.count = 0


class LoopFailures:
    """What a background loop's `on_failure` does with a failed tick: an error of the
    `outage` kind (a dependency away) is one RepeatedFailure story, "<loop>: <kind>: <detail>",
    not a line or a traceback per tick; anything else is a bug and is logged with its
    traceback. The loop calls `succeeded` once the dependency answers again."""

    def __init__(self, log: logging.Logger, loop: str, outage: type[Exception]) -> None:
        self._log = log
        self._loop = loop
        self._outage = outage
        self._story = RepeatedFailure(log, f"{loop}: {outage.__name__}")

    def __call__(self, exc: Exception) -> None:
        if isinstance(exc, self._outage):
            self._story.failed(exc)
        else:
            self._log.exception("%s failed; the next tick retries", self._loop)

    def succeeded(self) -> None:
        self._story.succeeded()
