"""The delivery scenario's ceiling: bare httpx against the same SendGrid stand-in.

    python -m benchmarks.httpx_ceiling [--emails 10000] [--delay-ms 50] [--concurrency 128] [--json]

One httpx AsyncClient posts one v3 mail/send request per email, of the shape our pipeline
sends (delivery/providers/sendgrid.py), with `--concurrency` requests in flight, to the
stand-in that benchmarks/email_pipeline.py starts (answering 202 after ``--delay-ms``).
Nothing is stored, nothing retried: whatever this reaches is what httpx and the stand-in
allow on this machine, the bar our pipeline (durable outbox, status writes, retries) is held
against. Reports emails/s from the first request to the last 202, and p50/p99 per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import msgspec

from benchmarks.email_pipeline import API_KEY, percentile, start_standin
from tests.servers import free_port

FROM_EMAIL = "noreply@pitchey.com"  # our SENDGRID_FROM_EMAIL default, so bodies match in size
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


async def post_all(
    url: str, emails: int, concurrency: int
) -> tuple[float, float, list[float], int]:
    """(first send, last 202, per-request latencies in ms, non-202 answers)."""
    # The pool never makes a request wait for, or reopen, a connection: a bare client given
    # its best settings for this concurrency (httpx's defaults keep 20 alive, of 100).
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    failed = 0
    indices = iter(range(emails))
    last = 0.0
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        limits=limits,
        timeout=httpx.Timeout(10.0, connect=5.0),  # our provider's timeouts
    ) as http:

        async def worker() -> None:
            nonlocal failed, last
            for index in indices:
                sent = time.perf_counter()
                response = await http.post(
                    "/v3/mail/send",
                    content=body(uuid.uuid4().hex, index),
                    headers={"Content-Type": "application/json"},
                )
                done = time.perf_counter()
                latencies.append((done - sent) * 1000)
                if response.status_code == 202:
                    last = max(last, done)
                else:
                    failed += 1

        first = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return first, last, latencies, failed


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    standin = start_standin(port, args.delay_ms)
    url = f"http://127.0.0.1:{port}"
    try:
        first, last, latencies, failed = await post_all(url, args.emails, args.concurrency)
        async with httpx.AsyncClient(timeout=30) as http:
            received = len((await http.get(f"{url}/_standin/messages")).json())
    finally:
        standin.terminate()
        standin.wait()
    return {
        "emails": args.emails,
        "delivered_including_repeats": received,
        "failed": failed,
        "provider_delay_ms": args.delay_ms,
        "concurrency": args.concurrency,
        "emails_per_s": round((args.emails - failed) / (last - first), 1) if last else 0.0,
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--delay-ms", type=int, default=50, help="stand-in answer delay")
    parser.add_argument(
        "--concurrency", type=int, default=128, help="requests in flight (EMAIL_SEND_CONCURRENCY)"
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
