"""Time as the API shows it."""

from __future__ import annotations

from datetime import UTC, datetime

_SECONDS_KEPT = 4096
_seconds: dict[int, str] = {}
_MILLIS = tuple(f".{millis:03d}Z" for millis in range(1000))


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC. strftime is costly and messages of one second
    share their prefix, so the prefix is kept per second; a history page formats a
    hundred of these, so the lookup is a plain dict (lru_cache's wrapper costs more than
    the lookup) and the milliseconds a table."""
    seconds = ms // 1000
    prefix = _seconds.get(seconds)
    if prefix is None:
        if len(_seconds) >= _SECONDS_KEPT:
            _seconds.clear()
        prefix = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _seconds[seconds] = prefix
    return prefix + _MILLIS[ms % 1000]
