"""The servers under test: ours, the three fan-out peers and the three chat peers, each with
how to start and prepare it."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt

from benchmarks.dialects import Room
from benchmarks.servers import REPO, Running

BENCH_DIR = Path(__file__).resolve().parent

NODE_PEER = BENCH_DIR / "peers" / "socketio_node"
TOKEN_TTL_S = 3600
JWT_SECRET = secrets.token_hex(32)  # one per harness run; tokens are minted with it below


@dataclass(frozen=True, slots=True)
class Audience:
    """Who connects: rooms[i // room_size] for subscriber i, plus tokens where needed."""

    rooms: list[Room]
    room_size: int
    subscriber_tokens: list[str] | None = None
    publisher_token: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    label: str
    dialect: str
    argv: Callable[[int], list[str]]
    env: Callable[[Path], dict[str, str]] = lambda workdir: {}  # workdir: fresh per measurement
    # Chat peers store every message in this one database ("sqlite" or "postgresql") and run
    # in the chat scenario only; None: a fan-out peer (stores nothing), or ours (both).
    chat_backend: str | None = None

    def available(self) -> str | None:
        """None when the target can run, else why not."""
        if self.name == "pitchey" and not (REPO / "server" / "__main__.py").exists():
            return "server/__main__.py does not exist yet"
        if self.name.startswith("socketio-node") and not shutil.which("node"):
            return "node is not installed"
        return None

    def prepare(self, running: Running, subscribers: int, room_size: int) -> Audience:
        groups = -(-subscribers // room_size)
        if self.name != "pitchey":
            return Audience(rooms=[f"room{k}" for k in range(groups)], room_size=room_size)
        return prepare_pitchey(running.port, JWT_SECRET, subscribers, room_size)


def token(secret: str, user_id: str) -> str:
    claims = {"sub": user_id, "name": user_id, "exp": int(time.time()) + TOKEN_TTL_S}
    return jwt.encode(claims, secret, algorithm="HS256")


def prepare_pitchey(port: int, secret: str, subscribers: int, room_size: int) -> Audience:
    """Create one conversation per `room_size` subscribers, each also holding the publisher."""
    users = [f"bench-u{i}" for i in range(subscribers)]
    publisher = token(secret, "bench-pub")
    rooms: list[Room] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        for start in range(0, subscribers, room_size):
            body = {"participantIds": [*users[start : start + room_size], "bench-pub"]}
            response = http.post(
                "/api/messages/conversations",
                json={**body, "title": "bench"},
                headers={"Authorization": f"Bearer {publisher}"},
            )
            response.raise_for_status()
            rooms.append(response.json()["id"])
    return Audience(
        rooms=rooms,
        room_size=room_size,
        subscriber_tokens=[token(secret, user) for user in users],
        publisher_token=publisher,
    )


def create_conversations(port: int, secret: str, groups: list[list[str]]) -> list[str]:
    """One conversation per group of user ids, created by the group's first member."""
    ids = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        for members in groups:
            response = http.post(
                "/api/messages/conversations",
                json={"participantIds": members, "title": "bench"},
                headers={"Authorization": f"Bearer {token(secret, members[0])}"},
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
    return ids


def prepare_chat(port: int, secret: str, conversations: int, prefix: str = "chat") -> Audience:
    """Two-person conversations: tokens[2k] and tokens[2k + 1] are the sides of rooms[k].
    Another `prefix` gives other users and conversations on the same server (the load
    generator's clientMsgIds repeat from run to run, and a repeat is acknowledged, not sent)."""
    pairs = [[f"{prefix}-a{k}", f"{prefix}-b{k}"] for k in range(conversations)]
    rooms: list[Room] = list(create_conversations(port, secret, pairs))
    return Audience(
        rooms=rooms,
        room_size=2,
        subscriber_tokens=[token(secret, user) for pair in pairs for user in pair],
    )


def prepare_chat_peer(conversations: int) -> Audience:
    """Chat peers' rooms: connections 2k and 2k + 1 join rooms[k]; no tokens."""
    return Audience(rooms=[f"chat{k}" for k in range(conversations)], room_size=2)


def _locked_versions(lockfile: Path) -> dict[str, str]:
    packages = json.loads(lockfile.read_text()).get("packages", {})
    return {path: meta.get("version", "") for path, meta in packages.items() if path}


def node_modules_current() -> bool:
    """node_modules holds exactly what package-lock.json pins (npm writes what it installed
    to node_modules/.package-lock.json), so a lockfile that gained a package (pg) reinstalls."""
    installed = NODE_PEER / "node_modules" / ".package-lock.json"
    if not installed.exists():
        return False
    return _locked_versions(installed) == _locked_versions(NODE_PEER / "package-lock.json")


def ensure_node_modules() -> None:
    """`npm ci`: installs exactly the lockfile, nothing by hand."""
    if not node_modules_current():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_PEER, check=True, timeout=300
        )


def pitchey_env(workdir: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{workdir}/bench.db",
        "JWT_SECRET": JWT_SECRET,
        # The benchmark raises the per-user message rate limit: 0 disables it.
        "MESSAGE_RATE_LIMIT_PER_MINUTE": "0",
        # One publisher creates every room, some as large as the schema allows.
        "CONVERSATION_CREATE_RATE_PER_MINUTE": "0",
        "CONVERSATION_MAX_PARTICIPANTS": "5001",
    }


def node_production(workdir: Path) -> dict[str, str]:
    # How Node services are deployed; socket.io and its dependencies skip debug paths.
    return {"NODE_ENV": "production"}


def chat_peer_sqlite(workdir: Path) -> dict[str, str]:
    # PostgreSQL peers get DATABASE_URL from the chat scenario's fresh database instead.
    return {"DATABASE_URL": f"sqlite:///{workdir}/peer.db"}


def all_targets() -> list[Target]:
    python = sys.executable
    starlette_naive = [python, "-m", "benchmarks.peers.starlette_naive", "--port"]
    return [
        Target(
            name="pitchey",
            label="Pitchey Comms (ours)",
            dialect="pitchey",
            argv=lambda port: [
                python,
                "-m",
                "server",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=pitchey_env,
        ),
        Target(
            name="ws-broadcast",
            label="Python websockets broadcast()",
            dialect="plain",
            argv=lambda port: [python, "-m", "benchmarks.peers.ws_broadcast", "--port", str(port)],
        ),
        Target(
            name="socketio-py",
            label="python-socketio (uvicorn)",
            dialect="socketio",
            argv=lambda port: [
                python,
                "-m",
                "benchmarks.peers.socketio_server",
                "--port",
                str(port),
            ],
        ),
        Target(
            name="socketio-node",
            label="Node socket.io",
            dialect="socketio",
            argv=lambda port: ["node", str(NODE_PEER / "server.js"), "--port", str(port)],
        ),
        Target(
            name="starlette-sqlite-naive",
            label="Starlette + aiosqlite, commit per message",
            dialect="plain",
            argv=lambda port: [*starlette_naive, str(port)],
            env=chat_peer_sqlite,
            chat_backend="sqlite",
        ),
        Target(
            name="starlette-pg-naive",
            label="Starlette + asyncpg, commit per message",
            dialect="plain",
            argv=lambda port: [*starlette_naive, str(port)],
            chat_backend="postgresql",
        ),
        Target(
            name="socketio-node-pg",
            label="Node socket.io + pg, INSERT per message",
            dialect="socketio",
            argv=lambda port: ["node", str(NODE_PEER / "server_pg.js"), "--port", str(port)],
            env=node_production,
            chat_backend="postgresql",
        ),
    ]


TARGET_NAMES = [target.name for target in all_targets()]
