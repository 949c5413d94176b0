"""Periodic, the loop under the background workers: a tick, then the interval or a wake."""

from __future__ import annotations

import asyncio

from base.periodic import Periodic


def _unexpected(exc: Exception) -> None:
    raise AssertionError(f"tick failed: {exc!r}")


async def test_a_wake_during_a_tick_runs_the_next_tick_at_once() -> None:
    ticks = 0
    second = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 1:
            periodic.wake()  # as work queued while the tick ran would
        else:
            second.set()

    periodic = Periodic(tick, 60.0, "test-wake", on_failure=_unexpected)
    periodic.start()
    try:
        await asyncio.wait_for(second.wait(), 5.0)
    finally:
        await periodic.stop()


async def test_a_failed_tick_is_reported_and_the_loop_goes_on() -> None:
    failures: list[Exception] = []
    recovered = asyncio.Event()

    async def tick() -> None:
        if not failures:
            raise RuntimeError("database down")
        recovered.set()

    periodic = Periodic(tick, 0.01, "test-failure", on_failure=failures.append)
    periodic.start()
    try:
        await asyncio.wait_for(recovered.wait(), 5.0)
    finally:
        await periodic.stop()
    assert [str(exc) for exc in failures] == ["database down"]


async def test_on_stop_runs_after_the_last_tick_and_only_if_started() -> None:
    events: list[str] = []
    ticked = asyncio.Event()

    async def tick() -> None:
        events.append("tick")
        ticked.set()

    async def release() -> None:
        events.append("released")

    never_started = Periodic(tick, 60.0, "test-idle", on_failure=_unexpected, on_stop=release)
    await never_started.stop()
    assert events == []

    periodic = Periodic(tick, 60.0, "test-stop", on_failure=_unexpected, on_stop=release)
    periodic.start()
    await asyncio.wait_for(ticked.wait(), 5.0)
    await periodic.stop()
    assert events == ["tick", "released"]
