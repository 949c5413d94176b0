"""Scenario 4's load generator: a reconnect storm while messages flow.

Run by the harness as ``taskset -c 1 python -m benchmarks.loadgen_recovery`` with a
RecoverySpec on stdin; writes a RecoveryResult on stdout. Every subscriber records the seq of
each message it gets; at `storm_after_s` all of them drop their sockets at once and reconnect
with ``subscribe {since: <last contiguous seq>}``. When the server answers
``subscribed.recovered: false`` the client pages ``GET /api/messages/{id}?after=SEQ&limit=100``
over HTTP, as a real client must, while live messages keep arriving on the socket.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import msgspec
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from benchmarks.http1 import Connection
from benchmarks.loadgen import machine_busy_s, raise_fd_limit, server_cpu_s, wait_until
from benchmarks.spec import Connect, RecoveryResult, RecoverySpec

JOIN_DEADLINE_S = 120.0  # 1,000 subscribes; only stops a hang
RECONNECT_DEADLINE_S = 120.0
MAX_PAGES = 10_000  # per client: a gap of a million messages at 100 a page; stops a loop
MESSAGE_HEAD = b'{"type":"message"'
ACK_HEAD = b'{"type":"ack"'
SEQ_KEY = b'"seq":'


def seq_of(data: bytes) -> int:
    """The first `"seq":N` of a frame: the message's own (it precedes any nested field)."""
    at = data.index(SEQ_KEY) + len(SEQ_KEY)
    end = at
    while data[end : end + 1].isdigit():
        end += 1
    return int(data[at:end])


class Subscriber(WSListener):
    """One client: the seqs it holds, and how it got them back after the storm."""

    def __init__(self, spec: RecoverySpec, token: str) -> None:
        self.spec = spec
        self.token = token
        self.seen: set[int] = set()
        self.contiguous = 0  # every seq in 1..contiguous is held
        self.duplicates = 0  # seqs the sockets delivered twice
        self.rest_overlap = 0
        self.rest_pages = 0
        self.resubscribe = False
        self.subscribed_at: float | None = None
        self.target: int | None = None  # subscribed.seq after the storm: what must be caught up
        self.caught_up_at: float | None = None
        self.recovered: bool | None = None
        self.replayed = 0
        self.pager: asyncio.Task[None] | None = None
        self.errors = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        frame: dict[str, object] = {"type": "subscribe", "conversationId": self.spec.conversation}
        if self.resubscribe:
            frame["since"] = self.contiguous
        transport.send(WSMsgType.TEXT, json.dumps(frame).encode())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        data = frame.get_payload_as_bytes()
        if data.startswith(MESSAGE_HEAD):
            seq = seq_of(data)
            if seq in self.seen:
                self.duplicates += 1
            else:
                self.hold(seq)
        elif b'"type":"subscribed"' in data:
            self.subscribed(json.loads(data))
        elif b'"type":"error"' in data:
            self.errors += 1

    def hold(self, seq: int) -> None:
        self.seen.add(seq)
        while self.contiguous + 1 in self.seen:
            self.contiguous += 1
        self.hold_check()

    def subscribed(self, body: dict[str, object]) -> None:
        self.subscribed_at = time.monotonic()
        if not self.resubscribe:
            return
        self.recovered = bool(body.get("recovered", True))
        self.replayed = int(body.get("replayed", 0))  # type: ignore[call-overload]
        self.target = int(body["seq"])  # type: ignore[call-overload]
        if not self.recovered:
            self.pager = asyncio.get_running_loop().create_task(self.page(self.contiguous))
        self.hold_check()

    def hold_check(self) -> None:
        if self.target is not None and self.caught_up_at is None and self.contiguous >= self.target:
            self.caught_up_at = time.monotonic()

    async def page(self, after: int) -> None:
        """recovered: false: read the gap over REST, 100 at a time, until no next cursor."""
        http = Connection(self.spec.port, {"Authorization": f"Bearer {self.token}"})
        try:
            for _ in range(MAX_PAGES):
                path = (
                    f"/api/messages/{self.spec.conversation}"
                    f"?after={after}&limit={self.spec.page_limit}"
                )
                status, body = await http.request("GET", path)
                self.rest_pages += 1
                if status != 200:
                    self.errors += 1
                    return
                page = json.loads(body)
                for item in page["items"]:
                    if item["seq"] in self.seen:
                        self.rest_overlap += 1
                    else:
                        self.hold(item["seq"])
                if not page.get("nextCursor"):
                    return
                after = int(page["nextCursor"])
        finally:
            http.close()


class Publisher(WSListener):
    """Sends on a steady schedule; remembers the highest seq the server acknowledged."""

    def __init__(self) -> None:
        self.subscribed = False
        self.acked = 0
        self.last_seq = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        data = frame.get_payload_as_bytes()
        if data.startswith(ACK_HEAD):
            self.acked += 1
            self.last_seq = max(self.last_seq, seq_of(data))
        elif b'"type":"subscribed"' in data:
            self.subscribed = True


async def connect_all(
    spec: RecoverySpec, clients: list[Subscriber], concurrency: int
) -> list[WSTransport | None]:
    sem = asyncio.Semaphore(concurrency)

    async def one(client: Subscriber) -> WSTransport | None:
        url = f"ws://127.0.0.1:{spec.port}/ws?token={client.token}"
        async with sem:
            try:
                transport, _ = await ws_connect(
                    lambda: client, url, websocket_handshake_timeout=30, read_buffer_init_size=4096
                )
            except Exception as exc:  # counted as a failed (re)connection
                print(f"connect failed: {exc!r}", file=sys.stderr)
                return None
        return transport

    return list(await asyncio.gather(*(one(c) for c in clients)))


