"""Start a server under test as a pinned subprocess on a free port, and stop it."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVER_CPU = "0"  # the server owns core 0, the load generator core 1
LOADGEN_CPU = "1"
REPO = Path(__file__).resolve().parent.parent
READY_DEADLINE_S = 30.0  # a cold Python server imports in ~1-2 s; Node in well under one
STOP_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class Running:
    pid: int
    port: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: str, argv: list[str]) -> list[str]:
    """Prefix argv with taskset when the machine has it (taskset execs, keeping the pid)."""
    return ["taskset", "-c", cpu, *argv] if shutil.which("taskset") else argv


def raise_fd_limit() -> None:
    """preexec_fn: let the child hold as many sockets as the hard limit allows."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    url = f"http://127.0.0.1:{port}/healthz"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {READY_DEADLINE_S} s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_GRACE_S)


@contextlib.contextmanager
def serve(
    argv: list[str], env: dict[str, str], port: int, log: Path, cpu: str | None = SERVER_CPU
) -> Iterator[Running]:
    """Run argv pinned to `cpu` (None: unpinned) from the repository root until the block ends."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            pinned(cpu, argv) if cpu else argv,
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_fd_limit,
        )
        try:
            wait_ready(proc, port, log)
            yield Running(pid=proc.pid, port=port)
        finally:
            stop(proc)
