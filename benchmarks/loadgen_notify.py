"""The notification fan-out's generator: one marketplace alert to every user.

Run by the notify scenario as ``taskset -c 1 python -m benchmarks.loadgen_notify`` with a
NotifySpec on stdin; writes a NotifyResult on stdout.

1. Set-up, not timed: every user gets an address in the directory (``PUT /api/users/{id}``)
   and chooses instant email for marketplace alerts (``PUT /api/notifications/preferences``;
   the default is the daily digest, which sends nothing now).
2. The online users open a WebSocket each; a ``ping`` answered with ``pong`` says the
   session is registered for pushes.
3. The alert: ``POST /api/notifications/marketplace`` with every user id, split into requests
   of the schema's bound, all sent at once. A 202 means those notifications are committed.
4. Each online user's ``notification`` frame is timed from the first POST; then the
   stand-in's messages are counted until every user's email is there.
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
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from benchmarks.http1 import Connection, HttpError
from benchmarks.loadgen import raise_fd_limit, wait_until
from benchmarks.runtime_metrics import Scraper, step_figures
from benchmarks.spec import Connect, NotifyResult, NotifySpec

CONNECT_DEADLINE_S = 300.0  # only stops a hang
EMAIL_POLL_S = 1.0  # each poll reads /metrics, one small page
SENT = "pitchey_email_provider_outcomes_total{"
PREFERENCE = json.dumps(
    {"types": {"marketplace_alert": {"email": True, "frequency": "instant"}}}
).encode()


class Online(WSListener):
    """One online user: ready once its ping is answered; notes when the alert arrives."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.ready = False
        self.got_ns: int | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, b'{"type":"ping"}')

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        data = frame.get_payload_as_bytes()
        if b'"type":"notification"' in data:
            if self.got_ns is None:
                self.got_ns = time.monotonic_ns()
                self.state.pushes += 1
        elif b'"type":"pong"' in data and not self.ready:
            self.ready = True
            self.state.ready += 1
        elif b'"type":"error"' in data:
            self.state.error(data.decode(errors="replace"))


class State:
    def __init__(self) -> None:
        self.ready = 0
        self.pushes = 0
        self.errors = 0
        self.error_sample: str | None = None

    def error(self, text: str) -> None:
        self.errors += 1
        self.error_sample = self.error_sample or text[:300]


Job = Callable[[Connection], Awaitable[None]]


async def in_parallel(count: int, jobs: list[Job], port: int) -> None:
    """Run `jobs` over `count` keep-alive connections, each taking the next job when free."""
    queue = list(reversed(jobs))

    async def worker() -> None:
        connection = Connection(port)
        try:
            while queue:
                await queue.pop()(connection)
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(count)))


async def set_up(spec: NotifySpec, state: State) -> None:
    service = {"Authorization": f"Bearer {spec.service_token}"}

    def job(user: str, token: str) -> Job:
        async def run(connection: Connection) -> None:
            address = json.dumps({"email": f"{user}@example.com"}).encode()
            status, body = await connection.request("PUT", f"/api/users/{user}", address, service)
            if status != 200:
                state.error(f"PUT /api/users: {status} {body[:200]!r}")
            status, body = await connection.request(
                "PUT",
                "/api/notifications/preferences",
                PREFERENCE,
                {"Authorization": f"Bearer {token}"},
            )
            if status != 200:
                state.error(f"PUT preferences: {status} {body[:200]!r}")

        return run

    jobs = [job(u, t) for u, t in zip(spec.user_ids, spec.user_tokens, strict=True)]
    await in_parallel(spec.setup_concurrency, jobs, spec.port)


async def connect_online(
    spec: NotifySpec, state: State
) -> tuple[list[tuple[WSTransport, Online]], Connect]:
    sem = asyncio.Semaphore(100)
    started = time.monotonic()

    async def one(token: str) -> tuple[WSTransport, Online] | None:
        listener = Online(state)
        async with sem:
            try:
                transport, _ = await ws_connect(
                    lambda: listener,
                    f"ws://127.0.0.1:{spec.port}/ws?token={token}",
                    websocket_handshake_timeout=30,
                )
            except Exception as exc:  # counted as a failed connection
                state.error(f"connect: {exc!r}")
                return None
        return transport, listener

    tokens = spec.user_tokens[: spec.online]
    opened = [c for c in await asyncio.gather(*(one(t) for t in tokens)) if c]
    await wait_until(lambda: state.ready >= len(opened), CONNECT_DEADLINE_S)
    seconds = time.monotonic() - started
    connect = Connect(
        connected=state.ready,
        failed=spec.online - state.ready,
        seconds=round(seconds, 3),
        per_s=round(state.ready / seconds, 1),
    )
    return opened, connect


