"""The soak's load generator: steady open-loop chat traffic, figures per window.

Run by the soak scenario as ``taskset -c 1 python -m benchmarks.loadgen_soak`` with a
SoakSpec on stdin; writes a SoakResult on stdout. Clients 2k and 2k + 1 are the two sides of
conversation k; message i is due at t0 + i / rate and sent by client i % n into its own
conversation, and each side receives it. Every `window_s` the generator closes a window:
latency of the frames received in it, the server's loop lag and GC pauses (from /metrics),
its RSS, the SQLite WAL's size and the CPU shares. Growth shows as a later window worse
than the first.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import msgspec
import numpy as np
import psutil
import uvloop
from picows import WSMsgType, WSTransport

from benchmarks import payload
from benchmarks.dialects import Dialect
from benchmarks.loadgen import (
    Client,
    Run,
    machine_busy_s,
    open_clients,
    raise_fd_limit,
    server_cpu_s,
    server_rss_kb,
    wait_until,
)
from benchmarks.runtime_metrics import Reading, Scraper, step_figures
from benchmarks.spec import LoadSpec, SoakResult, SoakSpec, SoakWindow, p99_trend

WARMUP_STEP = 0
STEP = 1  # one marker for the whole soak: a late frame still counts, in the window it arrives
PAUSE_AFTER_WARMUP_S = 1.0
# Issue 13: "flat" when the median p99 of the last third of the windows is within 1.5x of the
# first third's. Until 2026-12-03 the rule compared the last window with the first alone;
# a 10-minute run whose windows all stayed within 4-16 ms failed it on its last window.
FLAT_P99_GROWTH = 1.5


def wal_kb(pid: int) -> int | None:
    """Size of the SQLite WAL the server holds open; None when it holds none (PostgreSQL)."""
    try:
        files = psutil.Process(pid).open_files()
    except psutil.Error:
        return None
    for opened in files:
        if opened.path.endswith("-wal"):
            try:
                return os.path.getsize(opened.path) // 1024
            except OSError:
                return None
    return None


class Windows:
    """Closes a window every `window_s`: what was received, and the server's state."""

    def __init__(self, spec: SoakSpec, run: Run, scraper: Scraper) -> None:
        self.spec = spec
        self.run = run
        self.scraper = scraper
        self.closed: list[SoakWindow] = []
        self.sent = 0  # written by the sender
        self._sent_before = 0
        self._errors_before = 0

    async def mark(self) -> None:
        self._readings = await self.scraper.read()
        self._t = time.monotonic()
        self._cpu = server_cpu_s(self.spec.server_pid)
        self._own = time.process_time()
        self._all = machine_busy_s()
        self.started = self._t

    async def close(self) -> None:
        now = time.monotonic()
        cpu, own, busy = server_cpu_s(self.spec.server_pid), time.process_time(), machine_busy_s()
        latencies, self.run.latencies_ns = self.run.latencies_ns, []
        readings: list[Reading | None] = await self.scraper.read()
        wall = max(now - self._t, 1e-9)
        lat = np.array(latencies, dtype=np.int64) / 1e6
        p50, p99, top = (
            (*(float(v) for v in np.percentile(lat, [50, 99])), float(lat.max()))
            if lat.size
            else (None, None, None)
        )
        window = SoakWindow(
            index=len(self.closed),
            start_s=round(self._t - self.started, 1),
            seconds=round(wall, 2),
            sent=self.sent - self._sent_before,
            delivered=len(latencies),
            p50_ms=_round(p50),
            p99_ms=_round(p99),
            max_ms=_round(top),
            runtime=step_figures(self._readings, readings),
            server_rss_kb=server_rss_kb(self.spec.server_pid),
            wal_kb=wal_kb(self.spec.server_pid),
            server_cpu_share=round((cpu - self._cpu) / wall, 3),
            loadgen_cpu_share=round((own - self._own) / wall, 3),
            other_cpu_share=round(
                max(0.0, (busy - self._all) - (cpu - self._cpu) - (own - self._own)) / wall, 3
            ),
            error_frames=self.run.errors - self._errors_before,
        )
        self.closed.append(window)
        print(_describe(window), file=sys.stderr)
        self._sent_before, self._errors_before = self.sent, self.run.errors
        self._readings, self._t, self._cpu, self._own, self._all = readings, now, cpu, own, busy


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _describe(w: SoakWindow) -> str:
    runtime = w.runtime
    lag = f" lag p99<={runtime.loop_lag_p99_ms} gc max {runtime.gc_pause_max_ms}" if runtime else ""
    return (
        f"  window {w.index} at {w.start_s:>6.0f} s: sent {w.sent} delivered {w.delivered} "
        f"p50 {w.p50_ms} p99 {w.p99_ms} max {w.max_ms} ms{lag} rss {w.server_rss_kb} KB "
        f"wal {w.wal_kb} KB server cpu {w.server_cpu_share:.2f} other {w.other_cpu_share:.2f}"
    )


