"""Subscribing while PostgreSQL is away: a clear, quick `unavailable`, and the room survives.

The server reaches PostgreSQL through a TCP proxy (tests/tcp_proxy.py) that the test cuts
and restores; the shared PostgreSQL itself is never disturbed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.chromium import Browser
from tests.servers import ServerProcess, WsClient, conversation, uid, ws_client
from tests.services import PG_HOST, PG_PORT, create_pg_database, drop_pg_database
from tests.tcp_proxy import TcpProxy, tcp_proxy
from tests.test_browser_client import open_demo

RETRY_AFTER = 0.5


@pytest.fixture
def proxied(make_server: Callable[..., ServerProcess]) -> Iterator[tuple[ServerProcess, TcpProxy]]:
    """A server whose every PostgreSQL connection goes through a proxy the test controls."""
    url = create_pg_database()
    try:
        with tcp_proxy(PG_HOST, PG_PORT) as proxy:
            through = url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")
            server = make_server(
                DATABASE_URL=through, OUTAGE_RETRY_AFTER=str(RETRY_AFTER), ROOM_IO_TIMEOUT="2"
            )
            try:
                yield server, proxy
            finally:
                server.stop()
    finally:
        drop_pg_database(url)


async def _error(ws: WsClient, timeout: float) -> dict[str, object]:
    """The next error frame; `subscribed`/`message`/presence frames before it are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await ws.recv(max(0.01, deadline - time.monotonic()))
        if frame["type"] == "error":
            return frame
        assert frame["type"] != "subscribed", frame


async def _still_open(ws: WsClient) -> None:
    await ws.send({"type": "ping"})
    await ws.expect("pong", timeout=2)


async def _figure(server: ServerProcess, name: str) -> float:
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split(" ")[1])
    raise AssertionError(f"{name} not reported")


async def _eventually_zero(server: ServerProcess, name: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (figure := await _figure(server, name)) != 0:
        assert time.monotonic() < deadline, f"{name} stays at {figure}"


async def test_a_replay_that_fails_answers_that_subscribe_unavailable_and_spares_the_room(
    proxied: tuple[ServerProcess, TcpProxy],
) -> None:
    server, proxy = proxied
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a, server.client(alice) as http:
        await a.subscribe(conv)
        for n in range(3):
            sent = await http.post(
                "/api/messages/send", json={"conversationId": conv, "content": str(n)}
            )
            assert sent.status_code == 201, sent.text
        await a.messages(3)
        async with ws_client(server, bob) as b:
            await b.subscribe(conv)  # the room knows bob; his replay is what fails below
            await b.send({"type": "unsubscribe", "conversationId": conv})
            await b.expect("unsubscribed")
            proxy.cut()
            try:
                started = time.monotonic()
                await b.send({"type": "subscribe", "conversationId": conv, "since": 0})
                error = await _error(b, timeout=5)
                assert time.monotonic() - started < 1.0
                assert (error["code"], error["ref"]) == ("unavailable", conv)
                assert RETRY_AFTER <= float(error["retryAfter"]) <= 2 * RETRY_AFTER  # type: ignore[arg-type]
                # The room and alice's session in it were left alone.
                await _still_open(a)
                await _still_open(b)
            finally:
                proxy.restore()
            again = await b.subscribe(conv, since=0)
            assert again["replayed"] == 3
            assert [m["content"] for m in await b.messages(3)] == ["0", "1", "2"]
    await _eventually_zero(server, "pitchey_ws_connections")


async def test_a_room_that_cannot_start_answers_unavailable_with_retry_after_and_keeps_the_socket(
    proxied: tuple[ServerProcess, TcpProxy],
) -> None:
    server, proxy = proxied
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a:
        # Once subscribed and gone: the membership is known, the room has stopped.
        await a.subscribe(conv)
        await a.send({"type": "unsubscribe", "conversationId": conv})
        await a.expect("unsubscribed")
        await _eventually_zero(server, "pitchey_rooms_active")
        proxy.cut()
        try:
            await a.send({"type": "subscribe", "conversationId": conv})
            error = await _error(a, timeout=5)
            assert (error["code"], error["ref"]) == ("unavailable", conv)
            assert RETRY_AFTER <= float(error["retryAfter"]) <= 2 * RETRY_AFTER  # type: ignore[arg-type]
            await _still_open(a)
        finally:
            proxy.restore()
        # The database is back: the same socket subscribes without reconnecting.
        await a.subscribe(conv)
    await _eventually_zero(server, "pitchey_ws_connections")


async def test_the_browser_client_subscribes_again_after_retry_after_on_the_same_socket(
    proxied: tuple[ServerProcess, TcpProxy], browser: Browser
) -> None:
    server, proxy = proxied
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    page = await open_demo(browser, server, alice, conv)
    client = "window.pitchey.client"
    await page.evaluate(
        f"window.firstSocket = {client}.socket; window.errors = [];"
        f"{client}.addEventListener('error', (e) => window.errors.push(e.detail));"
        f"{client}.unsubscribe({json.dumps(conv)})"
    )
    await _eventually_zero(server, "pitchey_rooms_active")
    proxy.cut()
    try:
        # The room cannot start: the server answers `unavailable` with `retryAfter`.
        await page.evaluate(f"{client}.subscribe({json.dumps(conv)}).catch(() => null)")
        await page.wait_for("window.errors.some((e) => e.code === 'unavailable')")
    finally:
        proxy.restore()
    # After the hint the client subscribes again by itself, on the socket it had.
    await page.wait_for(
        f"{client}.conversations.get({json.dumps(conv)})?.subscribed === true", timeout=10
    )
    assert await page.evaluate(f"{client}.socket === window.firstSocket") is True
    await page.close()


async def test_a_database_outage_logs_failed_batches_once_and_their_end_once(
    proxied: tuple[ServerProcess, TcpProxy],
) -> None:
    server, proxy = proxied
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        # Stored once before: the conversation's members are known, so sends reach the writer.
        sent = await http.post("/api/messages/send", json={"conversationId": conv, "content": "w"})
        assert sent.status_code == 201, sent.text
        proxy.cut()
        try:
            for _ in range(20):
                sent = await http.post(
                    "/api/messages/send", json={"conversationId": conv, "content": "x"}
                )
                assert sent.status_code == 503, sent.text
        finally:
            proxy.restore()
        sent = await http.post("/api/messages/send", json={"conversationId": conv, "content": "y"})
        assert sent.status_code == 201, sent.text
    log = server.log_tail(1_000_000)
    lines = [line for line in log.splitlines() if "not stored" in line]
    assert len(lines) == 2, lines  # when it started, and when it ended
    assert "recovered after" in lines[1] and "20 failures" in lines[1]
