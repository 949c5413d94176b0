"""Notification fan-out (issue 17): one marketplace alert to 10,000 users.

"Time until all are stored, p99 of the live push to the online ones, emails/s to the
stand-in." Every user has an address and has chosen instant email for marketplace alerts
(the default, the daily digest, would send nothing now); 2,000 of them are online, one
WebSocket each. The platform posts the alert once per 5,000 users (the schema's bound on
`userIds`), all requests at once; a 202 means those notifications and their email jobs are
committed. Figures: first POST to last 202; first POST to each online user's
`notification` frame (p50 / p99 / max); emails per second from the first POST to the last
email at the SendGrid stand-in (answering 202 after 50 ms, as in scenario 6), through the
notification worker and the email pipeline at their default settings.

Ours only (no peer has notifications), on SQLite. The server is pinned to core 0, the
generator and the stand-in share core 1.

Beside it, issue 5's single push (benchmarks/notification_push.py, run as is): one user, one
`POST /api/notifications/send` at a time, from the request to the frame, p50 / p99 / max.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import msgspec

from benchmarks.harness import RAW_DIR, run_generator
from benchmarks.scenarios import Metric
from benchmarks.servers import LOADGEN_CPU, REPO, SERVER_CPU, free_port, pinned, serve, stop
from benchmarks.spec import NotifyResult, NotifySpec
from benchmarks.targets import JWT_SECRET, TOKEN_TTL_S, Target, pitchey_env, token

FULL_USERS = 10_000
PUSHES = 1_000  # notification_push.py's default
QUICK_PUSHES = 200
QUICK_USERS = 1_000
ONLINE_SHARE = 0.2  # a marketplace alert finds most of its audience offline
PER_REQUEST = 5_000  # schemas/notifications.py MAX_RECIPIENTS: userIds per request
PROVIDER_DELAY_MS = 50  # scenario 6's stand-in answers after the same delay
API_KEY = "SG.bench"
STANDIN_READY_S = 15.0
GENERATOR_BOUND_S = 1_800.0
# As scenario 6 (email_pipeline.py): the global email rate limit (100/min, 1,000/h by
# default, the provider account's quota) would make this a measure of the quota, and the
# httpx client's info line per request would cost more than some requests do. The send
# pipeline gets scenario 6's batch and concurrency: at the defaults (10 sends in flight) a
# 50 ms provider caps any sender at 200 emails/s, and that cap is all this would measure.
SERVER_ENV = {
    "SENDGRID_API_KEY": API_KEY,
    "EMAIL_RATE_LIMIT_PER_MINUTE": "0",
    "EMAIL_RATE_LIMIT_PER_HOUR": "0",
    "EMAIL_BATCH_SIZE": "200",
    "EMAIL_SEND_CONCURRENCY": "128",
    "LOG_LEVEL": "warning",
}  # set-up, connects and the email deadline; only stops a hang

METRICS = [
    Metric("stored_s", "all stored s", False, lambda r: r["stored_s"]),
]


@contextlib.contextmanager
def standin(port: int, log: Path) -> Iterator[str]:
    """The SendGrid stand-in as a process of its own on the generator's core."""
    argv = [sys.executable, "-m", "tests.standins.sendgrid", "--port", str(port)]
    argv += ["--delay-ms", str(PROVIDER_DELAY_MS), "--api-key", API_KEY]
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(pinned(LOADGEN_CPU, argv), cwd=REPO, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + STANDIN_READY_S
            while True:
                try:
                    httpx.get(f"{url}/_standin/messages", timeout=0.5)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"SendGrid stand-in did not start; see {log}") from None
                    time.sleep(0.1)
            yield url
        finally:
            stop(proc)


def service_token() -> str:
    claims = {"sub": "bench-platform", "role": "service", "exp": int(time.time()) + TOKEN_TTL_S}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def measure(target: Target, users: int, stamp: str) -> dict[str, Any]:
    online = round(users * ONLINE_SHARE)
    entry: dict[str, Any] = {"target": target.name, "label": target.label, "subscribers": users}
    reason = target.available()
    if reason:
        return {**entry, "status": "skipped", "reason": reason}
    port, standin_port = free_port(), free_port()
    entry["server_command"] = shlex.join(pinned(SERVER_CPU, target.argv(port)))
    print(f"[{target.name}] marketplace alert to {users} users, {online} online", file=sys.stderr)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pitchey-bench-") as workdir,
            standin(standin_port, RAW_DIR / f"{stamp}-notify-standin.log") as standin_url,
            serve(
                target.argv(port),
                pitchey_env(Path(workdir)) | SERVER_ENV | {"SENDGRID_API_URL": standin_url},
                port,
                RAW_DIR / f"{stamp}-notify-{target.name}-{users}.log",
            ) as running,
        ):
            user_ids = [f"alert-u{i}" for i in range(users)]
            spec = NotifySpec(
                port=port,
                server_pid=running.pid,
                standin_port=standin_port,
                service_token=service_token(),
                user_ids=user_ids,
                user_tokens=[token(JWT_SECRET, user) for user in user_ids],
                online=online,
                per_request=PER_REQUEST,
            )
            out = run_generator("loadgen_notify", spec, GENERATOR_BOUND_S)
            result = msgspec.json.decode(out, type=NotifyResult)
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, httpx.HTTPError) as exc:
        print(f"[{target.name}] error: {exc}", file=sys.stderr)
        return {**entry, "status": "error", "reason": str(exc)}
    return {**entry, "status": "ok", "result": msgspec.to_builtins(result)}


def single_push(pushes: int) -> dict[str, Any]:
    """notification_push.py unchanged (unpinned, its own server); its stdout is one JSON."""
    argv = [sys.executable, "-m", "benchmarks.notification_push", "--pushes", str(pushes)]
    entry: dict[str, Any] = {
        "target": "pitchey-single-push",
        "label": "Pitchey Comms, one push at a time (issue 5)",
        "subscribers": 1,
        "kind": "single_push",
        "server_command": shlex.join(argv),
    }
    print(f"[pitchey] {pushes} single pushes, closed loop", file=sys.stderr)
    try:
        done = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, check=True, timeout=600)
        return {**entry, "status": "ok", "result": json.loads(done.stdout.splitlines()[-1])}
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        print(f"[pitchey] single push error: {exc}", file=sys.stderr)
        return {**entry, "status": "error", "reason": str(exc)}


def run(targets: list[Target], quick: bool, stamp: str) -> dict[str, Any]:
    users = QUICK_USERS if quick else FULL_USERS
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    entries = []
    if any(t.name == "pitchey" for t in targets):
        ours = next(t for t in targets if t.name == "pitchey")
        entries = [measure(ours, users, stamp), single_push(QUICK_PUSHES if quick else PUSHES)]
    settings = {
        "users": users,
        "online": round(users * ONLINE_SHARE),
        "per_request": PER_REQUEST,
        "provider_delay_ms": PROVIDER_DELAY_MS,
        "backend": "sqlite",
        "server_env": {k: v for k, v in SERVER_ENV.items() if k != "SENDGRID_API_KEY"},
    }
    return {"settings": settings, "entries": entries}