async def sent_emails(port: int) -> float:
    """Emails our server handed to the stand-in so far (its own counter in /metrics)."""
    connection = Connection(port)  # fresh: polls outlast the server's keep-alive timeout
    try:
        status, body = await connection.request("GET", "/metrics")
    finally:
        connection.close()
    if status != 200:
        raise HttpError(f"/metrics answered {status}")
    sent = 0.0
    for line in body.decode().splitlines():
        if line.startswith(SENT) and 'outcome="sent"' in line:
            sent += float(line.rpartition(" ")[2])
    return sent


async def wait_for_emails(port: int, emails: int, deadline_s: float) -> None:
    """Poll the server's own counter (cheap) rather than the stand-in's list (large)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if await sent_emails(port) >= emails:
            return
        await asyncio.sleep(EMAIL_POLL_S)


async def alert(spec: NotifySpec, state: State) -> NotifyResult:
    setup_started = time.monotonic()
    await set_up(spec, state)
    setup_s = time.monotonic() - setup_started
    opened, connect = await connect_online(spec, state)
    scraper = Scraper([spec.port])
    before = await scraper.read()
    service = {"Authorization": f"Bearer {spec.service_token}"}
    chunks = [
        spec.user_ids[k : k + spec.per_request]
        for k in range(0, len(spec.user_ids), spec.per_request)
    ]
    connections = [Connection(spec.port) for _ in chunks]
    for connection in connections:
        await connection.open()  # connected before the clock starts
    answered: list[int] = []

    async def post(connection: Connection, users: list[str]) -> None:
        body = json.dumps(
            {"pitchId": "bench-pitch", "pitchTitle": "Night Train", "userIds": users}
        ).encode()
        status, reply = await connection.request(
            "POST", "/api/notifications/marketplace", body, service
        )
        answered.append(time.monotonic_ns())
        if status != 202:
            state.error(f"POST marketplace: {status} {reply[:200]!r}")

    t0_wall = time.time()
    t0 = time.monotonic_ns()
    await asyncio.gather(*(post(c, users) for c, users in zip(connections, chunks, strict=True)))
    stored_s = (max(answered) - t0) / 1e9
    await wait_until(lambda: state.pushes >= len(opened), spec.push_deadline_s)
    after = await scraper.read()
    latencies = np.array(
        [(c.got_ns - t0) / 1e6 for _, c in opened if c.got_ns is not None], dtype=np.float64
    )
    p50, p99, top = (
        (*(float(v) for v in np.percentile(latencies, [50, 99])), float(latencies.max()))
        if latencies.size
        else (None, None, None)
    )
    for transport, _ in opened:
        transport.disconnect()
    for connection in connections:
        connection.close()
    await wait_for_emails(spec.port, len(spec.user_ids), spec.email_deadline_s)
    first, last, emails = await standin_times(spec)
    return NotifyResult(
        users=len(spec.user_ids),
        online=spec.online,
        requests=len(chunks),
        setup_s=round(setup_s, 2),
        connect=connect,
        stored_s=round(stored_s, 3),
        pushes=state.pushes,
        push_p50_ms=_round(p50),
        push_p99_ms=_round(p99),
        push_max_ms=_round(top),
        emails=emails,
        emails_first_s=None if first is None else round(first - t0_wall, 3),
        emails_last_s=None if last is None else round(last - t0_wall, 3),
        emails_per_s=round(emails / (last - t0_wall), 1) if last is not None else None,
        runtime=step_figures(before, after),
        errors=state.errors,
        error_sample=state.error_sample,
    )


async def standin_times(spec: NotifySpec) -> tuple[float | None, float | None, int]:
    """First and last arrival (epoch s) at the stand-in and how many users got an email:
    read once at the end (the list is large), so it costs nothing while measuring."""
    connection = Connection(spec.standin_port)
    try:
        status, body = await connection.request("GET", "/_standin/messages")
    finally:
        connection.close()
    if status != 200:
        return None, None, 0
    wanted = {f"{user}@example.com" for user in spec.user_ids}
    first: dict[str, float] = {}
    for message in msgspec.json.decode(body):
        for personalization in message.get("personalizations", []):
            for to in personalization.get("to", []):
                if to.get("email") in wanted:
                    first.setdefault(to["email"], message["received_at"])
    if not first:
        return None, None, 0
    return min(first.values()), max(first.values()), len(first)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main() -> None:
    raise_fd_limit()
    spec = msgspec.json.decode(sys.stdin.buffer.read(), type=NotifySpec)
    result = uvloop.run(alert(spec, State()))
    sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")


if __name__ == "__main__":
    main()
