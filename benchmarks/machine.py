"""What the figures were measured on: machine, runtimes and package versions."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.servers import REPO
from benchmarks.targets import NODE_PEER

PACKAGES = [
    "uvicorn", "starlette", "websockets", "uvloop", "httptools", "msgspec",
    "python-socketio", "python-engineio", "picows", "psutil",
]  # fmt: skip


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def command_output(argv: list[str]) -> str | None:
    if not shutil.which(argv[0]):
        return None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=REPO)
    return done.stdout.strip() or None


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def node_package_version(name: str) -> str | None:
    manifest = NODE_PEER / "node_modules" / name / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


def describe() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": command_output(["node", "--version"]),
        "packages": {name: version(name) for name in PACKAGES},
        "node_packages": {"socket.io": node_package_version("socket.io")},
        "git_commit": command_output(["git", "rev-parse", "--short", "HEAD"]),
        "server_cpu": "taskset -c 0" if shutil.which("taskset") else "not pinned",
        "loadgen_cpu": "taskset -c 1" if shutil.which("taskset") else "not pinned",
    }
