"""Rate limits as GCRA (generic cell rate algorithm): one timestamp per key, O(1).

"50 per minute" admits a burst of 50, then one every 1.2 s. The Redis
implementation (state.redis) shares the same arithmetic across processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> float:
        """Count one event; return 0 if allowed, else seconds until it would be."""
        ...


def gcra(tat: float | None, now: float, limit: int, window: float) -> tuple[float, float]:
    """Return (new theoretical arrival time, retry_after). retry_after 0 means allowed."""
    interval = window / limit
    start = now if tat is None or tat < now else tat
    new_tat = start + interval
    excess = new_tat - now - window
    if excess > 0:
        return (tat if tat is not None else now), excess
    return new_tat, 0.0


class MemoryRateLimiter:
    # Keys whose window has passed carry no information; prune them past this many.
    _PRUNE_AT = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tat: dict[str, float] = {}
        self._clock = clock

    async def hit(self, key: str, limit: int, window: float) -> float:
        if limit <= 0:
            return 0.0
        now = self._clock()
        new_tat, retry_after = gcra(self._tat.get(key), now, limit, window)
        if retry_after == 0:
            self._tat[key] = new_tat
            if len(self._tat) > self._PRUNE_AT:
                self._tat = {k: v for k, v in self._tat.items() if v > now}
        return retry_after
