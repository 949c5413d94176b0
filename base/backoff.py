"""How long to wait before retrying something that failed (a delivery to an endpoint)."""

from __future__ import annotations

import random


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry number `attempt` + 1: doubling from `base` up to `cap`, then a
    random point in its upper half, so endpoints coming back do not get every retry at one
    moment."""
    # The exponent is bounded so a large attempt count cannot overflow the float.
    delay = min(cap, base * 2.0 ** min(attempt - 1, 40))
    return delay / 2 + random.uniform(0, delay / 2)
