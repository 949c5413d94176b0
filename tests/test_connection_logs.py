"""A connection writes no log line of its own at the default level; debug keeps them."""

from __future__ import annotations

from collections.abc import Callable

from websockets.asyncio.client import connect

from tests.servers import ServerProcess, uid

PER_CONNECTION = ('"WebSocket /ws', "connection open", "connection closed")


async def ping_once(server: ServerProcess) -> None:
    async with connect(f"{server.ws_url}?token={server.token(uid())}") as conn:
        await conn.send('{"type":"ping"}')
        await conn.recv()


async def test_a_websocket_connection_writes_no_line_at_info(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(LOG_LEVEL="info")

    await ping_once(server)

    log = server.log_tail(100_000)
    assert [line for line in PER_CONNECTION if line in log] == []


async def test_debug_keeps_the_lines_of_each_connection(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(LOG_LEVEL="debug")

    await ping_once(server)

    assert "connection open" in server.log_tail(100_000)
