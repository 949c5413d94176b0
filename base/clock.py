"""Time as the API shows it."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


@lru_cache(maxsize=256)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC. strftime is costly and messages of one second
    share their prefix, so the prefix is cached per second."""
    seconds, millis = divmod(ms, 1000)
    return f"{_second(seconds)}{millis:03d}Z"
