"""A PostgreSQL outage is logged as a story (start, counts, end), not a line per retry.

The server reaches PostgreSQL through a TCP proxy (tests/tcp_proxy.py) that the test cuts
for a few seconds while requests keep coming; the shared PostgreSQL is never disturbed.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.servers import ServerProcess
from tests.services import PG_HOST, PG_PORT, create_pg_database, drop_pg_database
from tests.tcp_proxy import TcpProxy, tcp_proxy

CUT_SECONDS = 3.0


@pytest.fixture
def proxied(make_server: Callable[..., ServerProcess]) -> Iterator[tuple[ServerProcess, TcpProxy]]:
    url = create_pg_database()
    try:
        with tcp_proxy(PG_HOST, PG_PORT) as proxy:
            through = url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")
            server = make_server(DATABASE_URL=through)
            try:
                yield server, proxy
            finally:
                server.stop()
    finally:
        drop_pg_database(url)


def _records(server: ServerProcess) -> list[dict[str, Any]]:
    lines = server.log_tail(10_000_000).splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


async def _cut_under_load(server: ServerProcess, proxy: TcpProxy) -> list[dict[str, Any]]:
    """Cut PostgreSQL for CUT_SECONDS while requests that need it keep coming; return what
    the server logged from the cut until it was ready again."""
    before = len(_records(server))
    async with server.client("alice") as http:
        proxy.cut()
        try:
            end = time.monotonic() + CUT_SECONDS
            while time.monotonic() < end:
                await http.get("/api/messages/conversations")
                await http.post("/api/messages/send", json={"conversationId": "x", "content": "y"})
                await http.get("/readyz")
        finally:
            proxy.restore()
        deadline = time.monotonic() + 10
        while (await http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, server.log_tail()
    return _records(server)[before:]


def _pool_story(records: list[dict[str, Any]]) -> list[str]:
    return [r["message"] for r in records if "PostgreSQL pool cannot reconnect" in r["message"]]


async def _metric(server: ServerProcess, line_start: str) -> float:
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not reported")


async def test_a_three_second_database_cut_logs_each_failure_once_without_tracebacks(
    proxied: tuple[ServerProcess, TcpProxy],
) -> None:
    server, proxy = proxied
    records = await _cut_under_load(server, proxy)
    told = "\n".join(f"{r['logger']}: {r['message']}" for r in records)
    assert not [r for r in records if "exception" in r], told
    # Each source: once when it started, once when it ended (a count line needs 10 s).
    per_source = Counter((r["logger"], r["message"].split(":", 1)[0]) for r in records)
    assert max(per_source.values()) <= 2, told
    assert len(records) <= 10, told


async def test_the_pools_reconnect_attempts_are_told_as_start_and_end_and_all_counted(
    proxied: tuple[ServerProcess, TcpProxy],
) -> None:
    server, proxy = proxied
    before = len(_records(server))
    await _cut_under_load(server, proxy)
    deadline = time.monotonic() + 5
    while not (pool := _pool_story(_records(server)[before:]))[-1:] or "recovered" not in pool[-1]:
        assert time.monotonic() < deadline, pool
        time.sleep(0.05)
    assert len(pool) == 2, pool
    assert "Connection" in pool[0], pool
    ended = re.search(r"recovered after [\d.]+ s and (\d+) failures", pool[1])
    assert ended is not None, pool
    counted = await _metric(
        server, 'pitchey_repeated_failures_total{failure="PostgreSQL pool cannot reconnect"}'
    )
    assert counted == int(ended.group(1)) >= 1
