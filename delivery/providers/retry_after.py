"""Reading how long a provider asks us to wait from its response headers."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait, from Retry-After (seconds or HTTP date) or X-RateLimit-Reset (epoch).

    ``headers`` must be case-insensitive (httpx.Headers is).
    """
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - now)
    reset = headers.get("x-ratelimit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - now)
    return None