async def publish(spec: RecoverySpec, transport: WSTransport, total: int) -> int:
    """Open loop: message i is due at t0 + i / rate. Returns how many were sent."""
    interval = 1.0 / spec.rate_per_s
    t0 = time.monotonic()
    for i in range(total):
        ahead = t0 + i * interval - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)
        frame = {
            "type": "send",
            "conversationId": spec.conversation,
            "content": f"recovery:{i:08d}:" + "x" * 80,
            "clientMsgId": f"r-{i}",
        }
        transport.send(WSMsgType.TEXT, json.dumps(frame).encode())
    return total


async def storm(spec: RecoverySpec) -> RecoveryResult:
    clients = [Subscriber(spec, token) for token in spec.subscriber_tokens]
    started = time.monotonic()
    transports = await connect_all(spec, clients, 100)
    await wait_until(lambda: all(c.subscribed_at for c in clients), JOIN_DEADLINE_S)
    seconds = time.monotonic() - started
    joined = sum(1 for c in clients if c.subscribed_at)
    connect = Connect(
        connected=joined,
        failed=len(clients) - joined,
        seconds=round(seconds, 3),
        per_s=round(joined / seconds, 1),
    )
    publisher = Publisher()
    url = f"ws://127.0.0.1:{spec.port}/ws?token={spec.publisher_token}"
    pub_transport, _ = await ws_connect(lambda: publisher, url)
    pub_transport.send(
        WSMsgType.TEXT,
        json.dumps({"type": "subscribe", "conversationId": spec.conversation}).encode(),
    )
    await wait_until(lambda: publisher.subscribed, JOIN_DEADLINE_S)

    total = round(spec.rate_per_s * (spec.storm_after_s + spec.publish_after_s))
    sending = asyncio.get_running_loop().create_task(publish(spec, pub_transport, total))
    await asyncio.sleep(spec.storm_after_s)

    # The storm: every subscriber drops its socket at once, then all reconnect with `since`.
    cpu0, own0, all0 = server_cpu_s(spec.server_pid), time.process_time(), machine_busy_s()
    storm_at = time.monotonic()
    for transport in transports:
        if transport is not None:
            transport.disconnect()
    for client in clients:
        client.resubscribe = True
        client.subscribed_at = None
    transports = await connect_all(spec, clients, spec.reconnect_concurrency)
    await wait_until(lambda: all(c.subscribed_at for c in clients), RECONNECT_DEADLINE_S)
    resubscribed = [c for c in clients if c.subscribed_at]
    last = max((c.subscribed_at or storm_at for c in resubscribed), default=storm_at)
    reconnect_s = last - storm_at

    await sending
    last_publish = time.monotonic()
    await wait_until(lambda: publisher.acked >= total, spec.drain_seconds)
    final = publisher.last_seq
    await wait_until(lambda: all(c.contiguous >= final for c in clients), spec.drain_seconds)
    done_at = time.monotonic()
    cpu1, own1, all1 = server_cpu_s(spec.server_pid), time.process_time(), machine_busy_s()
    for client in clients:
        if client.pager is not None and not client.pager.done():
            client.pager.cancel()
    complete = all(c.contiguous >= final for c in clients)
    caught = [c.caught_up_at for c in clients]
    lost = sum(final - len([s for s in c.seen if s <= final]) for c in clients)
    duplicated = sum(c.duplicates for c in clients)
    wall = done_at - storm_at
    for transport in [*transports, pub_transport]:
        if transport is not None:
            transport.disconnect()
    return RecoveryResult(
        connect=connect,
        published=total,
        final_seq=final,
        reconnect_s=round(reconnect_s, 3),
        caught_up_s=(
            round(max(caught) - storm_at, 3)  # type: ignore[type-var, operator]
            if all(t is not None for t in caught)
            else None
        ),
        complete_s=round(done_at - last_publish, 3) if complete else None,
        recovered_ws=sum(1 for c in clients if c.recovered is True),
        recovered_rest=sum(1 for c in clients if c.recovered is False),
        rest_pages=sum(c.rest_pages for c in clients),
        replayed=sum(c.replayed for c in clients),
        lost=lost,
        duplicated=duplicated,
        rest_overlap=sum(c.rest_overlap for c in clients),
        clients_complete=sum(1 for c in clients if c.contiguous >= final),
        reconnect_failed=len(clients) - len(resubscribed),
        errors=sum(c.errors for c in clients),
        other_cpu_share=round(max(0.0, (all1 - all0) - (cpu1 - cpu0) - (own1 - own0)) / wall, 3),
        # Every publish acknowledged with a seq, every client holding all of them once.
        passed=(
            final == total
            and complete
            and lost == 0
            and duplicated == 0
            and len(resubscribed) == len(clients)
            and not any(c.errors for c in clients)
        ),
    )


def main() -> None:
    raise_fd_limit()
    spec = msgspec.json.decode(sys.stdin.buffer.read(), type=RecoverySpec)
    result = uvloop.run(storm(spec))
    sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")


if __name__ == "__main__":
    main()
