"""Run by plain uvicorn (its own WebSocket protocol, no direct sink): sessions drain through ASGI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_ENV
from tests.servers import ServerProcess, conversation, uid, ws_client


@dataclass
class PlainUvicorn(ServerProcess):
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "server.app:create_app",
            "--factory",
            "--interface",
            "asgi3",
            "--ws",
            "websockets-sansio",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = PlainUvicorn(tmp_path / "plain", dict(TEST_ENV))
    proc.start()
    yield proc
    proc.stop()


async def test_chat_and_recovery_work_without_the_direct_sink(plain: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(plain, alice, bob)
    async with ws_client(plain, alice) as a, ws_client(plain, bob) as b:
        await a.subscribe(conv)
        await b.subscribe(conv)
        for i in range(20):
            await a.send({"type": "send", "conversationId": conv, "content": f"m{i}"})
        assert [m["seq"] for m in await b.messages(20)] == list(range(1, 21))
    async with ws_client(plain, bob) as again:
        subscribed = await again.subscribe(conv, since=15)
        assert subscribed["replayed"] == 5
        assert [m["seq"] for m in await again.messages(5)] == [16, 17, 18, 19, 20]
