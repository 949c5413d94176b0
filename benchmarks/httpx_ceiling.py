"""The delivery scenario's ceiling: bare httpx against the same SendGrid stand-in.

    python -m benchmarks.httpx_ceiling [--emails 10000] [--delay-ms 50] [--concurrency 128]
                                       [--clients 1,16] [--json]

Bare httpx AsyncClients post one v3 mail/send request per email, of the shape our pipeline
sends (delivery/providers/sendgrid.py), with `--concurrency` requests in flight, to the
stand-in that benchmarks/email_pipeline.py starts (answering 202 after ``--delay-ms``).
Nothing is stored, nothing retried: whatever this reaches is what httpx and the stand-in
allow on this machine, the bar our pipeline (durable outbox, status writes, retries) is held
against. Reports emails/s from the first request to the last 202, and p50/p99 per request.

The same requests are sent once per pool layout in `--clients`, each against a fresh
stand-in: 1 is one AsyncClient holding every connection (what "a bare client" means); 16 is
16 clients of 8 connections, round robin (our provider's layout before it sent over aiohttp),
because httpcore scans its whole pool per request and a pool of 128 may be slower than
several small ones. The ceiling is the fastest layout, so it is never handicapped by one;
every layout's figures are kept.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import httpx
import msgspec

from benchmarks.email_pipeline import API_KEY, percentile, start_standin
from tests.servers import free_port

FROM_EMAIL = "noreply@pitchey.com"  # our SENDGRID_FROM_EMAIL default, so bodies match in size
SEND_TRIES = 3
_encoder = msgspec.json.Encoder()


def body(email_id: str, index: int) -> bytes:
    """What our pipeline posts for the benchmark's emails (to, subject "Bench", "hello")."""
    return _encoder.encode(
        {
            "personalizations": [{"to": [{"email": f"bench-{index}@example.com"}]}],
            "from": {"email": FROM_EMAIL},
            "subject": "Bench",
            "content": [{"type": "text/plain", "value": "hello"}],
            "custom_args": {"email_id": email_id},
        }
    )


def client(url: str, connections: int) -> httpx.AsyncClient:
    # The pool never makes a request wait for, or reopen, a connection: a bare client given
    # its best settings for this concurrency (httpx's defaults keep 20 alive, of 100).
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        limits=limits,
        timeout=httpx.Timeout(10.0, connect=5.0),  # our provider's timeouts
    )


class Outcome(msgspec.Struct):
    first: float = 0.0  # perf_counter of the first request
    last: float = 0.0  # perf_counter of the last 202
    latencies_ms: list[float] = msgspec.field(default_factory=list)  # each 202's request
    failed: int = 0  # answered, but not 202
    transport_errors: int = 0  # no answer (reset, timeout): sent again, as our pipeline would


async def post_one(http: httpx.AsyncClient, index: int, outcome: Outcome) -> None:
    """One email's request, again on a transport error (at most SEND_TRIES times)."""
    content = body(uuid.uuid4().hex, index)
    for _ in range(SEND_TRIES):
        sent = time.perf_counter()
        try:
            response = await http.post(
                "/v3/mail/send", content=content, headers={"Content-Type": "application/json"}
            )
        except httpx.TransportError:
            outcome.transport_errors += 1
            continue
        done = time.perf_counter()
        if response.status_code == 202:
            outcome.latencies_ms.append((done - sent) * 1000)
            outcome.last = max(outcome.last, done)
        else:
            outcome.failed += 1
        return
    outcome.failed += 1


async def post_all(url: str, emails: int, concurrency: int, clients: int) -> Outcome:
    outcome = Outcome()
    indices = iter(range(emails))
    pool = [client(url, -(-concurrency // clients)) for _ in range(clients)]
    async with contextlib.AsyncExitStack() as stack:
        for http in pool:
            await stack.enter_async_context(http)

        async def worker(http: httpx.AsyncClient) -> None:
            for index in indices:
                await post_one(http, index, outcome)

        outcome.first = time.perf_counter()
        # Worker k always uses client k % clients: each pool sees concurrency / clients.
        await asyncio.gather(*(worker(pool[k % clients]) for k in range(concurrency)))
    return outcome


async def one_layout(args: argparse.Namespace, clients: int) -> dict[str, Any]:
    port = free_port()
    standin = start_standin(port, args.delay_ms)
    url = f"http://127.0.0.1:{port}"
    try:
        outcome = await post_all(url, args.emails, args.concurrency, clients)
        async with httpx.AsyncClient(timeout=30) as http:
            received = len((await http.get(f"{url}/_standin/messages")).json())
    finally:
        standin.terminate()
        standin.wait()
    latencies = outcome.latencies_ms or [0.0]
    delivered = len(outcome.latencies_ms)
    elapsed = outcome.last - outcome.first
    return {
        "clients": clients,
        "connections_per_client": -(-args.concurrency // clients),
        "delivered_including_repeats": received,
        "failed": outcome.failed,
        "transport_errors": outcome.transport_errors,
        "emails_per_s": round(delivered / elapsed, 1) if delivered else 0.0,
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    layouts = [await one_layout(args, int(k)) for k in args.clients.split(",")]
    best = max(layouts, key=lambda layout: layout["emails_per_s"])
    return {
        "emails": args.emails,
        "provider_delay_ms": args.delay_ms,
        "concurrency": args.concurrency,
        **best,  # the headline figures are the fastest layout's
        "layouts": layouts,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--delay-ms", type=int, default=50, help="stand-in answer delay")
    parser.add_argument(
        "--concurrency", type=int, default=128, help="requests in flight (EMAIL_SEND_CONCURRENCY)"
    )
    parser.add_argument(
        "--clients", default="1,16", help="pool layouts to try: AsyncClients sharing the load"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
