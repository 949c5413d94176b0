"""The HTTP edge under hostile traffic: bodies counted while they stream, request heads
bounded in size and time, requests in flight bounded per process (issue 12, findings 2 and 6)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_ENV
from tests.servers import ServerProcess, uid, ws_client

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**TEST_ENV, "HTTP_HEADER_TIMEOUT": "1", "HTTP_MAX_CONCURRENCY": "3"}
    server = ServerProcess(Path(tmp_path_factory.mktemp("edge")), env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def rss_bytes(server: ServerProcess) -> int:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def lazy_body(total: int, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    """`total` bytes, made as they are sent: the client never holds them."""
    block = b"[" + b"0," * (chunk // 2 - 1) + b"0"
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece


def raw_request(server: ServerProcess, head: bytes, timeout: float = 5.0) -> bytes:
    """Send `head` on a fresh socket and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(head)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/api/email/webhooks/sendgrid", None),
        ("/api/messages/conversations", "user"),
    ],
)
async def test_chunked_200_mib_body_gets_413_and_server_memory_stays_flat(
    edge: ServerProcess, path: str, role: str | None
) -> None:
    headers = {"content-type": "application/json"}
    if role is not None:
        headers["authorization"] = f"Bearer {edge.token(uid(), role)}"
    async with httpx.AsyncClient(base_url=edge.url, timeout=120) as http:
        assert (await http.get("/healthz")).status_code == 200
        before = rss_bytes(edge)
        answer = await http.post(path, content=lazy_body(200 * MIB), headers=headers)
    grown = rss_bytes(edge) - before
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert grown < 50 * MIB, f"RSS grew by {grown / MIB:.0f} MiB"


@pytest.mark.parametrize("path", ["/api/email/webhooks/sendgrid", "/api/email/webhooks/ses"])
async def test_webhook_body_over_webhook_max_body_bytes_gets_413(
    edge: ServerProcess, path: str
) -> None:
    async with httpx.AsyncClient(base_url=edge.url, timeout=30) as http:
        answer = await http.post(path, content=lazy_body(6 * MIB))
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"


async def test_json_body_over_max_body_bytes_gets_413_not_400(edge: ServerProcess) -> None:
    async with edge.client(uid()) as http:
        answer = await http.post(
            "/api/messages/send",
            content=b'{"conversationId": "c", "content": "' + b"x" * (MIB + 1) + b'"}',
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"


def test_declared_content_length_above_the_limit_is_refused_before_the_body(
    edge: ServerProcess,
) -> None:
    # Nothing of the declared gigabyte is sent: the answer must come without it.
    answer = raw_request(
        edge,
        b"POST /api/email/webhooks/ses HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"payload_too_large"' in answer


def test_request_headers_over_16_kib_get_431_and_the_connection_closes(
    edge: ServerProcess,
) -> None:
    answer = raw_request(
        edge,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * (17 * 1024) + b"\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_eight_mib_header_gets_431_without_being_read_whole(edge: ServerProcess) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: "
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as sock:
        sock.sendall(head)
        try:
            for _ in range(128):  # up to 8 MiB, stopping when the server closes
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""
    # The answer may be lost to a reset when the server closes with unread input;
    # what matters is that the server did not wait for the whole header.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert httpx.get(f"{edge.url}/healthz").status_code == 200


def test_headers_just_under_the_limit_are_served(edge: ServerProcess) -> None:
    answer = raw_request(
        edge,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Padding: "
        + b"a" * (15 * 1024)
        + b"\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_half_a_request_line_is_closed_after_the_header_timeout(edge: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as sock:
        sock.sendall(b"GET / HT")
        started = time.monotonic()
        try:
            closed = sock.recv(1024) == b""
        except ConnectionResetError:
            closed = True
        waited = time.monotonic() - started
    assert closed and waited < 4


def test_a_slow_but_complete_request_head_is_served(edge: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HT")
        time.sleep(0.3)
        sock.sendall(b"TP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")


async def hold_request(server: ServerProcess) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A webhook request whose chunked body never ends: in flight until closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /api/email/webhooks/sendgrid HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n1\r\n[\r\n"
    )
    await writer.drain()
    return reader, writer


async def test_requests_past_http_max_concurrency_get_503_with_retry_after(
    edge: ServerProcess,
) -> None:
    held = [await hold_request(edge) for _ in range(3)]
    try:
        async with httpx.AsyncClient(base_url=edge.url, timeout=5) as http:
            deadline = time.monotonic() + 5
            answer = await http.get("/healthz")
            while answer.status_code != 503 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                answer = await http.get("/healthz")
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["error"]["code"] == "unavailable"
            for _, writer in held:
                writer.close()
            held = []
            deadline = time.monotonic() + 5
            while (await http.get("/healthz")).status_code != 200:
                assert time.monotonic() < deadline, "the bound was not released"
                await asyncio.sleep(0.05)
    finally:
        for _, writer in held:
            writer.close()


async def test_websockets_do_not_count_toward_http_max_concurrency(edge: ServerProcess) -> None:
    async with (
        ws_client(edge, uid()),
        ws_client(edge, uid()),
        ws_client(edge, uid()),
        ws_client(edge, uid()),
        httpx.AsyncClient(base_url=edge.url, timeout=5) as http,
    ):
        assert (await http.get("/healthz")).status_code == 200
