"""What the harness asks of the load generator, and what it answers (JSON over stdin/stdout)."""

from __future__ import annotations

from typing import Literal

import msgspec

P99_LIMIT_MS = 100.0  # a step passes only if p99 latency stays under this (and nothing is lost)
# Other processes used this share of a core while measuring: the two cores were not ours alone.
DISTURBED_OTHER_CPU = 0.1


class Ladder(msgspec.Struct, frozen=True):
    """Offered delivered-messages-per-second steps: double from `start` until a step fails,
    then bisect between the best pass and the first failure `refine` times."""

    start: int = 1_000
    ceiling: int = 512_000
    refine: int = 3
    step_seconds: float = 5.0
    drain_seconds: float = 2.0  # after the last send, how long late deliveries still count


class LoadSpec(msgspec.Struct, frozen=True):
    mode: Literal["fanout", "idle"]
    port: int
    dialect: str
    server_pid: int
    subscribers: int
    rooms: list[str | int]  # subscriber i joins rooms[i // room_size]
    room_size: int
    subscriber_tokens: list[str] | None = None
    publisher_token: str | None = None
    message_size: int = 100
    ladder: Ladder = Ladder()
    connect_concurrency: int = 100
    settle_seconds: float = 2.0  # idle: wait before reading RSS so allocations land


class Step(msgspec.Struct, frozen=True):
    offered_per_s: int
    published: int
    expected: int
    delivered: int
    lost: int
    min_per_subscriber: int
    delivered_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    server_cpu_us_per_frame: float | None
    loadgen_cpu_share: float  # CPU seconds used by the load generator / wall seconds
    error_frames: int  # error frames the server sent during the step (ours only)
    # CPU seconds of every *other* process on the machine / wall seconds: above ~0.1 the step
    # shared its cores with something else and its figures are disturbed.
    other_cpu_share: float
    passed: bool


class Connect(msgspec.Struct, frozen=True):
    connected: int
    failed: int
    seconds: float
    per_s: float


class FanoutResult(msgspec.Struct, frozen=True):
    connect: Connect
    steps: list[Step]
    best_clean_per_s: float  # delivered msgs/s of the fastest passing step, 0 if none
    best_step: Step | None
    error_sample: str | None  # the first error frame of the run, verbatim


class IdleResult(msgspec.Struct, frozen=True):
    connect: Connect
    rss_before_kb: int
    rss_after_kb: int
    rss_per_connection_kb: float
    other_cpu_share: float  # as in Step, while connecting
