"""Scenario 5's load generator: closed-loop keep-alive HTTP/1.1 clients.

Run by the harness as ``taskset -c 1 python -m benchmarks.loadgen_rest`` with a RestSpec on
stdin; writes a RestResult. Two phases, one after the other: history reads
(``GET /api/messages/{id}?limit=50``) and sends (``POST /api/messages/send``). Each of
`concurrency` clients holds one connection and sends its next request as soon as the last
answer arrived (closed loop: the figure is throughput at that concurrency, and the latency
is what each request saw).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

import msgspec
import numpy as np
import uvloop

from benchmarks.http1 import Connection, HttpError
from benchmarks.loadgen import machine_busy_s, raise_fd_limit, server_cpu_s
from benchmarks.spec import RestPhase, RestResult, RestSpec

MAX_REQUESTS_PER_CLIENT = 1_000_000  # with the phase's deadline, bounds every client's loop

MakeRequest = Callable[[Connection, int], Awaitable[tuple[int, bytes]]]  # (connection, i)


def history_request(spec: RestSpec) -> MakeRequest:
    path = f"/api/messages/{spec.conversations[0]}?limit=50"
    return lambda http, i: http.request("GET", path)


def send_request(spec: RestSpec, client: int) -> MakeRequest:
    conversation = spec.conversations[client % len(spec.conversations)]

    def request(http: Connection, i: int) -> Awaitable[tuple[int, bytes]]:
        content = f"rest:{client:04d}:{i:09d}:".ljust(spec.message_size, "x")
        body = {"conversationId": conversation, "content": content}
        return http.request("POST", "/api/messages/send", json.dumps(body).encode())

    return request


async def phase(spec: RestSpec, op: str) -> RestPhase:
    headers = {"Authorization": f"Bearer {spec.token}"} if spec.token else {}
    clients = [Connection(spec.port, headers) for _ in range(spec.concurrency)]
    for http in clients:
        await http.open()
    latencies: list[int] = []
    errors = 0
    error_sample: str | None = None
    record = False

    async def loop(k: int, until: float) -> None:
        nonlocal errors, error_sample
        http = clients[k]
        make = history_request(spec) if op == "history" else send_request(spec, k)
        for i in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= until:
                return
            started = time.monotonic_ns()
            try:
                status, body = await make(http, i)
            except (OSError, HttpError, asyncio.IncompleteReadError) as exc:
                status, body = 0, repr(exc).encode()
            if not record:
                continue
            latencies.append(time.monotonic_ns() - started)
            if status not in (200, 201):
                errors += 1
                error_sample = error_sample or f"{status} {body[:200].decode(errors='replace')}"

    # Warm-up: connections, caches and the server's first-use costs, not recorded.
    warm_until = time.monotonic() + spec.warmup_seconds
    await asyncio.gather(*(loop(k, warm_until) for k in range(spec.concurrency)))
    record = True
    cpu0, own0, all0 = server_cpu_s(spec.server_pid), time.process_time(), machine_busy_s()
    t0 = time.monotonic()
    await asyncio.gather(*(loop(k, t0 + spec.seconds) for k in range(spec.concurrency)))
    wall = time.monotonic() - t0
    cpu1, own1, all1 = server_cpu_s(spec.server_pid), time.process_time(), machine_busy_s()
    for http in clients:
        http.close()
    lat = np.array(latencies, dtype=np.int64) / 1e6
    n = len(latencies)
    return RestPhase(
        op=op,
        requests=n,
        errors=errors,
        error_sample=error_sample,
        per_s=round((n - errors) / wall, 1),
        p50_ms=round(float(np.percentile(lat, 50)), 2) if n else None,
        p99_ms=round(float(np.percentile(lat, 99)), 2) if n else None,
        max_ms=round(float(lat.max()), 2) if n else None,
        server_cpu_us_per_request=round((cpu1 - cpu0) * 1e6 / n, 1) if n else None,
        loadgen_cpu_share=round((own1 - own0) / wall, 3),
        other_cpu_share=round(max(0.0, (all1 - all0) - (cpu1 - cpu0) - (own1 - own0)) / wall, 3),
    )


async def main_async(spec: RestSpec) -> RestResult:
    phases = []
    for op in ("history", "send"):
        result = await phase(spec, op)
        print(
            f"  {op}: {result.per_s:.0f}/s p50 {result.p50_ms} p99 {result.p99_ms} ms "
            f"errors {result.errors} loadgen cpu {result.loadgen_cpu_share:.2f} "
            f"other cpu {result.other_cpu_share:.2f}",
            file=sys.stderr,
        )
        phases.append(result)
    return RestResult(phases=phases)


def main() -> None:
    raise_fd_limit()
    spec = msgspec.json.decode(sys.stdin.buffer.read(), type=RestSpec)
    result = uvloop.run(main_async(spec))
    sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")


if __name__ == "__main__":
    main()
