"""Where scenario 5's server time goes: py-spy on our server under the REST load generator.

    .venv/bin/pip install py-spy
    .venv/bin/python -m benchmarks.profile_rest [--seconds 8] [--out /tmp/rest-profile]

Starts our server exactly as scenarios/rest.py does (pinned to the server core, a fresh
SQLite database, the same settings), prepares the same conversations, runs
loadgen_rest.py (history, then send) and, in the middle of each phase, records 5 s of
`py-spy record --gil --format raw` (only samples in which a thread holds the GIL, so
waiting and I/O outside Python are left out). Prints, per phase, the requests/s and
server CPU µs per request the generator measured, each thread's user/system CPU, and the
share of samples per cost centre: each sample goes to the innermost frame that belongs to
a centre, so the shares add up to 100%. The raw stacks stay in `--out` for a closer look
(e.g. `py-spy`'s raw format loads in speedscope).
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgspec
import psutil

from benchmarks.scenarios import rest
from benchmarks.servers import LOADGEN_CPU, REPO, free_port, pinned, serve
from benchmarks.spec import RestResult, RestSpec
from benchmarks.targets import all_targets

RECORD_SECONDS = 5.0
CENTRES: list[tuple[str, str]] = [
    ("token verification (PyJWT)", r"verify_token|PyJWT|PyJWS|jwt/"),
    (
        "route matching",
        r"Route\.matches|first_full_match|Router\.app \(starlette/routing\.py:70[01]\)",
    ),
    ("SQLite round trips (aiosqlite queue, wake-ups, cursors)", r"aiosqlite|storage/db\.py"),
    (
        "rows -> StoredMessage -> Message",
        r"_message \(|message_view|iso \(|MessageStore\.messages|Messaging\.history\.<locals>",
    ),
    (
        "JSON encode / decode (msgspec)",
        r"encode \(schemas/codec|decode_json|check_free_json|free_json_problem",
    ),
    (
        "group commit (writer task on the loop)",
        r"MessageWriter\._|MessageStore\._?insert_batch|record_events|after_commit|publish_many",
    ),
    (
        "our middleware (request id, CORS, concurrency, NUL)",
        r"server/middleware\.py|starlette/middleware/cors\.py",
    ),
    ("request body read", r"read_body|json_body|Request\.stream"),
    ("HTTP protocol (httptools, head timer, uvicorn send)", r"httptools_impl|http_protocol\.py"),
    ("Starlette request/response plumbing", r"starlette/"),
    (
        "our routes and services (the rest)",
        r"\((server/(?!cli|__main__)|rooms/|attachments/|storage/|base/)",
    ),
]
OTHER = "event loop (uvloop) and other"


def centres(raw: Path) -> tuple[int, dict[str, float]]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        for frame in reversed(stack.split(";")):
            hit = next((name for name, pattern in CENTRES if re.search(pattern, frame)), None)
            if hit is not None:
                counts[hit] += n
                break
        else:
            counts[OTHER] += n
    names = [name for name, _ in CENTRES] + [OTHER]
    return total, {name: counts[name] / total if total else 0.0 for name in names}


def thread_cpu(pid: int) -> dict[int, tuple[float, float]]:
    return {t.id: (t.user_time, t.system_time) for t in psutil.Process(pid).threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--out", type=Path, default=Path("/tmp/rest-profile"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pyspy = str(Path(sys.executable).parent / "py-spy")
    target = next(t for t in all_targets() if t.name == "pitchey")
    port = free_port()
    threads: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="pitchey-profile-") as workdir,
        serve(target.argv(port), target.env(Path(workdir)), port, args.out / "server.log") as run,
    ):
        bearer, ids = rest.prepare_ours(run.port)
        spec = RestSpec(
            port=port,
            server_pid=run.pid,
            token=bearer,
            conversations=ids,
            concurrency=rest.CONCURRENCY,
            seconds=args.seconds,
        )
        generator = subprocess.Popen(
            pinned(LOADGEN_CPU, [sys.executable, "-m", "benchmarks.loadgen_rest"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        assert generator.stdin is not None and generator.stdout is not None
        generator.stdin.write(msgspec.json.encode(spec))
        generator.stdin.close()
        started = time.monotonic()

        def record(op: str, at: float) -> None:
            time.sleep(max(0.0, started + at - time.monotonic()))
            before = thread_cpu(run.pid)
            command = [pyspy, "record", "--pid", str(run.pid), "--gil", "--rate", "200"]
            command += ["--duration", str(int(RECORD_SECONDS)), "--format", "raw"]
            subprocess.run(
                [*command, "--output", str(args.out / f"{op}.txt")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            after = thread_cpu(run.pid)
            spent = []
            for tid, (user, system) in after.items():
                user0, system0 = before.get(tid, (0.0, 0.0))
                if user - user0 + system - system0 > 0.01:
                    name = "main" if tid == run.pid else f"thread {tid}"
                    spent.append(f"{name} user {user - user0:.2f} s sys {system - system0:.2f} s")
            threads[op] = "; ".join(spent)

        # Each phase: 1 s of warm-up, then `seconds` measured; record in its middle.
        middle = max(1.0, (args.seconds - RECORD_SECONDS) / 2)
        recorders = [
            threading.Thread(target=record, args=("history", 1.0 + middle)),
            threading.Thread(target=record, args=("send", 2.0 + args.seconds + middle)),
        ]
        for recorder in recorders:
            recorder.start()
        for recorder in recorders:
            recorder.join()
        result = msgspec.json.decode(generator.stdout.read(), type=RestResult)
        generator.wait()
    for phase in result.phases:
        total, shares = centres(args.out / f"{phase.op}.txt")
        print(
            f"\n{phase.op}: {phase.per_s:.0f}/s, server CPU {phase.server_cpu_us_per_request} µs"
            f"/request; CPU over {RECORD_SECONDS:.0f} s: {threads.get(phase.op, '?')}"
        )
        print(f"{total} samples holding the GIL")
        for name, share in sorted(shares.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {share * 100:.0f}% |")


if __name__ == "__main__":
    main()
