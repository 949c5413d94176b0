"""Scenario 6, delivery: the email pipeline benchmark (benchmarks/email_pipeline.py) as is,
beside its ceiling (benchmarks/httpx_ceiling.py).

The pipeline starts the SendGrid stand-in (answering 202 after 50 ms) and our server itself,
posts the emails over ``/api/email/batch`` and waits until the stand-in holds every one.
Figures: emails/s from the first accept to the last provider 202, and p50/p99 from our 202 to
the stand-in's. `httpx-ceiling` posts the same number of SendGrid requests to the same
stand-in from bare httpx AsyncClients at the pipeline's concurrency, storing nothing (its
faster pool layout of two): the ratio says how much of what the machine allows the durable
pipeline keeps. Not pinned: each
measurement's processes share the machine's two cores.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from typing import Any

from benchmarks.scenarios import Metric
from benchmarks.servers import REPO
from benchmarks.targets import Target

FULL_EMAILS = 10_000
QUICK_EMAILS = 2_000
PROVIDER_DELAY_MS = 50
CONCURRENCY = 128  # the pipeline's EMAIL_SEND_CONCURRENCY in email_pipeline.py
# The ceiling's pool layouts: one AsyncClient of 128 connections, and 16 of 8 (small pools suit
# httpcore, which scans its whole pool per request).
LAYOUTS = "1,16"
BOUND_S = 900.0  # the pipeline waits at most 300 s for the stand-in; this only stops a hang

METRICS = [
    Metric("emails_per_s", "emails/s", True, lambda r: r["emails_per_s"]),
]


def measure(name: str, label: str, argv: list[str], emails: int) -> dict[str, Any]:
    """Run one sender script to completion; its last stdout line is its JSON result."""
    entry: dict[str, Any] = {
        "target": name,
        "label": label,
        "subscribers": emails,
        "server_command": shlex.join(argv),
    }
    print(f"[{name}] delivery of {emails} emails", file=sys.stderr)
    try:
        done = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, check=True, timeout=BOUND_S)
        entry |= {"status": "ok", "result": json.loads(done.stdout.splitlines()[-1])}
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        print(f"[{name}] error: {exc}", file=sys.stderr)
        entry |= {"status": "error", "reason": str(exc)}
    return entry


def run(targets: list[Target], quick: bool, stamp: str) -> dict[str, Any]:
    emails = QUICK_EMAILS if quick else FULL_EMAILS
    common = ["--json", "--emails", str(emails), "--delay-ms", str(PROVIDER_DELAY_MS)]
    common += ["--concurrency", str(CONCURRENCY)]
    settings = {
        "emails": emails,
        "provider_delay_ms": PROVIDER_DELAY_MS,
        "concurrency": CONCURRENCY,
    }
    entries = []
    if any(t.name == "pitchey" for t in targets):
        pipeline = [sys.executable, "-m", "benchmarks.email_pipeline", *common]
        entries.append(measure("pitchey", "Pitchey Comms (ours)", pipeline, emails))
    # The ceiling is measured in every run, as REST's bare Starlette is.
    ceiling = [sys.executable, "-m", "benchmarks.httpx_ceiling", *common, "--clients", LAYOUTS]
    entries.append(measure("httpx-ceiling", "bare httpx, nothing stored", ceiling, emails))
    return {"settings": settings, "entries": entries}
