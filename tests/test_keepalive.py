"""Idle connections: one that sends nothing is closed with 1001; `ping` keeps it open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import BOTH_TRANSPORTS
from tests.servers import ServerProcess, uid, ws_client

# Also on uvicorn's own protocol: the fallback for an incompatible uvicorn (WS_FAST_PATH).
pytestmark = BOTH_TRANSPORTS


async def test_silent_connection_is_closed_after_the_idle_timeout(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(WS_IDLE_TIMEOUT="1")
    async with ws_client(server, uid()) as silent, ws_client(server, uid()) as chatty:
        started = time.monotonic()

        async def keep_pinging() -> None:
            while time.monotonic() - started < 3:
                await chatty.send({"type": "ping"})
                await chatty.expect("pong")
                await asyncio.sleep(0.3)

        pinging = asyncio.create_task(keep_pinging())
        with pytest.raises(ConnectionClosed) as closed:
            await silent.recv(timeout=5)
        waited = time.monotonic() - started
        await pinging
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "idle timeout")
        # Closed after the timeout, and at most a quarter of it late (the sweep period).
        assert 1.0 <= waited < 2.5
        # The one that kept pinging is still served.
        await chatty.send({"type": "ping"})
        assert (await chatty.expect("pong"))["type"] == "pong"
