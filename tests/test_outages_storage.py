"""A full disk under SQLite: the real cause reported, readiness false, recovery without restart.

The database lives on a small tmpfs of its own (mounting needs root, as in CI); the test
fills it with a file, then deletes the file.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from storage.db import DatabaseUnavailable
from storage.postgres import PostgresDatabase
from tests.servers import ServerProcess, WsClient, conversation, uid, ws_client
from tests.services import create_pg_database, drop_pg_database, missing


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        missing("a tmpfs mount", done.stderr.decode(errors="replace").strip() or "mount failed")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def _error(ws: WsClient) -> dict[str, Any]:
    """The next error frame (our own presence and the like are skipped)."""
    while True:
        frame = await ws.recv(10)
        if frame["type"] == "error":
            return frame


def _fill(disk: Path) -> Path:
    """Write a file until not one more byte fits."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


async def test_a_full_disk_is_reported_as_storage_full_and_readiness_fails_until_space_returns(
    make_server: Callable[..., ServerProcess], small_disk: Path
) -> None:
    server = make_server(DATABASE_URL=f"sqlite:///{small_disk}/pitchey.db")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as ws, server.client(alice) as http:
        await ws.subscribe(conv)
        assert (await http.get("/readyz")).status_code == 200
        filler = _fill(small_disk)
        try:
            for n in range(2):  # the second batch meets the state the first one left
                await ws.send(
                    {"type": "send", "conversationId": conv, "content": "x", "clientMsgId": f"m{n}"}
                )
                error = await _error(ws)
                assert (error["code"], error["ref"]) == ("storage_full", f"m{n}"), error
                assert error["retryAfter"] > 0
            rest = await http.post(
                "/api/messages/send", json={"conversationId": conv, "content": "y"}
            )
            assert rest.status_code == 503, rest.text
            assert rest.json()["error"]["code"] == "storage_full"
            assert int(rest.headers["retry-after"]) >= 1
            ready = await http.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.json()["checks"]["writer"] == "error: storage_full"
        finally:
            os.unlink(filler)
        # Space is back: ready again without a single send, and sends are stored again.
        deadline = time.monotonic() + 5
        while (await http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "/readyz stays 503 after space was freed"
        await ws.send({"type": "send", "conversationId": conv, "content": "z", "clientMsgId": "m9"})
        ack = await ws.expect("ack", timeout=10)
        assert ack["seq"] == 1
    assert "cannot rollback" not in server.log_tail(200_000)


async def test_asyncpg_internal_client_error_is_unavailable_and_its_connection_is_discarded() -> (
    None
):
    url = create_pg_database()
    db = PostgresDatabase(url, min_size=1, max_size=1)
    try:
        await db.connect()
        pids = []
        with pytest.raises(DatabaseUnavailable):
            async with db.transaction() as tx:
                pids.append(await tx.fetchrow("SELECT pg_backend_pid()"))
                # What asyncpg raises from a connection broken mid-operation by a restart.
                raise asyncpg.InternalClientError(
                    "cannot switch to state 15; another operation is in progress"
                )
        # The pool (of one) replaced that connection: the next query works, on another backend.
        assert await db.fetchrow("SELECT pg_backend_pid()") not in (None, pids[0])
    finally:
        await db.close()
        drop_pg_database(url)