async def send(
    spec: SoakSpec,
    run: Run,
    clients: list[tuple[WSTransport, Client]],
    step: int,
    seconds: float,
    windows: Windows | None,
) -> int:
    """Send open loop at `spec.rate_per_s` for `seconds`, closing windows on the way."""
    interval_ns = round(1e9 / spec.rate_per_s)
    total = round(spec.rate_per_s * seconds)
    t0 = time.monotonic_ns() + 1_000_000
    next_close = t0 + round(spec.window_s * 1e9)
    for i in range(total):
        due = t0 + i * interval_ns
        if windows is not None and due >= next_close:
            await windows.close()
            next_close += round(spec.window_s * 1e9)
        ahead = due - time.monotonic_ns()
        if ahead > 0:
            await asyncio.sleep(ahead / 1e9)
        transport, client = clients[i % len(clients)]
        content = payload.make_content(step, due, spec.message_size)
        frame = run.dialect.publish_frame(client.room, content, f"s{step}-{i}")
        transport.send(WSMsgType.TEXT, frame.encode())
        if windows is not None:
            windows.sent += 1
    return total


async def soak(spec: SoakSpec) -> SoakResult:
    run = Run(Dialect("pitchey"))
    load = LoadSpec(
        mode="chat",
        port=spec.port,
        dialect="pitchey",
        server_pid=spec.server_pid,
        subscribers=len(spec.tokens),
        rooms=list(spec.conversations),
        room_size=2,
        subscriber_tokens=spec.tokens,
        connect_concurrency=spec.connect_concurrency,
    )
    opened, connect = await open_clients(load, run)
    clients: list[tuple[WSTransport, Client]] = opened
    # Unrecorded, as fan-out's warm-up step: first-use costs would inflate the first window,
    # the one the verdict compares against.
    await send(spec, run, clients, WARMUP_STEP, spec.warmup_s, None)
    await asyncio.sleep(PAUSE_AFTER_WARMUP_S)
    windows = Windows(spec, run, Scraper([spec.port]))
    run.latencies_ns = []
    run.marker = payload.step_marker(STEP)
    await windows.mark()
    total = await send(spec, run, clients, STEP, spec.duration_s, windows)
    expected = total * 2
    delivered_before_last = sum(w.delivered for w in windows.closed)
    await wait_until(
        lambda: delivered_before_last + len(run.latencies_ns) >= expected, spec.drain_seconds
    )
    await windows.close()  # the last window holds the drain
    run.marker = b"\x00"
    for transport, _ in clients:
        transport.disconnect()
    delivered = sum(w.delivered for w in windows.closed)
    first, last = windows.closed[0].p99_ms, windows.closed[-1].p99_ms
    growth = round(last / first, 2) if first and last is not None else None
    trend = p99_trend([w.p99_ms for w in windows.closed])
    return SoakResult(
        connect=connect,
        rate_per_s=spec.rate_per_s,
        duration_s=spec.duration_s,
        windows=windows.closed,
        sent=total,
        delivered=delivered,
        lost=expected - delivered,
        error_frames=run.errors,
        error_sample=run.error_sample,
        p99_growth=growth,
        flat=trend is not None and trend <= FLAT_P99_GROWTH,
        p99_trend=trend,
    )


def main() -> None:
    raise_fd_limit()
    spec = msgspec.json.decode(sys.stdin.buffer.read(), type=SoakSpec)
    result = uvloop.run(soak(spec))
    sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")


if __name__ == "__main__":
    main()
