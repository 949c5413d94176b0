"""The benchmark message content: a step number and a send timestamp, padded to a size.

Format: ``bench:<step:04d>:<ns:019d>:xxxx...``. The timestamp is the *scheduled* send time on
the load generator's monotonic clock, so a publisher that falls behind its schedule shows up
as latency instead of hiding it (no coordinated omission). Sender and receivers share one
process, hence one clock. Every dialect carries the content verbatim inside a JSON string,
so receivers find it by a substring search instead of decoding the envelope.
"""

from __future__ import annotations

TS_DIGITS = 19


def step_marker(step: int) -> bytes:
    """The bytes that open the content of every message of this step."""
    return f"bench:{step:04d}:".encode()


def make_content(step: int, scheduled_ns: int, size: int) -> str:
    head = f"bench:{step:04d}:{scheduled_ns:0{TS_DIGITS}d}:"
    return head + "x" * max(0, size - len(head))
