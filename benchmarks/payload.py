"""The benchmark message content: a step number and a send timestamp, padded to a size.

Format: ``bench:<step:04d>:<ns:019d>:xxxx...``. The timestamp is the *scheduled* send time on
the load generator's monotonic clock, so a publisher that falls behind its schedule shows up
as latency instead of hiding it (no coordinated omission). Sender and receivers share one
process, hence one clock.
"""

from __future__ import annotations

MARKER = b"bench:"
_STEP_AT = len(MARKER)
_TS_AT = _STEP_AT + 5
_TS_END = _TS_AT + 19


def make_content(step: int, scheduled_ns: int, size: int) -> str:
    head = f"bench:{step:04d}:{scheduled_ns:019d}:"
    return head + "x" * max(0, size - len(head))


def parse(payload: bytes) -> tuple[int, int] | None:
    """Return (step, scheduled_ns) when the frame carries benchmark content."""
    at = payload.find(MARKER)
    if at < 0:
        return None
    return int(payload[at + _STEP_AT : at + _STEP_AT + 4]), int(payload[at + _TS_AT : at + _TS_END])
