"""Email pipeline benchmark: N emails through the outbox to a SendGrid stand-in.

    python -m benchmarks.email_pipeline [--emails 10000] [--delay-ms 50] [--json]

Starts the SendGrid stand-in (answering 202 after ``--delay-ms``) and our server
as separate processes, posts the emails with ``/api/email/batch``, and waits until
the stand-in holds every one. Reports emails/s (first accept to last provider 202)
and p50/p99 from each email's 202 from our API to the stand-in's 202. Rate limits
are off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.servers import ROOT, ServerProcess, free_port

API_KEY = "SG.bench"


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else values[0]


def start_standin(port: int, delay_ms: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.standins.sendgrid", "--port", str(port)),
            *("--delay-ms", str(delay_ms), "--api-key", API_KEY),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_standin/messages", timeout=0.5)
            return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("SendGrid stand-in did not start")


async def _push(
    server: ServerProcess, emails: int, per_request: int, parallel: int
) -> dict[str, float]:
    """Post every email; return each email id's accept time (epoch seconds)."""
    accepted: dict[str, float] = {}
    slots = asyncio.Semaphore(parallel)
    async with server.client("bench", role="service") as http:
        http.timeout = httpx.Timeout(60)

        async def one(start: int) -> None:
            count = min(per_request, emails - start)
            batch = [
                {"to": f"bench-{start + i}@example.com", "subject": "Bench", "text": "hello"}
                for i in range(count)
            ]
            async with slots:
                response = await http.post("/api/email/batch", json={"emails": batch})
            at = time.time()
            response.raise_for_status()
            for result in response.json()["results"]:
                accepted[result["id"]] = at

        await asyncio.gather(*(one(s) for s in range(0, emails, per_request)))
    return accepted


async def _wait_all(standin_url: str, ids: set[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=30) as http:
        while True:
            messages: list[dict[str, Any]] = (
                await http.get(f"{standin_url}/_standin/messages")
            ).json()
            seen = {m["custom_args"]["email_id"] for m in messages}
            if ids <= seen:
                return messages
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(ids & seen)} of {len(ids)} emails arrived")
            await asyncio.sleep(0.25)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    standin = start_standin(port, args.delay_ms)
    standin_url = f"http://127.0.0.1:{port}"
    server = ServerProcess(
        Path(tempfile.mkdtemp(prefix="email-bench-")),
        {
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "warning",
            "SENDGRID_API_KEY": API_KEY,
            "SENDGRID_API_URL": standin_url,
            "EMAIL_RATE_LIMIT_PER_MINUTE": "0",
            "EMAIL_RATE_LIMIT_PER_HOUR": "0",
            "EMAIL_BATCH_SIZE": str(args.batch_size),
            "EMAIL_BATCH_TIMEOUT": str(args.batch_timeout),
            "EMAIL_SEND_CONCURRENCY": str(args.concurrency),
        },
    )
    server.start()
    try:
        started = time.time()
        accepted = await _push(server, args.emails, args.per_request, args.parallel)
        accept_done = time.time()
        messages = await _wait_all(standin_url, set(accepted), args.timeout)
    finally:
        server.stop()
        standin.terminate()
        standin.wait()
    first_202: dict[str, float] = {}
    for m in messages:
        email_id = m["custom_args"]["email_id"]
        if email_id in accepted:
            first_202.setdefault(email_id, m["received_at"])
    latencies = [(first_202[i] - accepted[i]) * 1000 for i in accepted]
    finished = max(first_202.values())
    return {
        "emails": len(accepted),
        "delivered_including_repeats": sum(
            1 for m in messages if m["custom_args"]["email_id"] in accepted
        ),
        "provider_delay_ms": args.delay_ms,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "accept_per_s": round(len(accepted) / (accept_done - started), 1),
        "emails_per_s": round(len(accepted) / (finished - started), 1),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--delay-ms", type=int, default=50, help="stand-in answer delay")
    parser.add_argument("--batch-size", type=int, default=200, help="EMAIL_BATCH_SIZE")
    parser.add_argument("--batch-timeout", type=float, default=0.05, help="EMAIL_BATCH_TIMEOUT")
    parser.add_argument("--concurrency", type=int, default=128, help="EMAIL_SEND_CONCURRENCY")
    parser.add_argument("--per-request", type=int, default=500, help="emails per /batch call")
    parser.add_argument("--parallel", type=int, default=4, help="/batch calls in flight")
    parser.add_argument("--timeout", type=float, default=300.0)
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
