"""The load generator: one process, picows clients, reads a LoadSpec on stdin, writes JSON.

Run by the harness as ``taskset -c 1 python -m benchmarks.loadgen`` so that it owns the other
core. Subscribers are bare picows listeners (no task per connection). The publisher is
open-loop: message i of a step is due at t0 + i/rate and carries that scheduled time, so
latency is measured from when a message *should* have left to when each subscriber got it.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Awaitable, Callable

import msgspec
import numpy as np
import psutil
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from benchmarks import payload
from benchmarks.dialects import ENGINEIO_PONG, SOCKETIO_CONNECT, Dialect, Reply, Room
from benchmarks.runtime_metrics import Scraper, step_figures
from benchmarks.spec import (
    Connect,
    FanoutResult,
    IdleResult,
    LoadSpec,
    Step,
)

JOIN_DEADLINE_S = 300.0  # joins can be slow where each join is announced to the room; stops a hang
POLL_S = 0.01
PAUSE_AFTER_PASS_S = 1.0
WARMUP_S = 2.0  # an unrecorded first step: first-use costs (imports, caches, JIT) are not load
# p99 over fewer fan-outs than this is one slow publish; low rates run longer to reach it.
MIN_PUBLISHES = 10
CHAT_COPIES = 2  # our server delivers a message to both participants, its sender included
PAUSE_AFTER_FAIL_S = 3.0  # an overloaded server may still be flushing buffers or collecting


class Run:
    """State shared by every listener of this process."""

    def __init__(self, dialect: Dialect, scraper: Scraper | None = None) -> None:
        self.dialect = dialect
        self.scraper = scraper  # ours: /metrics read before and after every step
        self.marker = b"\x00"  # matches nothing until a step starts
        self.delivered = 0
        self.latencies_ns: list[int] = []
        self.joined = 0
        self.errors = 0
        self.error_sample: str | None = None


class Client(WSListener):
    def __init__(self, run: Run, room: Room, counted: bool) -> None:
        self.run = run
        self.room = room
        self.counted = counted
        self.received = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        if self.run.dialect.joins_on_open:
            self.join(transport)

    def join(self, transport: WSTransport) -> None:
        for frame in self.run.dialect.join_frames(self.room):
            transport.send(WSMsgType.TEXT, frame.encode())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        # The hot path of the whole benchmark: one find, one int() per delivered message.
        if frame.msg_type != WSMsgType.TEXT:
            return
        data = frame.get_payload_as_bytes()
        run = self.run
        at = data.find(run.marker)
        if at >= 0:
            if self.counted:
                self.received += 1
                run.delivered += 1
                at += len(run.marker)
                sent = int(data[at : at + payload.TS_DIGITS])
                run.latencies_ns.append(time.monotonic_ns() - sent)
            return
        # Control frames; a straggler from an earlier step lands here and means nothing.
        match run.dialect.classify(data):
            case Reply.JOINED:
                run.joined += 1
            case Reply.PING:
                transport.send(WSMsgType.TEXT, ENGINEIO_PONG.encode())
            case Reply.OPENED:
                transport.send(WSMsgType.TEXT, SOCKETIO_CONNECT.encode())
            case Reply.CONNECTED:
                self.join(transport)
            case Reply.ERROR:
                run.errors += 1
                run.error_sample = run.error_sample or data.decode(errors="replace")[:300]
            case Reply.NONE:
                pass


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_rss_kb(pid: int) -> int:
    proc = psutil.Process(pid)
    return int(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])) // 1024


def server_cpu_s(*pids: int) -> float:
    """User + system CPU seconds of the server processes and their children."""
    total = 0.0
    for pid in pids:
        proc = psutil.Process(pid)
        total += sum(sum(p.cpu_times()[:2]) for p in [proc, *proc.children(recursive=True)])
    return total


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores, all processes)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


async def wait_until(cond: Callable[[], bool], deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(POLL_S)
    return True


async def open_clients(
    spec: LoadSpec, run: Run
) -> tuple[list[tuple[WSTransport, Client]], Connect]:
    """Connect every subscriber (bounded concurrency) and wait until each has joined."""
    sem = asyncio.Semaphore(spec.connect_concurrency)
    tokens = spec.subscriber_tokens
    ports = [spec.port, *spec.extra_ports]

    async def one(i: int) -> tuple[WSTransport, Client] | None:
        port = ports[i % len(ports)]
        url = f"ws://127.0.0.1:{port}" + run.dialect.path(tokens[i] if tokens else None)
        room = spec.rooms[i // spec.room_size]
        client = Client(run, room, counted=True)
        async with sem:
            try:
                transport, _ = await ws_connect(
                    lambda: client,
                    url,
                    websocket_handshake_timeout=30,
                    read_buffer_init_size=4096,
                )
            except Exception as exc:  # any failure is counted as a failed connection
                print(f"connect {i} failed: {exc!r}", file=sys.stderr)
                return None
        return transport, client

    started = time.monotonic()
    opened = [c for c in await asyncio.gather(*(one(i) for i in range(spec.subscribers))) if c]
    await wait_until(lambda: run.joined >= len(opened), JOIN_DEADLINE_S)
    seconds = time.monotonic() - started
    failed = spec.subscribers - min(len(opened), run.joined)
    connect = Connect(
        connected=spec.subscribers - failed,
        failed=failed,
        seconds=round(seconds, 3),
        per_s=round((spec.subscribers - failed) / seconds, 1),
    )
    return opened, connect


async def run_step(
    spec: LoadSpec,
    run: Run,
    subscribers: list[Client],
    publishers: list[WSTransport],
    step: int,
    offered: int,
    seconds: float,
) -> Step:
    """Fan-out: publish i goes to rooms[i % rooms], sent by that room's own publisher;
    `offered` counts deliveries (publishes x members of the room)."""
    members = room_members(spec)
    rate = offered * len(members) / len(subscribers)  # publishes per second, over all rooms
    total = max(MIN_PUBLISHES, round(rate * seconds))

    def send(i: int, content: str) -> None:
        k = i % len(publishers)
        frame = run.dialect.publish_frame(spec.rooms[k], content, f"{step}-{i}")
        publishers[k].send(WSMsgType.TEXT, frame.encode())

    expected = sum(members[i % len(members)] for i in range(total))
    return await measure_step(spec, run, subscribers, step, offered, total, rate, send, expected)


def room_members(spec: LoadSpec) -> list[int]:
    """How many subscribers each room holds (subscriber i is in rooms[i // room_size])."""
    counts = [0] * len(spec.rooms)
    for i in range(spec.subscribers):
        counts[i // spec.room_size] += 1
    return counts


async def run_chat_step(
    spec: LoadSpec,
    run: Run,
    clients: list[tuple[WSTransport, Client]],
    step: int,
    offered: int,
    seconds: float,
) -> Step:
    """Chat: message i is sent by client i % n into its own two-person conversation;
    `offered` counts sent (persisted) messages, each expected at both participants."""
    total = max(MIN_PUBLISHES, round(offered * seconds))
    n = len(clients)

    def send(i: int, content: str) -> None:
        transport, client = clients[i % n]
        frame = run.dialect.publish_frame(client.room, content, f"{step}-{i}")
        transport.send(WSMsgType.TEXT, frame.encode())

    counted = [client for _, client in clients]
    step_result = await measure_step(
        spec, run, counted, step, offered, total, offered, send, total * CHAT_COPIES
    )
    # Report persisted messages per second: deliveries over the copies each one makes.
    return msgspec.structs.replace(
        step_result, delivered_per_s=round(step_result.delivered_per_s / CHAT_COPIES, 1)
    )


async def measure_step(
    spec: LoadSpec,
    run: Run,
    counted: list[Client],
    step: int,
    offered: int,
    total: int,
    rate: float,
    send: Callable[[int, str], None],
    expected: int,
) -> Step:
    """Send `total` messages open-loop at `rate`/s, then wait for `expected` deliveries."""
    interval_ns = round(1e9 / rate)
    for client in counted:
        client.received = 0
    run.delivered = 0
    run.errors = 0
    run.latencies_ns = []
    run.marker = payload.step_marker(step)
    pids = (spec.server_pid, *spec.extra_pids)
    # Read outside the CPU window: the scrape costs the server a little CPU of its own.
    metrics0 = await run.scraper.read() if run.scraper else []
    cpu0, own0, all0 = server_cpu_s(*pids), time.process_time(), machine_busy_s()
    t0 = time.monotonic_ns() + 1_000_000
    for i in range(total):
        due = t0 + i * interval_ns
        ahead = due - time.monotonic_ns()
        if ahead > 0:
            await asyncio.sleep(ahead / 1e9)
        send(i, payload.make_content(step, due, spec.message_size))
    await wait_until(lambda: run.delivered >= expected, spec.ladder.drain_seconds)
    wall_s = (time.monotonic_ns() - t0) / 1e9
    cpu1, own1, all1 = server_cpu_s(*pids), time.process_time(), machine_busy_s()
    run.marker = b"\x00"
    metrics1 = await run.scraper.read() if run.scraper else []
    lat = np.array(run.latencies_ns, dtype=np.int64) / 1e6
    p50, p99, p999, top = (
        (*(float(v) for v in np.percentile(lat, [50, 99, 99.9])), float(lat.max()))
        if lat.size
        else (None, None, None, None)
    )
    lost = expected - run.delivered
    send_s = max(total * interval_ns / 1e9, 1e-9)
    return Step(
        offered_per_s=offered,
        published=total,
        expected=expected,
        delivered=run.delivered,
        lost=lost,
        min_per_subscriber=min(c.received for c in counted),
        delivered_per_s=round(run.delivered / send_s, 1),
        p50_ms=_round(p50),
        p99_ms=_round(p99),
        max_ms=_round(top),
        server_cpu_us_per_frame=(
            round((cpu1 - cpu0) * 1e6 / run.delivered, 2) if run.delivered else None
        ),
        loadgen_cpu_share=round((own1 - own0) / wall_s, 3),
        error_frames=run.errors,
        other_cpu_share=round(max(0.0, (all1 - all0) - (cpu1 - cpu0) - (own1 - own0)) / wall_s, 3),
        passed=lost == 0 and p99 is not None and p99 < spec.p99_limit_ms,
        p999_ms=_round(p999),
        runtime=step_figures(metrics0, metrics1),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def next_rate(best: int, worst: int | None, ceiling: int) -> int | None:
    """Double while passing; once a step failed, bisect between best pass and first fail."""
    if worst is None:
        return best * 2 if best * 2 <= ceiling else None
    middle = (best + worst) // 2
    return middle if middle not in (best, worst) else None


StepFn = Callable[[int, int, float], Awaitable[Step]]  # (step number, offered, seconds)


async def climb(spec: LoadSpec, run: Run, step_fn: StepFn) -> FanoutResult:
    """Warm up, then double the offered rate while steps pass and bisect after a failure."""
    await step_fn(0, spec.ladder.start, WARMUP_S)
    await asyncio.sleep(PAUSE_AFTER_PASS_S)
    steps: list[Step] = []
    best: Step | None = None
    worst: int | None = None
    offered: int | None = spec.ladder.start
    refinements = 0
    while offered is not None and len(steps) < 32:
        step = await step_fn(len(steps) + 1, offered, spec.ladder.step_seconds)
        steps.append(step)
        print(_describe(step), file=sys.stderr)
        if step.passed:
            best = step if best is None or step.delivered_per_s > best.delivered_per_s else best
        else:
            worst = offered if worst is None else min(worst, offered)
            if best is None:
                break
        if worst is not None and refinements >= spec.ladder.refine:
            break
        if worst is not None:
            refinements += 1
        offered = next_rate(best.offered_per_s if best else 0, worst, spec.ladder.ceiling)
        # Let the server drain and collect garbage between steps, longer after an overload.
        await asyncio.sleep(PAUSE_AFTER_PASS_S if step.passed else PAUSE_AFTER_FAIL_S)
    return FanoutResult(
        connect=Connect(connected=0, failed=0, seconds=0.0, per_s=0.0),
        steps=steps,
        best_clean_per_s=best.delivered_per_s if best else 0.0,
        best_step=best,
        error_sample=run.error_sample,
    )


async def connect_publisher(run: Run, url: str, room: Room) -> WSTransport:
    joined_before = run.joined
    publisher, _ = await ws_connect(lambda: Client(run, room, counted=False), url)
    await wait_until(lambda: run.joined > joined_before, JOIN_DEADLINE_S)
    return publisher


async def fanout(spec: LoadSpec, run: Run) -> FanoutResult:
    opened, connect = await open_clients(spec, run)
    subscribers = [client for _, client in opened]
    url = f"ws://127.0.0.1:{spec.port}" + run.dialect.path(spec.publisher_token)
    # One publisher per room, each a member of its room only (ours requires membership to
    # send; every subscriber's socket carries one room's traffic, as with a single room).
    publishers = [await connect_publisher(run, url, room) for room in spec.rooms]

    async def step_fn(step: int, offered: int, seconds: float) -> Step:
        return await run_step(spec, run, subscribers, publishers, step, offered, seconds)

    result = await climb(spec, run, step_fn)
    for transport in [*(t for t, _ in opened), *publishers]:
        transport.disconnect()
    return msgspec.structs.replace(result, connect=connect)


async def chat(spec: LoadSpec, run: Run) -> FanoutResult:
    """Scenario 2: every client both sends into and receives from its conversation."""
    opened, connect = await open_clients(spec, run)

    async def step_fn(step: int, offered: int, seconds: float) -> Step:
        return await run_chat_step(spec, run, opened, step, offered, seconds)

    result = await climb(spec, run, step_fn)
    for transport, _ in opened:
        transport.disconnect()
    return msgspec.structs.replace(result, connect=connect)


def _runtime(step: Step) -> str:
    figures = step.runtime
    if figures is None:
        return ""
    return (
        f" loop lag p99<={figures.loop_lag_p99_ms} max {figures.loop_lag_max_ms} "
        f"gc max {figures.gc_pause_max_ms} ms ({figures.gc_full_collections} full)"
    )


def _describe(step: Step) -> str:
    verdict = "pass" if step.passed else "FAIL"
    return (
        f"  offered {step.offered_per_s:>7}/s delivered {step.delivered_per_s:>9.0f}/s "
        f"lost {step.lost:>6} errors {step.error_frames} p50 {step.p50_ms} p99 {step.p99_ms} "
        f"p999 {step.p999_ms} max {step.max_ms} ms{_runtime(step)} "
        f"loadgen cpu {step.loadgen_cpu_share:.2f} other cpu {step.other_cpu_share:.2f} {verdict}"
    )


async def idle(spec: LoadSpec, run: Run) -> IdleResult:
    before = server_rss_kb(spec.server_pid)
    cpu0, own0, all0, t0 = (
        server_cpu_s(spec.server_pid),
        time.process_time(),
        machine_busy_s(),
        time.monotonic(),
    )
    opened, connect = await open_clients(spec, run)
    cpu1, own1, all1 = server_cpu_s(spec.server_pid), time.process_time(), machine_busy_s()
    other = max(0.0, (all1 - all0) - (cpu1 - cpu0) - (own1 - own0)) / (time.monotonic() - t0)
    await asyncio.sleep(spec.settle_seconds)
    after = server_rss_kb(spec.server_pid)
    for transport, _ in opened:
        transport.disconnect()
    return IdleResult(
        connect=connect,
        rss_before_kb=before,
        rss_after_kb=after,
        rss_per_connection_kb=round((after - before) / max(connect.connected, 1), 2),
        other_cpu_share=round(other, 3),
    )


async def main_async(spec: LoadSpec) -> FanoutResult | IdleResult:
    dialect = Dialect(spec.dialect)
    ports = [spec.port, *spec.extra_ports]
    run = Run(dialect, Scraper(ports) if dialect.name == "pitchey" else None)
    if spec.mode == "chat":
        return await chat(spec, run)
    return await (fanout(spec, run) if spec.mode == "fanout" else idle(spec, run))


def main() -> None:
    raise_fd_limit()
    spec = msgspec.json.decode(sys.stdin.buffer.read(), type=LoadSpec)
    result = uvloop.run(main_async(spec))
    sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")


if __name__ == "__main__":
    main()
