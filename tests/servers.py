"""Real servers for tests: our service as a subprocess on a free port, and helpers to talk to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """`python -m server serve` with its own data folder and environment."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    secret: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def command(self) -> list[str]:
        """How the server is started: the CLI, as a user would."""
        return [
            sys.executable,
            "-m",
            "server",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, **self.env, "JWT_SECRET": self.secret, "DATA_DIR": str(self.data_dir)}
        env.setdefault("DATABASE_URL", f"sqlite:///{self.data_dir}/pitchey.db")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start in {timeout}s: {self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        logs = sorted(self.data_dir.glob("server-*.log"))
        return "".join(p.read_text(errors="replace") for p in logs)[-chars:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        self.stop(signal.SIGKILL)

    def token(self, user_id: str, role: str = "user", ttl: float = 3600, **claims: Any) -> str:
        payload = {"sub": user_id, "exp": int(time.time() + ttl), "role": role, **claims}
        return jwt.encode(payload, self.secret, algorithm="HS256")

    def client(self, user_id: str, role: str = "user") -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token(user_id, role)}"},
            timeout=10,
        )


def uid(prefix: str = "u") -> str:
    """A user or object id no other test uses, so tests share a server safely."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class WsClient:
    """A real websockets client with helpers that wait with deadlines, never sleep."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.seen: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        self.seen.append(frame)
        return frame

    async def expect(
        self,
        kind: str,
        timeout: float = 5.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The next frame of `kind` (matching `where`); other frames are skipped, errors raise."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind!r} frame within {timeout}s; saw {self.seen[-5:]}")
            frame = await self.recv(remaining)
            if frame["type"] == kind and (where is None or where(frame)):
                return frame
            if frame["type"] == "error":
                raise AssertionError(f"expected {kind!r}, got {frame}")

    async def messages(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        found = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            frame = await self.expect("message", max(0.01, deadline - time.monotonic()))
            found.append(frame["message"])
        return found

    async def subscribe(self, conversation_id: str, since: int | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "subscribe", "conversationId": conversation_id}
        if since is not None:
            frame["since"] = since
        await self.send(frame)
        return await self.expect(
            "subscribed", where=lambda f: f["conversationId"] == conversation_id
        )

    async def close(self) -> None:
        await self.conn.close()


@contextlib.asynccontextmanager
async def ws_client(server: ServerProcess, user_id: str, **kwargs: Any) -> AsyncIterator[WsClient]:
    # A generous client queue: tests that leave frames unread must not stall the close handshake.
    kwargs.setdefault("max_queue", 4096)
    async with connect(f"{server.ws_url}?token={server.token(user_id)}", **kwargs) as conn:
        yield WsClient(conn)


async def conversation(server: ServerProcess, *users: str, title: str | None = None) -> str:
    async with server.client(users[0]) as http:
        body: dict[str, Any] = {"participantIds": list(users[1:])}
        if title:
            body["title"] = title
        response = await http.post("/api/messages/conversations", json=body)
        assert response.status_code in (200, 201), response.text
        conversation_id: str = response.json()["id"]
        return conversation_id


async def send_rest(server: ServerProcess, user: str, conv: str, content: str) -> dict[str, Any]:
    """A message sent over REST (201 expected); the stored message."""
    async with server.client(user) as http:
        response = await http.post(
            "/api/messages/send", json={"conversationId": conv, "content": content}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


async def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll the async `check` until it returns something true; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


class RawWebSocket:
    """A WebSocket client on a bare blocking socket that reads only when told to.

    Client libraries read in the background; a consumer that truly stops reading
    needs a socket nobody else reads from.
    """

    def __init__(self, server: ServerProcess, user_id: str, rcvbuf: int = 4096) -> None:
        import base64
        import os as _os

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", server.port))
        key = base64.b64encode(_os.urandom(16)).decode()
        request = (
            f"GET /ws?token={server.token(user_id)} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self._buffer = b""

    def send_json(self, frame: dict[str, Any]) -> None:
        import os as _os
        import struct

        payload = json.dumps(frame).encode()
        mask = _os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        length = len(payload)
        header = bytes([0x81])
        if length < 126:
            header += bytes([0x80 | length])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        self.sock.sendall(header + mask + masked)

    def frames(self, timeout: float = 20.0) -> list[tuple[int, bytes]]:
        """Read until the server's close frame; return (opcode, payload) of every frame."""
        import struct

        self.sock.settimeout(timeout)
        data = b""
        found: list[tuple[int, bytes]] = []
        offset = 0
        while not found or found[-1][0] != 0x8:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
            while True:
                if offset + 2 > len(data):
                    break
                opcode = data[offset] & 0x0F
                length = data[offset + 1] & 0x7F
                start = offset + 2
                # The extended length may itself be split across reads: wait for all of it.
                extra = {126: 2, 127: 8}.get(length, 0)
                if start + extra > len(data):
                    break
                if extra == 2:
                    (length,) = struct.unpack("!H", data[start : start + 2])
                elif extra == 8:
                    (length,) = struct.unpack("!Q", data[start : start + 8])
                start += extra
                if start + length > len(data):
                    break
                found.append((opcode, data[start : start + length]))
                offset = start + length
        return found

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """moto's standalone server in a process of its own.

    moto keeps its state per process: an in-process server shared by several test
    modules lets one module's S3 objects break another's `/moto-api/data.json`.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/moto-api/", timeout=0.5).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto server did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
