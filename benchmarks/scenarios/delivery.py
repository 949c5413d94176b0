"""Scenario 6, delivery: the email pipeline benchmark (benchmarks/email_pipeline.py) as is.

It starts the SendGrid stand-in (answering 202 after 50 ms) and our server itself, posts the
emails over ``/api/email/batch`` and waits until the stand-in holds every one. Figures:
emails/s from the first accept to the last provider 202, and p50/p99 from our 202 to the
stand-in's. Not pinned: the pipeline's three processes share the machine's two cores.
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
BOUND_S = 900.0  # the pipeline waits at most 300 s for the stand-in; this only stops a hang

METRICS = [
    Metric("emails_per_s", "emails/s", True, lambda r: r["emails_per_s"]),
]


def run(targets: list[Target], quick: bool, stamp: str) -> dict[str, Any]:
    emails = QUICK_EMAILS if quick else FULL_EMAILS
    argv = [sys.executable, "-m", "benchmarks.email_pipeline", "--json"]
    argv += ["--emails", str(emails), "--delay-ms", str(PROVIDER_DELAY_MS)]
    entry: dict[str, Any] = {
        "target": "pitchey",
        "label": "Pitchey Comms (ours)",
        "subscribers": emails,
        "server_command": shlex.join(argv),
    }
    settings = {"emails": emails, "provider_delay_ms": PROVIDER_DELAY_MS}
    if not any(t.name == "pitchey" for t in targets):
        return {"settings": settings, "entries": []}
    print(f"[pitchey] delivery of {emails} emails", file=sys.stderr)
    try:
        done = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, check=True, timeout=BOUND_S)
        entry |= {"status": "ok", "result": json.loads(done.stdout.splitlines()[-1])}
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        print(f"[pitchey] error: {exc}", file=sys.stderr)
        entry |= {"status": "error", "reason": str(exc)}
    return {"settings": settings, "entries": [entry]}
