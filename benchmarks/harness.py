"""One measurement: start a target, prepare its rooms, run the load generator against it."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec

from benchmarks import runtime_metrics
from benchmarks.servers import LOADGEN_CPU, REPO, SERVER_CPU, Running, free_port, pinned, serve
from benchmarks.spec import P99_LIMIT_MS, FanoutResult, IdleResult, Ladder, LoadSpec
from benchmarks.targets import BENCH_DIR, Audience, Target

RAW_DIR = BENCH_DIR / "results" / "raw"
LOADGEN_ARGV = [sys.executable, "-m", "benchmarks.loadgen"]
CONNECT_BOUND_S = 600.0  # connect + join of 10k clients, with margin; this only stops a hang
ROOM_SIZE = 1_000  # the largest conversation the scenarios create


def loadgen_bound_s(spec: LoadSpec) -> float:
    ladder = spec.ladder
    return CONNECT_BOUND_S + 32 * (ladder.step_seconds + ladder.drain_seconds + 1)


def run_loadgen(spec: LoadSpec, pin: bool = True) -> FanoutResult | IdleResult:
    """The load generator, pinned to its core unless `pin` is false (scale-out)."""
    done = subprocess.run(
        pinned(LOADGEN_CPU, LOADGEN_ARGV) if pin else LOADGEN_ARGV,
        input=msgspec.json.encode(spec),
        stdout=subprocess.PIPE,
        cwd=REPO,
        check=True,
        timeout=loadgen_bound_s(spec),
    )
    if spec.mode in ("fanout", "chat"):
        return msgspec.json.decode(done.stdout, type=FanoutResult)
    return msgspec.json.decode(done.stdout, type=IdleResult)


def measure(
    target: Target,
    mode: Literal["fanout", "idle", "chat"],
    subscribers: int,
    ladder: Ladder,
    stamp: str,
    prepare: Callable[[Running], Audience] | None = None,
    p99_limit_ms: float = P99_LIMIT_MS,
    tag: str = "",
    room_size: int = ROOM_SIZE,
) -> dict[str, Any]:
    """Run one target at one size; failures are recorded, not raised.

    Subscriber i joins room i // `room_size`. `prepare` replaces the target's own room
    set-up (chat's two-person conversations); `tag` tells apart log files of measurements
    of one target at one size (backends, room shapes)."""
    entry: dict[str, Any] = {
        "target": target.name,
        "label": target.label,
        "subscribers": subscribers,
    }
    reason = target.available()
    if reason:
        print(f"[{target.name}] skipped: {reason}", file=sys.stderr)
        return {**entry, "status": "skipped", "reason": reason}
    port = free_port()
    entry["server_command"] = shlex.join(pinned(SERVER_CPU, target.argv(port)))
    log = RAW_DIR / f"{stamp}-{mode}-{target.name}{tag}-{subscribers}.log"
    print(f"[{target.name}] {mode} with {subscribers} subscribers", file=sys.stderr)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pitchey-bench-") as workdir,
            serve(target.argv(port), target.env(Path(workdir)), port, log) as running,
        ):
            audience = (
                prepare(running)
                if prepare
                else target.prepare(running, subscribers, min(room_size, subscribers))
            )
            spec = LoadSpec(
                mode=mode,
                port=port,
                dialect=target.dialect,
                server_pid=running.pid,
                subscribers=subscribers,
                rooms=list(audience.rooms),
                room_size=audience.room_size,
                subscriber_tokens=audience.subscriber_tokens,
                publisher_token=audience.publisher_token,
                ladder=ladder,
                p99_limit_ms=p99_limit_ms,
            )
            result = run_loadgen(spec)
            runtime = scrape_runtime(port)
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, httpx.HTTPError) as exc:
        print(f"[{target.name}] error: {exc}", file=sys.stderr)
        return {**entry, "status": "error", "reason": str(exc)}
    if runtime is not None:
        entry["runtime"] = runtime
    return {**entry, "status": "ok", "result": msgspec.to_builtins(result)}


def scrape_runtime(port: int) -> dict[str, float] | None:
    """Our server's worst GC pause and loop lag over the whole run, read from /metrics at
    its end (peers have no /metrics: None). Includes start-up's freeze collection."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    except httpx.HTTPError:
        return None
    reading = runtime_metrics.parse(response.text) if response.status_code == 200 else None
    if reading is None:
        return None
    found = {
        f"gc_gen{generation}_max_ms": value * 1000
        for generation, value in sorted(reading.gc_max_s.items())
    }
    found["gc_full_collections"] = reading.gc["2"].count if "2" in reading.gc else 0.0
    found["loop_lag_max_ms"] = reading.lag_max_s * 1000
    everything = runtime_metrics.Reading(runtime_metrics.Histogram(), 0.0, {}, {})
    # The p99 lag as the upper bound of the bucket holding it (histogram resolution).
    p99 = runtime_metrics.between(everything, reading).loop_lag_p99_ms
    if p99 is not None:
        found["loop_lag_p99_ms_at_most"] = p99
    return found


def run_generator(module: str, spec: msgspec.Struct, bound_s: float, pin: bool = True) -> bytes:
    """Run `python -m benchmarks.<module>` with `spec` as JSON on stdin; its JSON stdout."""
    argv = [sys.executable, "-m", f"benchmarks.{module}"]
    done = subprocess.run(
        pinned(LOADGEN_CPU, argv) if pin else argv,
        input=msgspec.json.encode(spec),
        stdout=subprocess.PIPE,
        cwd=REPO,
        check=True,
        timeout=bound_s,
    )
    return done.stdout


def measure_with(
    target: Target,
    mode: str,
    size: int,
    stamp: str,
    body: Callable[[Running], msgspec.Struct],
    tag: str = "",
) -> dict[str, Any]:
    """Start `target` pinned to the server core, run `body` against it; errors are recorded."""
    entry: dict[str, Any] = {"target": target.name, "label": target.label, "subscribers": size}
    reason = target.available()
    if reason:
        print(f"[{target.name}] skipped: {reason}", file=sys.stderr)
        return {**entry, "status": "skipped", "reason": reason}
    port = free_port()
    entry["server_command"] = shlex.join(pinned(SERVER_CPU, target.argv(port)))
    log = RAW_DIR / f"{stamp}-{mode}-{target.name}{tag}-{size}.log"
    print(f"[{target.name}] {mode} with {size}", file=sys.stderr)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pitchey-bench-") as workdir,
            serve(target.argv(port), target.env(Path(workdir)), port, log) as running,
        ):
            result = body(running)
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, httpx.HTTPError) as exc:
        print(f"[{target.name}] error: {exc}", file=sys.stderr)
        return {**entry, "status": "error", "reason": str(exc)}
    return {**entry, "status": "ok", "result": msgspec.to_builtins(result)}
