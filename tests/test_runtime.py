"""The process watches its own pauses: GC and event-loop lag in /metrics, and the GC policy."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import httpx

from tests.servers import ServerProcess, uid, ws_client


async def scrape(server: ServerProcess) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def wait_for_figure(
    server: ServerProcess, check: Callable[[dict[str, float]], bool], deadline: float = 10.0
) -> dict[str, float]:
    end = time.monotonic() + deadline
    while True:
        figures = await scrape(server)
        if check(figures) or time.monotonic() > end:
            return figures
        await asyncio.sleep(0.1)


async def test_metrics_report_gc_pauses_and_event_loop_lag(
    make_server: Callable[..., ServerProcess],
) -> None:
    # A low threshold so that a little work makes young-generation collections to time.
    server = make_server(GC_GEN0_THRESHOLD="100")
    async with server.client(uid()) as http:
        for _ in range(200):
            await http.get("/api/messages/conversations")
    figures = await wait_for_figure(
        server,
        lambda f: (
            f.get("pitchey_event_loop_lag_seconds_count", 0) >= 1
            and f.get('pitchey_gc_pause_seconds_count{generation="0"}', 0) >= 1
        ),
    )

    assert figures["pitchey_event_loop_lag_seconds_count"] >= 1
    assert "pitchey_event_loop_lag_max_seconds" in figures
    assert figures['pitchey_gc_pause_seconds_count{generation="0"}'] >= 1
    assert figures['pitchey_gc_pause_max_seconds{generation="0"}'] > 0


async def test_start_up_objects_are_frozen_out_of_the_collector(server: ServerProcess) -> None:
    figures = await scrape(server)

    assert figures["pitchey_gc_frozen_objects"] > 10_000


async def test_a_burst_of_connections_is_frozen(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(GC_FREEZE_AFTER_CONNECTIONS="20")
    before = (await scrape(server)).get("pitchey_gc_freezes_total", 0)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(25):
            await stack.enter_async_context(ws_client(server, uid()))
        after = await wait_for_figure(
            server, lambda f: f.get("pitchey_gc_freezes_total", 0) > before, deadline=10.0
        )

    assert after["pitchey_gc_freezes_total"] > before


async def test_freezing_can_be_switched_off(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(GC_FREEZE="false")

    figures = await scrape(server)

    assert figures["pitchey_gc_frozen_objects"] == 0
