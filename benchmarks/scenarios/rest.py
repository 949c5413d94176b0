"""Scenario 5, REST: history reads and sends per second, closed loop, against a ceiling.

`CONCURRENCY` keep-alive HTTP/1.1 clients (benchmarks/http1.py) first read
``GET /api/messages/{id}?limit=50`` of a conversation holding more than 50 messages, then
send ``POST /api/messages/send`` into `CONVERSATIONS` conversations. The ceiling is a bare
Starlette JSON app on uvicorn with the same paths (peers/starlette_json.py) on the same core.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
import msgspec

from benchmarks.harness import measure_with, run_generator
from benchmarks.scenarios import Metric
from benchmarks.servers import Running
from benchmarks.spec import RestResult, RestSpec
from benchmarks.targets import JWT_SECRET, Target, create_conversations, token

CONCURRENCY = 32  # enough requests in flight to keep one server core busy, few enough to
# keep the generator (one core, ~25 µs of Python per request) well ahead of it
CONVERSATIONS = 8  # sends spread over a few conversations, as many users would
HISTORY_SIZE = 60  # more than the page of 50 that is read
FULL_SECONDS = 10.0
QUICK_SECONDS = 3.0
GENERATOR_BOUND_S = 120.0
USER = "rest-u"

METRICS = [
    Metric("history_per_s", "history reads/s", True, lambda r: _phase(r, "history")["per_s"]),
    Metric("send_per_s", "sends/s", True, lambda r: _phase(r, "send")["per_s"]),
]


def _phase(result: dict[str, Any], op: str) -> dict[str, Any]:
    return next(p for p in result["phases"] if p["op"] == op)


def starlette_target() -> Target:
    return Target(
        name="starlette-json",
        label="bare Starlette JSON (uvicorn)",
        dialect="http",
        argv=lambda port: [
            sys.executable,
            "-m",
            "benchmarks.peers.starlette_json",
            "--port",
            str(port),
        ],
    )


def prepare_ours(port: int) -> tuple[str, list[str]]:
    """Conversations of USER and one other participant; the first holds HISTORY_SIZE messages."""
    ids = create_conversations(
        port, JWT_SECRET, [[USER, f"rest-p{k}"] for k in range(CONVERSATIONS)]
    )
    bearer = token(JWT_SECRET, USER)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        for i in range(HISTORY_SIZE):
            body = {"conversationId": ids[0], "content": f"history {i}".ljust(100, "x")}
            response = http.post(
                "/api/messages/send", json=body, headers={"Authorization": f"Bearer {bearer}"}
            )
            response.raise_for_status()
    return bearer, ids


def run(targets: list[Target], quick: bool, stamp: str) -> dict[str, Any]:
    seconds = QUICK_SECONDS if quick else FULL_SECONDS
    chosen = [t for t in targets if t.name == "pitchey"] + [starlette_target()]
    entries = []
    for target in chosen:

        def body(running: Running, ours: bool = target.name == "pitchey") -> RestResult:
            if ours:
                bearer, ids = prepare_ours(running.port)
            else:
                bearer, ids = None, [f"c{k}" for k in range(CONVERSATIONS)]
            spec = RestSpec(
                port=running.port,
                server_pid=running.pid,
                token=bearer,
                conversations=ids,
                concurrency=CONCURRENCY,
                seconds=seconds,
            )
            return msgspec.json.decode(
                run_generator("loadgen_rest", spec, GENERATOR_BOUND_S), type=RestResult
            )

        entries.append(measure_with(target, "rest", CONCURRENCY, stamp, body))
    settings = {"concurrency": CONCURRENCY, "seconds": seconds, "history_limit": 50}
    return {"settings": settings, "entries": entries}
