"""What the harness asks of the load generator, and what it answers (JSON over stdin/stdout)."""

from __future__ import annotations

from typing import Literal

import msgspec

from benchmarks.runtime_metrics import StepRuntime

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
    mode: Literal["fanout", "idle", "chat"]
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
    p99_limit_ms: float = P99_LIMIT_MS  # chat passes under 50 ms
    settle_seconds: float = 2.0  # idle: wait before reading RSS so allocations land
    # Scale-out: subscriber i connects to ([port] + extra_ports)[i % n]; the CPU of every
    # server process (server_pid and extra_pids) is summed.
    extra_ports: list[int] = msgspec.field(default_factory=list)
    extra_pids: list[int] = msgspec.field(default_factory=list)


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
    # Issue 14: the tail beyond p99 (with fewer than 1,000 deliveries, close to max_ms).
    p999_ms: float | None = None
    # Ours only: loop lag and GC pauses during the step, from /metrics before and after it.
    runtime: StepRuntime | None = None


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


class RecoverySpec(msgspec.Struct, frozen=True):
    """Scenario 4: subscribers of one conversation drop and resubscribe with `since` at once."""

    port: int
    server_pid: int
    conversation: str
    subscriber_tokens: list[str]
    publisher_token: str
    rate_per_s: float  # publishes per second, steady, before, during and after the storm
    storm_after_s: float  # publishing time before every subscriber disconnects
    publish_after_s: float  # publishing time after the storm began
    drain_seconds: float = 15.0  # after the last publish, how long clients may take to catch up
    reconnect_concurrency: int = 200  # handshakes in flight during the storm
    page_limit: int = 100  # REST page size when the server answers recovered: false


class RecoveryResult(msgspec.Struct, frozen=True):
    connect: Connect
    published: int
    final_seq: int
    reconnect_s: float  # disconnect of all -> every client subscribed again
    caught_up_s: float | None  # disconnect -> every client holds every seq up to its subscribed.seq
    complete_s: float | None  # last publish -> every client holds 1..final_seq
    recovered_ws: int  # subscribed.recovered true: the server replayed the gap on the socket
    recovered_rest: int  # recovered false: the client paged GET /api/messages/{id}?after=
    rest_pages: int
    replayed: int  # sum of subscribed.replayed
    lost: int  # sum over clients of seqs in 1..final_seq they never got
    duplicated: int  # seqs a client got twice on its sockets (REST overlap is not counted)
    rest_overlap: int  # seqs a REST page returned that the socket had also delivered
    clients_complete: int
    reconnect_failed: int
    errors: int  # error frames on the sockets plus REST pages that did not answer 200
    other_cpu_share: float
    passed: bool


class RestSpec(msgspec.Struct, frozen=True):
    port: int
    server_pid: int
    token: str | None  # bearer token (ours); None for the bare Starlette endpoint
    conversations: list[str]  # client k reads conversations[0] and sends to conversations[k % n]
    concurrency: int
    seconds: float
    warmup_seconds: float = 1.0
    message_size: int = 100


class RestPhase(msgspec.Struct, frozen=True):
    op: str  # "history" (GET ?limit=50) or "send" (POST /api/messages/send)
    requests: int
    errors: int
    error_sample: str | None
    per_s: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    server_cpu_us_per_request: float | None
    loadgen_cpu_share: float
    other_cpu_share: float


class RestResult(msgspec.Struct, frozen=True):
    phases: list[RestPhase]


class SoakSpec(msgspec.Struct, frozen=True):
    """Scenario soak (issue 13): steady chat traffic for a long time, figures per window."""

    port: int
    server_pid: int
    conversations: list[str]  # tokens[2k] and tokens[2k + 1] are the sides of conversations[k]
    tokens: list[str]
    rate_per_s: float  # sent (= persisted) messages per second, open loop
    duration_s: float
    window_s: float = 30.0
    warmup_s: float = 5.0  # sent at the same rate before the first window, not recorded
    drain_seconds: float = 5.0  # after the last send, how long late deliveries still count
    message_size: int = 100
    connect_concurrency: int = 100


class SoakWindow(msgspec.Struct, frozen=True):
    index: int
    start_s: float  # since the first send
    seconds: float
    sent: int
    delivered: int  # frames timed in this window (each message reaches both sides)
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    runtime: StepRuntime | None  # loop lag and GC pauses during the window, from /metrics
    server_rss_kb: int  # at the window's end
    wal_kb: int | None  # the SQLite WAL file at the window's end; None on PostgreSQL
    server_cpu_share: float
    loadgen_cpu_share: float
    other_cpu_share: float
    error_frames: int


class SoakResult(msgspec.Struct, frozen=True):
    connect: Connect
    rate_per_s: float
    duration_s: float
    windows: list[SoakWindow]
    sent: int
    delivered: int
    lost: int  # sent x 2 - delivered, after the drain
    error_frames: int
    error_sample: str | None
    p99_growth: float | None  # last window's p99 / first window's
    flat: bool  # p99_trend <= FLAT_P99_GROWTH
    # Median p99 of the last third of the windows / of the first third: what `flat` reads
    # (one noisy window, the last one holding the drain, moves p99_growth by itself).
    p99_trend: float | None = None


class NotifySpec(msgspec.Struct, frozen=True):
    """Scenario notify (issue 17): one marketplace alert to every user."""

    port: int
    server_pid: int
    standin_port: int  # the SendGrid stand-in our server sends to
    service_token: str
    user_ids: list[str]
    user_tokens: list[str]  # user_tokens[i] is user_ids[i]'s
    online: int  # users 0..online-1 hold a WebSocket while the alert goes out
    per_request: int  # user ids per POST /api/notifications/marketplace (its schema's bound)
    setup_concurrency: int = 32
    push_deadline_s: float = 60.0
    email_deadline_s: float = 900.0


class NotifyResult(msgspec.Struct, frozen=True):
    users: int
    online: int
    requests: int
    setup_s: float  # directory addresses and instant-email preferences of every user
    connect: Connect
    stored_s: float  # first POST sent -> last 202 (202 = every notification committed)
    pushes: int  # online users that got the notification frame
    push_p50_ms: float | None  # first POST sent -> the frame at the user's socket
    push_p99_ms: float | None
    push_max_ms: float | None
    emails: int  # distinct recipients the stand-in holds
    emails_first_s: float | None  # first POST -> first email at the stand-in
    emails_last_s: float | None  # first POST -> last email at the stand-in
    emails_per_s: float | None  # emails / emails_last_s
    runtime: StepRuntime | None  # loop lag and GC pauses from the first POST to the last push
    errors: int
    error_sample: str | None


def p99_trend(p99s: list[float | None]) -> float | None:
    """Median p99 of the last third of the windows over that of the first third: a trend
    that one window (a neighbour's burst on the host, the drain in the last) cannot make."""
    values = [p for p in p99s if p]
    third = len(values) // 3
    if third == 0:
        return None
    first, last = sorted(values[:third]), sorted(values[-third:])
    return round(last[third // 2] / first[third // 2], 2)
